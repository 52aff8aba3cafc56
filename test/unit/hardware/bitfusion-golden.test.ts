/**
 * BitFusion beyond the published sweep: 340 single-layer rows from BitFusion's own simulator
 * (test/fixtures/reference/bitfusion/golden-single-layers.json: 3x3, 5x5 and 1x1 convolutions,
 * strides 1 and 2, depthwise, fc, image-reading first layers, batch 1 and 16, at every
 * (w, a) in {2,4,8}^2 and odd widths). The cost table (what a search reads) must match each
 * row's cycles and energy; the exact simulator must match all ten result columns.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simulateBitFusionConv, usesIm2col } from '../../../shared/hardware/bitfusion';
import { layerGeometry } from '../../../shared/hardware/geometry';
import { builtinTargets, type BitFusionTarget } from '../../../shared/hardware/targets';
import { goldenLayer, goldenModelGrids, loadGolden } from '../../fixtures/reference/bitfusion/golden';
import { convArgs } from '../../fixtures/reference/bitfusion/reference';

const golden = loadGolden();
const target = builtinTargets.bitfusion as BitFusionTarget;

test('golden rows: 17 shapes x 20 bit pairs, {2,4,8}^2 and odd widths, batch 1 and 16', () => {
  assert.equal(golden.rows.length, 340);
  const pairs = new Set(golden.pairs.map(([w, a]) => `${w}/${a}`));
  for (const w of [2, 4, 8]) for (const a of [2, 4, 8]) assert.ok(pairs.has(`${w}/${a}`));
  for (const odd of ['3/3', '5/5', '7/7', '3/5', '5/3', '1/1']) assert.ok(pairs.has(odd));
  assert.deepEqual(new Set(golden.shapes.map((s) => s.kind)), new Set(['conv', 'depthwise', 'linear', 'first']));
  assert.deepEqual(new Set(golden.shapes.map((s) => s.sim_args.B)), new Set([1, 16]));
  assert.deepEqual(new Set(golden.shapes.map((s) => s.sim_args.S)), new Set([1, 2]));
});

test('a one-layer model is lowered by im2col exactly when the simulator was: the image-reading first layers', () => {
  for (const shape of golden.shapes) {
    const g = layerGeometry(goldenLayer(shape), shape.sim_args.B);
    assert.equal(usesIm2col(target, g), shape.sim_args.im2col, shape.name);
  }
});

const grids = new Map(golden.shapes.map((s) => [s.name, goldenModelGrids(target, s)]));
const shapeOf = new Map(golden.shapes.map((s) => [s.name, s]));

test('cost table vs BitFusion own simulator: every golden row within 1e-5 cycles and 1e-6 energy (acceptance 2% / 5%)', () => {
  const misses: string[] = [];
  for (const r of golden.rows) {
    const g = grids.get(r.shape);
    assert.ok(g);
    const dc = Math.abs(g.cycles[r.wBits - 1][r.aBits - 1] / r.cycles - 1);
    const de = Math.abs(g.energyPj[r.wBits - 1][r.aBits - 1] / r.energyPj - 1);
    if (dc > 1e-5 || de > 1e-6) misses.push(`${r.shape} w${r.wBits}a${r.aBits}: cycles ${dc}, energy ${de}`);
  }
  assert.deepEqual(misses, []);
});

test('exact search vs BitFusion own simulator: all ten result columns of every golden row, energy within 1e-8 (the energy constants carry 8-9 digits)', () => {
  const columns = ['cycles', 'memWaitCycles', 'wbufRead', 'wbufWrite', 'ibufRead', 'ibufWrite', 'obufRead', 'obufWrite', 'dramRead', 'dramWrite'] as const;
  const misses: string[] = [];
  for (const r of golden.rows) {
    const shape = shapeOf.get(r.shape);
    assert.ok(shape);
    const s = simulateBitFusionConv(target, convArgs({ ...shape.sim_args, iprec: r.aBits, wprec: r.wBits }));
    const wrong = columns.filter((c) => s[c] !== r[c]);
    if (wrong.length > 0 || Math.abs(s.energyPj / r.energyPj - 1) > 1e-8) misses.push(`${r.shape} w${r.wBits}a${r.aBits}: ${wrong.join(', ')}`);
  }
  assert.deepEqual(misses, []);
});
