import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidDataError } from '../../../shared/errors';
import type { Split } from '../../../shared/data/dataset';
import { evaluateFp32, evaluateSession, referenceFromOutputs } from '../../../shared/data/evaluate';
import { SQNR_CAP_DB } from '../../../shared/data/metrics';
import { expectClose } from '../../helpers/expect-close';
import { ModelSession } from '../../../shared/onnx/runtime';
import { Rng } from '../../../shared/rng';
import { EvaluationResult } from '../../../shared/search/results';
import { linearClassifier } from '../../fixtures/models';

const features = 6;
const classes = 7;
const samples = 53; // not a multiple of the batch size

function makeSplit(labels: Int32Array | null, data: Float32Array | Uint8Array, meta = { inputScale: 1 / 255, inputOffset: 0 }): Split {
  return {
    name: 'val',
    inputs: { dtype: data instanceof Uint8Array ? 'uint8' : 'float32', data, shape: [samples, features] },
    labels,
    samples,
    sampleShape: [features],
    meta,
  };
}

/** argmax_c (x . W[c] + b[c]) by hand (ties: lower index). */
function handPredictions(x: Float32Array, w: Float32Array, b: Float32Array): number[] {
  return Array.from({ length: samples }, (_, n) => {
    let best = 0;
    let bestValue = -Infinity;
    for (let c = 0; c < classes; c++) {
      let v = b[c];
      for (let f = 0; f < features; f++) v += x[n * features + f] * w[c * features + f];
      if (v > bestValue) [best, bestValue] = [c, v];
    }
    return best;
  });
}

