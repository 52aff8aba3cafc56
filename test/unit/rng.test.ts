import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deriveSeed, Rng } from '../../shared/rng';

describe('Rng', () => {
  it('gives the same sequence for the same seed and a different one for another seed', () => {
    const a = new Rng(42), b = new Rng(42), c = new Rng(43);
    const sa = Array.from({ length: 5 }, () => a.nextUint32());
    const sb = Array.from({ length: 5 }, () => b.nextUint32());
    const sc = Array.from({ length: 5 }, () => c.nextUint32());
    assert.deepEqual(sa, sb);
    assert.notDeepEqual(sa, sc);
  });

  it('resumes from a saved state', () => {
    const a = new Rng(7);
    for (let i = 0; i < 10; i++) a.next();
    const b = new Rng(a.getState());
    assert.deepEqual([a.next(), a.normal(), a.int(10)], [b.next(), b.normal(), b.int(10)]);
  });

  it('draws uniforms in [0,1) with mean near 1/2 and normals with unit variance', () => {
    const r = new Rng(1);
    const u = Array.from({ length: 20000 }, () => r.next());
    assert.ok(u.every((x) => x >= 0 && x < 1));
    const mean = u.reduce((s, x) => s + x, 0) / u.length;
    assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
    const n = Array.from({ length: 20000 }, () => r.normal());
    const m = n.reduce((s, x) => s + x, 0) / n.length;
    const v = n.reduce((s, x) => s + (x - m) ** 2, 0) / n.length;
    assert.ok(Math.abs(m) < 0.03 && Math.abs(v - 1) < 0.05, `mean ${m} var ${v}`);
  });

  it('keeps truncated normals inside their bounds', () => {
    const r = new Rng(3);
    for (let i = 0; i < 2000; i++) {
      const x = r.truncatedNormal(0.9, 0.5, 0, 1);
      assert.ok(x >= 0 && x <= 1);
    }
  });

  it('derives distinct seeds from distinct parts', () => {
    assert.equal(deriveSeed(1, 'round', 2), deriveSeed(1, 'round', 2));
    assert.notEqual(deriveSeed(1, 'round', 2), deriveSeed(1, 'round', 3));
    assert.notEqual(deriveSeed(12), deriveSeed('12'));
  });
});
