import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  activationCodes,
  activationQuant,
  fakeQuantizeActivation,
  quantizeWeightsLinear,
  roundHalfEven,
  weightQmax,
} from '../../../shared/quant/linear';
import { InvalidInputError } from '../../../shared/errors';
import { expectClose } from '../../helpers/expect-close';

const bitsRange = [1, 2, 3, 4, 5, 6, 7, 8];

describe('roundHalfEven', () => {
  for (const [x, want] of [[0.5, 0], [1.5, 2], [2.5, 2], [-0.5, -0], [-1.5, -2], [-2.5, -2], [0.49, 0], [2.51, 3], [-3.7, -4]]) {
    it(`rounds ${x} to ${want}`, () => assert.equal(roundHalfEven(x), want));
  }
});

describe('quantizeWeightsLinear', () => {
  // Two output channels (axis 0) of four weights each.
  const w = Float32Array.from([0.5, -1.0, 0.25, 0.1, 2.0, -0.4, 0.0, 1.2]);
  const shape = [2, 4];

  for (const bits of bitsRange) {
    it(`${bits} bits per channel: codes in the symmetric range, values = codes * channel scale`, () => {
      const q = quantizeWeightsLinear(w, shape, bits);
      const qmax = weightQmax(bits);
      assert.equal(q.scales.length, 2);
      for (let i = 0; i < w.length; i++) {
        assert.ok(Math.abs(q.codes[i]) <= qmax, `code ${q.codes[i]} exceeds ${qmax}`);
        assert.equal(q.values[i], Math.fround(q.codes[i] * q.scales[Math.floor(i / 4)]));
      }
      if (bits === 1) {
        // sign x mean|w|
        expectClose(q.scales, [(0.5 + 1 + 0.25 + 0.1) / 4, (2 + 0.4 + 0 + 1.2) / 4]);
        assert.deepEqual(Array.from(q.codes), [1, -1, 1, 1, 1, -1, 1, 1]);
      } else {
        expectClose(q.scales, [1.0 / qmax, 2.0 / qmax]);
        // the largest weight of each channel maps to the largest code exactly
        assert.equal(q.codes[1], -qmax);
        assert.equal(q.codes[4], qmax);
      }
    });
  }

  it('per tensor uses one scale', () => {
    const q = quantizeWeightsLinear(w, shape, 8, { perChannel: false });
    assert.equal(q.scales.length, 1);
    expectClose(q.scales[0], 2.0 / 127);
    assert.equal(q.axis, null);
  });

  it('channel axis 1 (a [K, N] MatMul weight) scales columns', () => {
    const q = quantizeWeightsLinear(Float32Array.from([0.5, 10, -2, 6]), [2, 2], 4, { axis: 1 });
    expectClose(q.scales, [2 / 7, 10 / 7]);
    assert.deepEqual(Array.from(q.codes), [2, 7, -7, 4]); // 0.5/(2/7) = 1.75, 6/(10/7) = 4.2
  });

  it('an all-zero channel quantizes to zeros', () => {
    const q = quantizeWeightsLinear(new Float32Array(4), [2, 2], 3);
    assert.deepEqual(Array.from(q.values), [0, 0, 0, 0]);
  });

  it('rejects bits 0 and 9 and a shape that does not match', () => {
    assert.throws(() => quantizeWeightsLinear(w, shape, 0), InvalidInputError);
    assert.throws(() => quantizeWeightsLinear(w, shape, 9), /1\.\.8, got 9/);
    assert.throws(() => quantizeWeightsLinear(w, [3, 4], 8), /\[3, 4\] holds 12 values, got 8/);
  });

  it('property: |w - w_q| <= scale/2 and codes are monotone in w (2..8 bits)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }),
        fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 64 }),
        (bits, values) => {
          const x = Float32Array.from(values);
          const q = quantizeWeightsLinear(x, [x.length], bits, { perChannel: false });
          const s = q.scales[0];
          const order = Array.from(x.keys()).sort((a, b) => x[a] - x[b]);
          for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - q.values[i]) <= s / 2 + 1e-6 * s + 1e-30);
          for (let i = 1; i < order.length; i++) assert.ok(q.codes[order[i]] >= q.codes[order[i - 1]]);
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });
});

describe('activationQuant', () => {
  for (const bits of bitsRange) {
    it(`${bits} bits: unsigned levels 0..2^b-1 reach the clip value`, () => {
      const p = activationQuant(3, bits, false);
      assert.equal(p.qmin, 0);
      assert.equal(p.qmax, 2 ** bits - 1);
      const y = fakeQuantizeActivation(Float32Array.from([-1, 0, 3, 10]), p);
      expectClose(y, [0, 0, 3, 3], { rtol: 1e-6 });
    });
    it(`${bits} bits: signed levels are symmetric around 0 and reach +-clip`, () => {
      const p = activationQuant(2, bits, true);
      const y = fakeQuantizeActivation(Float32Array.from([-5, -2, 2, 5]), p);
      expectClose(y, [-2, -2, 2, 2], { rtol: 1e-6 });
      const levels = p.qmax - p.qmin + 1;
      assert.equal(levels, bits === 1 ? 3 : 2 ** bits - 1); // 1 bit: -1, +1 (and 0 only for x = 0)
    });
  }

  it('1-bit signed is sign x clip, even for tiny values', () => {
    const p = activationQuant(0.75, 1, true);
    assert.deepEqual(Array.from(fakeQuantizeActivation(Float32Array.from([-3, -0.1, -1e-30, 1e-30, 0.1, 3]), p)), [-0.75, -0.75, -0.75, 0.75, 0.75, 0.75]);
  });

  it('a zero clip value maps everything to ~0 without NaN', () => {
    const y = fakeQuantizeActivation(Float32Array.from([0, 1, -1]), activationQuant(0, 4, true));
    for (const v of y) assert.ok(Math.abs(v) < 1e-20);
  });

  it('rejects bits outside 1..8 and a negative clip', () => {
    assert.throws(() => activationQuant(1, 0, false), /got 0/);
    assert.throws(() => activationQuant(1, 9, false), /got 9/);
    assert.throws(() => activationQuant(-1, 4, false), /got -1/);
  });

  it('property: inside the clip range the error is <= scale/2; levels are monotone', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.boolean(),
        fc.float({ min: Math.fround(0.01), max: 50, noNaN: true }),
        fc.array(fc.float({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 64 }),
        (bits, signed, clip, unit) => {
          const p = activationQuant(clip, bits, signed);
          const x = Float32Array.from(unit.map((u) => (signed ? u * clip : Math.abs(u) * clip)));
          const y = fakeQuantizeActivation(x, p);
          const codes = activationCodes(x, p);
          const order = Array.from(x.keys()).sort((a, b) => x[a] - x[b]);
          for (let i = 1; i < order.length; i++) assert.ok(codes[order[i]] >= codes[order[i - 1]], 'codes monotone');
          if (signed && bits === 1) return; // two levels at +-clip: error up to clip, not scale/2
          for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= p.scale / 2 + 1e-5 * clip, `x=${x[i]} y=${y[i]} s=${p.scale}`);
        },
      ),
      { seed: 11, numRuns: 300 },
    );
  });
});
