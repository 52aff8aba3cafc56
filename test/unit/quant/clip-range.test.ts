import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addToHistogramInPlace, clipMse, clipPercentile, clipRange, emptyHistogram, histogramQuantError } from '../../../shared/quant/clip-range';
import { fakeQuantizeActivation, activationQuant } from '../../../shared/quant/linear';
import { Rng } from '../../../shared/rng';

/** A long-tailed sample: mostly N(0,1) with a few large outliers. */
function sample(n: number): Float32Array {
  const rng = new Rng(3);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = rng.normal();
  x[0] = 40;
  x[1] = -35;
  return x;
}

function directMse(x: Float32Array, alpha: number, bits: number, signed: boolean): number {
  const y = fakeQuantizeActivation(x, activationQuant(alpha, bits, signed));
  let e = 0;
  for (let i = 0; i < x.length; i++) e += (x[i] - y[i]) ** 2;
  return e;
}

describe('clip-range calibration', () => {
  const x = sample(20000);
  const h = emptyHistogram(40, 4096);
  addToHistogramInPlace(h, x);

  it('max is the largest |x|', () => assert.equal(clipRange(h, 'max', 4, true), 40));

  it('the 99.99th percentile ignores the two outliers; 100 is the max', () => {
    const p = clipPercentile(h, 99.99);
    assert.ok(p > 3 && p < 5, `percentile ${p}`);
    assert.equal(clipPercentile(h, 100), 40);
  });

  for (const bits of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`${bits} bits: MSE clip beats max clipping on the real data, and shrinks as bits fall`, () => {
      const alpha = clipMse(h, bits, true);
      assert.ok(alpha > 0 && alpha <= 40);
      assert.ok(directMse(x, alpha, bits, true) < directMse(x, 40, bits, true));
      if (bits < 8) assert.ok(alpha <= clipMse(h, bits + 1, true) + 1e-9, 'fewer bits, tighter clip');
    });
  }

  it('the histogram error tracks the direct error at the chosen alpha (within 5%)', () => {
    const alpha = clipMse(h, 4, true);
    const direct = directMse(x, alpha, 4, true);
    const hist = histogramQuantError(h, alpha, 4, true);
    assert.ok(Math.abs(direct - hist) / direct < 0.05, `direct ${direct} histogram ${hist}`);
  });

  it('an all-zero tensor gives a zero clip for every method', () => {
    const z = emptyHistogram(0);
    addToHistogramInPlace(z, new Float32Array(10));
    for (const m of ['max', 'percentile', 'mse'] as const) assert.equal(clipRange(z, m, 4, false), 0);
  });

  it('rejects a percentile outside (0, 100]', () => assert.throws(() => clipPercentile(h, 0), /\(0, 100\], got 0/));
});
