import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildEmbedding, STATE_SIZE, stepState } from '../../../shared/search/embedding';
import { tinyLayers } from './fixtures';

describe('state embedding', () => {
  const layers = tinyLayers().layers;

  it('has 2L alternating weight/activation steps, L in size mode', () => {
    const e = buildEmbedding(layers, true);
    assert.equal(e.steps.length, 2 * layers.length);
    assert.deepEqual(e.steps.slice(0, 4), [
      { layer: 0, kind: 'weight' },
      { layer: 0, kind: 'activation' },
      { layer: 1, kind: 'weight' },
      { layer: 1, kind: 'activation' },
    ]);
    const s = buildEmbedding(layers, false);
    assert.equal(s.steps.length, layers.length);
    assert.ok(s.steps.every((st) => st.kind === 'weight'));
  });

  it('min-max normalises every feature to [0, 1] with both ends reached where it varies', () => {
    const e = buildEmbedding(layers, true);
    const n = e.steps.length;
    const col = (f: number): number[] => Array.from({ length: n }, (_, t) => e.features[t * STATE_SIZE + f]);
    for (let f = 0; f < STATE_SIZE - 1; f++) {
      const c = col(f);
      assert.ok(c.every((v) => v >= 0 && v <= 1), `feature ${f}`);
      assert.equal(Math.min(...c), 0);
      assert.equal(Math.max(...c), 1, `feature ${f} reaches 1`);
    }
    // Feature 7 is-depthwise: only dw2's two steps; feature 8 weight flag alternates.
    assert.deepEqual(col(7), [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(col(8).slice(0, 4), [1, 0, 1, 0]);
    // Feature 0 layer index: last layer is 1.
    assert.equal(col(0)[n - 1], 1);
  });

  it('gives a constant feature the value 0', () => {
    const same = layers.map((l) => ({ ...l, stride: [1, 1] as [number, number] }));
    const e = buildEmbedding(same, true);
    for (let t = 0; t < e.steps.length; t++) assert.equal(e.features[t * STATE_SIZE + 4], 0);
  });

  it('fills the previous action into a fresh copy, never into the table', () => {
    const e = buildEmbedding(layers, true);
    const before = e.features.slice();
    const s = stepState(e, 3, 0.25);
    assert.equal(s[STATE_SIZE - 1], 0.25);
    s[0] = 42;
    assert.deepEqual(e.features, before);
  });
});
