import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidDataError } from '../../../shared/errors';
import { argmax, checkLabels, scoreLogits, top1Predictions, topK, topKAccuracy } from '../../../shared/data/metrics';

describe('metrics', () => {
  // 3 rows x 6 classes
  const logits = Float32Array.from([
    0.1, 0.9, 0.3, 0.0, 0.2, 0.5, // order 1 5 2 4 0 3
    2.0, 2.0, 1.0, NaN, 0.0, -1, // tie 0/1 -> 0 wins; NaN never wins
    -5, -4, -3, -2, -1, 0, //        order 5 4 3 2 1 0
  ]);

  it('argmax, ties to the lower index, NaN never wins', () => {
    assert.deepEqual(Array.from(top1Predictions(logits, 6)), [1, 0, 5]);
    assert.equal(argmax([NaN, NaN, 1], 0, 3), 2);
  });

  it('topK is best first', () => {
    assert.deepEqual(topK(logits, 0, 6, 3), [1, 5, 2]);
    assert.deepEqual(topK(logits, 6, 6, 6), [0, 1, 2, 4, 5, 3]);
    assert.deepEqual(topK(logits, 12, 6, 10), [5, 4, 3, 2, 1, 0]);
  });

  it('top-k accuracy in percent agrees with topK membership', () => {
    const targets = Int32Array.from([1, 1, 0]);
    assert.equal(topKAccuracy(logits, 6, targets, 1), 100 / 3); // only row 0
    assert.equal(topKAccuracy(logits, 6, targets, 2), 200 / 3); // row 1: class 1 ranks second
    assert.equal(topKAccuracy(logits, 6, targets, 6), 100);
    for (const k of [1, 2, 3, 4, 5]) {
      const hits = [0, 1, 2].filter((r) => topK(logits, r * 6, 6, k).includes(targets[r])).length;
      assert.equal(topKAccuracy(logits, 6, targets, k), (100 * hits) / 3, `k=${k}`);
    }
  });

  it('scoreLogits: labels vs fidelity, top5 null for 5 classes or fewer', () => {
    assert.deepEqual(scoreLogits(logits, 6, { labels: Int32Array.from([1, 0, 5]) }), { top1: 100, top5: 100, mode: 'labels' });
    const s = scoreLogits(logits, 6, { reference: Int32Array.from([1, 1, 3]) });
    assert.equal(s.mode, 'fidelity');
    assert.equal(s.top1, 100 / 3);
    assert.equal(scoreLogits(Float32Array.from([1, 2, 3, 4, 5]), 5, { labels: Int32Array.from([4]) }).top5, null);
  });

  it('checkLabels names the first out-of-range label and the class count', () => {
    checkLabels(Int32Array.from([0, 9]), 10, 'val-labels.npy');
    assert.throws(() => checkLabels(Int32Array.from([0, 10, 3]), 10, 'val-labels.npy'), (err: Error) => err instanceof InvalidDataError && /val-labels\.npy\[1\] = 10 is out of range: the model outputs 10 classes \(0\.\.9\)/.test(err.message));
  });
});