describe('evaluateFp32', () => {
  const rng = new Rng(11);
  const { bytes, weight, bias } = linearClassifier(features, classes);
  const x = Float32Array.from({ length: samples * features }, () => rng.normal(0, 1));
  const hand = handPredictions(x, weight, bias);
  // Labels: the hand prediction for every third sample, a different class otherwise.
  const labels = Int32Array.from(hand, (p, i) => (i % 3 === 0 ? p : (p + 1) % classes));
  const expectedTop1 = (100 * hand.filter((_, i) => i % 3 === 0).length) / samples;

  it('top-1 equals a hand-computed argmax accuracy, for any batch size', async () => {
    for (const batchSize of [1, 8, 64]) {
      const e = await evaluateFp32(bytes, makeSplit(labels, x), { batchSize });
      EvaluationResult.parse(e.result);
      assert.equal(e.result.mode, 'labels');
      assert.equal(e.result.samples, samples);
      assert.equal(e.result.top1, expectedTop1);
      assert.deepEqual(Array.from(e.predictions), hand);
      assert.equal(e.classes, classes);
      assert.ok(e.result.top5! >= e.result.top1);
    }
  });

  it('limit evaluates only the first samples', async () => {
    const e = await evaluateFp32(bytes, makeSplit(labels, x), { limit: 10, batchSize: 4 });
    assert.equal(e.result.samples, 10);
    assert.equal(e.result.top1, (100 * [0, 3, 6, 9].length) / 10);
  });

  it('uint8 inputs are scaled by meta before the model sees them', async () => {
    const bytesIn = Uint8Array.from({ length: samples * features }, () => rng.int(256));
    const meta = { inputScale: 0.02, inputOffset: -2.5 };
    const scaled = Float32Array.from(bytesIn, (v) => v * meta.inputScale + meta.inputOffset);
    const e = await evaluateFp32(bytes, makeSplit(null, bytesIn, meta));
    assert.deepEqual(Array.from(e.predictions), handPredictions(scaled, weight, bias));
  });

  it('without labels: fidelity mode, 100 for the FP32 model; another model is scored against its predictions', async () => {
    const fp32 = await evaluateFp32(bytes, makeSplit(null, x));
    assert.deepEqual(fp32.result.top1, 100);
    assert.equal(fp32.result.mode, 'fidelity');
    const other = linearClassifier(features, classes, 99);
    const session = await ModelSession.create(other.bytes);
    try {
      const e = await evaluateSession(session, makeSplit(null, x), { reference: fp32.predictions });
      const otherHand = handPredictions(x, other.weight, other.bias);
      const agree = otherHand.filter((p, i) => p === hand[i]).length;
      assert.equal(e.result.mode, 'fidelity');
      assert.equal(e.result.top1, (100 * agree) / samples);
      await assert.rejects(evaluateSession(session, makeSplit(null, x)), /no FP32 reference predictions/);
    } finally {
      await session.release();
    }
  });

  it('against the FP32 outputs: cross-entropy, KL, SQNR and cosine equal hand computations from the logits', async () => {
    const logits = (w: Float32Array, b: Float32Array) =>
      Array.from({ length: samples }, (_, n) =>
        Array.from({ length: classes }, (_, c) => {
          let v = b[c];
          for (let f = 0; f < features; f++) v += x[n * features + f] * w[c * features + f];
          return v;
        }),
      );
    const other = linearClassifier(features, classes, 99);
    const [ref, got] = [logits(weight, bias), logits(other.weight, other.bias)];
    const fp32Outputs = [{ data: Float32Array.from(ref.flat()), dims: [samples, classes] }];
    const session = await ModelSession.create(other.bytes);
    try {
      const e = await evaluateSession(session, makeSplit(labels, x), { batchSize: 8, referenceOutputs: referenceFromOutputs(fp32Outputs), metric: 'sqnr' });
      EvaluationResult.parse(e.result);
      const softmax = (z: number[]) => {
        const m = Math.max(...z);
        const ex = z.map((v) => Math.exp(v - m));
        const s = ex.reduce((a, v) => a + v, 0);
        return ex.map((v) => v / s);
      };
      const ce = got.map((z, n) => -Math.log(softmax(z)[labels[n]]));
      const kl = got.map((z, n) => {
        const [p, q] = [softmax(ref[n]), softmax(z)];
        return p.reduce((a, pc, c) => a + pc * Math.log(pc / q[c]), 0);
      });
      const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
      const signal = ref.flat().reduce((a, v) => a + v * v, 0);
      const noise = ref.flat().reduce((a, v, i) => a + (v - got.flat()[i]) ** 2, 0);
      const cos = got.map((z, n) => z.reduce((a, v, c) => a + v * ref[n][c], 0) / Math.hypot(...z) / Math.hypot(...ref[n]));
      expectClose(e.result.crossEntropy!.value, mean(ce), { rtol: 1e-5 });
      expectClose(e.result.kl!.value, mean(kl), { rtol: 1e-5 });
      expectClose(e.result.sqnrDb!.value, 10 * Math.log10(signal / noise), { rtol: 1e-5 });
      expectClose(e.result.cosine!.value, mean(cos), { rtol: 1e-5 });
      assert.equal(e.result.metric, 'sqnr');
      assert.equal(e.result.score, e.result.sqnrDb!.value);
      assert.equal(e.result.scoreSe, e.result.sqnrDb!.se);
      expectClose(e.result.top1Se!, 100 * Math.sqrt((e.result.top1! / 100) * (1 - e.result.top1! / 100) / samples), { atol: 1e-12 });
    } finally {
      await session.release();
    }
  });

  it('the FP32 model against itself: KL 0, SQNR at its cap, cosine 1', async () => {
    const e = await evaluateFp32(bytes, makeSplit(labels, x));
    assert.equal(e.result.kl!.value, 0);
    assert.equal(e.result.sqnrDb!.value, SQNR_CAP_DB);
    expectClose(e.result.cosine!.value, 1, { atol: 1e-6 });
    assert.equal(e.result.metric, 'top1');
    assert.equal(e.result.score, e.result.top1);
  });

  it('labels out of range and data of the wrong shape are InvalidDataError', async () => {
    const bad = Int32Array.from(labels);
    bad[5] = classes;
    await assert.rejects(evaluateFp32(bytes, makeSplit(bad, x)), (err: Error) => err instanceof InvalidDataError && /val-labels\.npy\[5\] = 7 is out of range: the model outputs 7 classes/.test(err.message));
    const wrong: Split = { ...makeSplit(labels, x), inputs: { dtype: 'float32', data: x, shape: [samples, 2, 3] }, sampleShape: [2, 3] };
    await assert.rejects(evaluateFp32(bytes, wrong), (err: Error) => err instanceof InvalidDataError && /samples of shape \[2, 3\].*\[N, 6\]/.test(err.message));
  });
});
