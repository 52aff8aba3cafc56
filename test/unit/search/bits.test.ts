import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { actionToBits, bitsToAction, bitsToFeature } from '../../../shared/search/bits';

describe('action -> bits', () => {
  const r28 = { minBits: 2, maxBits: 8 };
  // 7 bins of width 1/7 over [0, 1] for 2..8 bits.
  const table: Array<[number, number]> = [
    [0, 2],
    [0.1, 2],
    [1 / 7 + 1e-9, 3],
    [0.5, 5],
    [6 / 7 - 1e-9, 7],
    [0.9, 8],
    [1, 8], // round(1*7 + 2 - 0.5) = 9 before the clamp
  ];
  for (const [a, bits] of table) {
    it(`a = ${a.toFixed(4)} -> ${bits} bits on 2..8`, () => assert.equal(actionToBits(a, r28), bits));
  }

  it('clamps to the range on every range and maps a bin centre back to its bits', () => {
    for (let minBits = 1; minBits <= 8; minBits++) {
      for (let maxBits = minBits; maxBits <= 8; maxBits++) {
        const r = { minBits, maxBits };
        assert.equal(actionToBits(1, r), maxBits);
        assert.equal(actionToBits(0, r), minBits);
        for (let b = minBits; b <= maxBits; b++) assert.equal(actionToBits(bitsToAction(b, r), r), b);
      }
    }
  });

  it('is monotone in the action (property)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 7 }), (x, y, lo, span) => {
        const r = { minBits: lo, maxBits: Math.min(8, lo + span) };
        const [a, b] = x <= y ? [x, y] : [y, x];
        const ba = actionToBits(a, r);
        const bb = actionToBits(b, r);
        return ba <= bb && ba >= r.minBits && bb <= r.maxBits;
      }),
    );
  });

  it('normalises bits for the previous-action feature', () => {
    assert.equal(bitsToFeature(2, r28), 0);
    assert.equal(bitsToFeature(8, r28), 1);
    assert.equal(bitsToFeature(5, r28), 0.5);
    assert.equal(bitsToFeature(4, { minBits: 4, maxBits: 4 }), 1);
  });
});
