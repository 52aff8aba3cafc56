import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { kmeansQuantize } from '../../../shared/quant/kmeans';
import { quantizeWeightsLinear } from '../../../shared/quant/linear';
import { Rng } from '../../../shared/rng';

function weights(n: number, seed = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal(0, 0.1));
}

function sse(a: Float32Array, b: Float32Array): number {
  let e = 0;
  for (let i = 0; i < a.length; i++) e += (a[i] - b[i]) ** 2;
  return e;
}

describe('kmeansQuantize', () => {
  const w = weights(3000);
  for (const bits of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`${bits} bits: at most 2^b sorted centroids, every weight at its nearest centroid`, () => {
      const q = kmeansQuantize(w, bits, new Rng(5));
      assert.ok(q.centroids.length <= 2 ** bits && q.centroids.length >= Math.min(2 ** bits, 2));
      for (let j = 1; j < q.centroids.length; j++) assert.ok(q.centroids[j] > q.centroids[j - 1]);
      for (let i = 0; i < w.length; i += 37) {
        const d = Math.abs(w[i] - q.values[i]);
        for (const c of q.centroids) assert.ok(d <= Math.abs(w[i] - c) + 1e-7);
        assert.equal(q.values[i], q.centroids[q.indices[i]]);
      }
    });
  }

  it('is deterministic for a seed', () => {
    const a = kmeansQuantize(w, 3, new Rng(9));
    const b = kmeansQuantize(w, 3, new Rng(9));
    assert.deepEqual(Array.from(a.centroids), Array.from(b.centroids));
  });

  it('has lower squared error than per-tensor linear quantization at 2..4 bits', () => {
    for (const bits of [2, 3, 4]) {
      const km = kmeansQuantize(w, bits, new Rng(1));
      const lin = quantizeWeightsLinear(w, [w.length], bits, { perChannel: false });
      assert.ok(sse(w, km.values) < sse(w, lin.values), `${bits} bits`);
    }
  });

  it('keeps a layer with few distinct values exact', () => {
    const q = kmeansQuantize(Float32Array.from([0.5, -0.5, 0.5, 0.25]), 2, new Rng(1));
    assert.deepEqual(Array.from(q.values), [0.5, -0.5, 0.5, 0.25]);
  });

  it('property: error never exceeds half the largest gap between neighbouring centroids (or the range ends)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 80 }), (bits, vs) => {
        const x = Float32Array.from(vs);
        const q = kmeansQuantize(x, bits, new Rng(2));
        const c = Array.from(q.centroids);
        for (let i = 0; i < x.length; i++) {
          const nearest = Math.min(...c.map((v) => Math.abs(v - x[i])));
          assert.ok(Math.abs(q.values[i] - x[i]) <= nearest + 1e-7);
        }
      }),
      { seed: 4, numRuns: 100 },
    );
  });
});
