import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidDataError } from '../../../shared/errors';
import {
  argmax,
  checkLabels,
  cosineSimilarity,
  crossEntropy,
  klDivergence,
  LOSS_CAP_NATS,
  meanEstimate,
  proportionSe,
  resolveMetric,
  scoreLogits,
  signalAccumulator,
  spearman,
  SQNR_CAP_DB,
  sqnrEstimate,
  top1Predictions,
  topK,
  topKAccuracy,
} from '../../../shared/data/metrics';
import { expectClose } from '../../helpers/expect-close';

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

describe('accuracy signals against hand computations', () => {
  const f32 = (...v: number[]) => Float32Array.from(v);
  const batch = (rows: number[][]) => [{ data: Float32Array.from(rows.flat()), dims: [rows.length, rows[0].length] }];

  it('cross-entropy and KL divergence of single rows (nats)', () => {
    // softmax([0, ln 3]) = [1/4, 3/4]: CE against class 1 = -ln(3/4), against class 0 = ln 4.
    expectClose(crossEntropy(f32(0, Math.log(3)), 0, 2, 1), -Math.log(0.75), { atol: 1e-7 });
    expectClose(crossEntropy(f32(9, 0, Math.log(3)), 1, 2, 0), Math.log(4), { atol: 1e-7 });
    // KL([1/2, 1/2] || [1/4, 3/4]) = 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3); KL(P || P) = 0.
    expectClose(klDivergence(f32(0, 0), 0, f32(0, Math.log(3)), 0, 2), 0.5 * Math.log(4 / 3), { atol: 1e-7 });
    assert.equal(klDivergence(f32(1, 2, 3), 0, f32(1, 2, 3), 0, 3), 0);
    // Shifting logits by a constant changes neither.
    expectClose(klDivergence(f32(100, 100), 0, f32(-5, -5 + Math.log(3)), 0, 2), 0.5 * Math.log(4 / 3), { atol: 1e-6 });
    // A non-finite output counts as the cap, never NaN.
    assert.equal(crossEntropy(f32(NaN, 0), 0, 2, 0), LOSS_CAP_NATS);
  });

  it('cosine similarity: orthogonal 0, equal 1, opposite -1, both zero 1, one zero 0', () => {
    expectClose(cosineSimilarity(f32(1, 0), 0, f32(1, 1), 0, 2), Math.SQRT1_2, { atol: 1e-7 });
    assert.equal(cosineSimilarity(f32(1, 0), 0, f32(0, 2), 0, 2), 0);
    expectClose(cosineSimilarity(f32(0, 3, 4), 1, f32(6, 8), 0, 2), 1, { atol: 1e-7 });
    expectClose(cosineSimilarity(f32(1, 2), 0, f32(-2, -4), 0, 2), -1, { atol: 1e-7 });
    assert.equal(cosineSimilarity(f32(0, 0), 0, f32(0, 0), 0, 2), 1);
    assert.equal(cosineSimilarity(f32(0, 0), 0, f32(1, 0), 0, 2), 0);
  });

  it('SQNR is 10 log10 of total signal over total noise, with a delta-method standard error', () => {
    // Sample 0: signal 3^2 + 4^2 = 25, noise (4 - 3)^2 = 1; sample 1: signal 1, noise 1.
    const s = [25, 1];
    const n = [1, 1];
    const e = sqnrEstimate(s, n);
    expectClose(e.value, 10 * Math.log10(13 / 1), { atol: 1e-9 });
    // var(s) = ((25-13)^2 + (1-13)^2) / 1 = 288, var(n) = 0, cov = 0: se = 10/ln10 * sqrt(288 / 13^2 / 2).
    expectClose(e.se, (10 / Math.LN10) * Math.sqrt(288 / 169 / 2), { atol: 1e-9 });
    assert.deepEqual(sqnrEstimate([4, 4], [0, 0]), { value: SQNR_CAP_DB, se: 0 }, 'no noise: the cap');
  });

  it('standard errors: sqrt(p(1-p)/n) for a percentage, sd/sqrt(n) for a mean', () => {
    expectClose(proportionSe(90, 2000), 100 * Math.sqrt((0.9 * 0.1) / 2000), { atol: 1e-12 });
    assert.equal(proportionSe(100, 50), 0);
    const m = meanEstimate([1, 2, 3, 6]);
    assert.equal(m.value, 3);
    // sample variance ((4 + 1 + 0 + 9) / 3), se = sqrt(var / 4)
    expectClose(m.se, Math.sqrt(14 / 3 / 4), { atol: 1e-12 });
  });

  it('the accumulator combines labels, the FP32 reference and every output, the same for any batching', () => {
    // Two samples, 2 classes. Model logits and FP32 logits; labels [1, 0].
    const model = [
      [0, Math.log(3)],
      [1, 0],
    ];
    const fp32 = [
      [0, 0],
      [2, 0],
    ];
    const labels = Int32Array.from([1, 1]);
    const whole = signalAccumulator();
    whole.add(batch(model), { labels, reference: batch(fp32) });
    const split = signalAccumulator();
    split.add(batch([model[0]]), { labels: labels.subarray(0, 1), reference: batch([fp32[0]]) });
    split.add(batch([model[1]]), { labels: labels.subarray(1), reference: batch([fp32[1]]) });
    const a = whole.finish();
    assert.deepEqual(split.finish(), a);
    assert.equal(a.mode, 'labels');
    assert.deepEqual(a.top1, { value: 50, se: proportionSe(50, 2) });
    const ce = [-Math.log(0.75), Math.log(1 + Math.E)];
    expectClose(a.crossEntropy!.value, (ce[0] + ce[1]) / 2, { atol: 1e-7 });
    const kl1 = (() => {
      // P = softmax([2, 0]), Q = softmax([1, 0])
      const p = [Math.exp(2) / (1 + Math.exp(2)), 1 / (1 + Math.exp(2))];
      const q = [Math.E / (1 + Math.E), 1 / (1 + Math.E)];
      return p[0] * Math.log(p[0] / q[0]) + p[1] * Math.log(p[1] / q[1]);
    })();
    expectClose(a.kl!.value, (0.5 * Math.log(4 / 3) + kl1) / 2, { atol: 1e-7 });
    // SQNR: signal 0 + 4, noise ln(3)^2 + 1.
    expectClose(a.sqnrDb!.value, 10 * Math.log10(4 / (Math.log(3) ** 2 + 1)), { atol: 1e-6 });
    // cosine: sample 0 has a zero FP32 output (0), sample 1 is [1,0] vs [2,0] (1).
    expectClose(a.cosine!.value, 0.5, { atol: 1e-7 });
    // Without labels: fidelity against the FP32 top-1 (sample 0: tie -> class 0, model says 1), no CE.
    const fid = signalAccumulator();
    fid.add(batch(model), { labels: null, reference: batch(fp32) });
    const f = fid.finish();
    assert.equal(f.mode, 'fidelity');
    assert.equal(f.top1!.value, 50);
    assert.equal(f.crossEntropy, null);
    assert.deepEqual(f.kl, a.kl);
  });

  it('several outputs: SQNR of the outputs each scaled to unit signal power, cosine averaged over outputs', () => {
    // Output A (scale 1): signal 1 per sample, noise 0.01 -> NSR 0.01; output B (scale 1000): NSR 0.1.
    const a = { data: f32(1, 1), dims: [2, 1] };
    const aRef = { data: f32(1.1, 0.9), dims: [2, 1] };
    const b = { data: f32(1000, 1000, 1000, 1000), dims: [2, 2] };
    const bRef = { data: f32(1000 + 447.2136, 1000 - 447.2136, 1000, 1000), dims: [2, 2] };
    const acc = signalAccumulator();
    acc.add([a, b], { labels: null, reference: [aRef, bRef] });
    const s = acc.finish();
    assert.equal(s.top1, null, 'no classifier output');
    const nsrA = (0.01 + 0.01) / (1.21 + 0.81);
    const sigB = [(1447.2136 ** 2 + 552.7864 ** 2), 2 * 1000 ** 2];
    const nsrB = (2 * 447.2136 ** 2) / (sigB[0] + sigB[1]);
    expectClose(s.sqnrDb!.value, -10 * Math.log10((nsrA + nsrB) / 2), { atol: 1e-3 });
    const cosB0 = (1000 * 1447.2136 + 1000 * 552.7864) / (Math.sqrt(2e6) * Math.sqrt(sigB[0]));
    // Sample 0: A's cosine 1 (same sign), B's cosB0; sample 1: both 1.
    expectClose(s.cosine!.value, ((1 + cosB0) / 2 + 1) / 2, { atol: 1e-6 });
  });

  it('resolveMetric: top-1 with labels or a classifier output, else SQNR; top-1 refused without either', () => {
    const table: Array<[boolean, Array<number | null>, 'top1' | 'sqnr']> = [
      [true, [null, 10], 'top1'],
      [false, [null, 10], 'top1'],
      [true, [null, 1, 48, 192], 'top1'],
      [false, [null, 1, 48, 192], 'sqnr'],
      [false, [null, 1], 'sqnr'],
    ];
    for (const [hasLabels, dims, want] of table) assert.equal(resolveMetric('auto', { hasLabels, firstOutputDims: dims }), want, JSON.stringify(dims));
    assert.equal(resolveMetric('cosine', { hasLabels: true, firstOutputDims: [null, 10] }), 'cosine');
    assert.throws(() => resolveMetric('top1', { hasLabels: false, firstOutputDims: [1, 3, 64, 64] }), (e: Error) => e instanceof InvalidDataError && /use --metric sqnr/.test(e.message));
  });

  it('spearman: 1 for a monotone relation, -1 reversed, ties averaged', () => {
    assert.equal(spearman([1, 2, 3, 4], [10, 20, 25, 1000]), 1);
    assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
    expectClose(spearman([1, 2, 2, 3], [1, 2, 3, 4])!, 0.9486832980505138, { atol: 1e-12 });
    assert.equal(spearman([1, 1, 1], [1, 2, 3]), null);
  });
});
