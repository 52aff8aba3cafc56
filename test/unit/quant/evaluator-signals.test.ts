/**
 * The quantized evaluator's comparisons with the FP32 model (KL, SQNR, cosine, fidelity): the
 * FP32 outputs it computes beside the first evaluation of a split and caches give the same
 * figures as recomputing them per batch, and as a direct evaluation against FP32 outputs
 * computed apart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { evaluateSession, predictSplit, referenceFromOutputs } from '../../../shared/data/evaluate';
import { ModelSession } from '../../../shared/onnx/runtime';
import { calibrate } from '../../../shared/quant/calibration';
import { prepareQuantEvaluator, splitFromTensor, type QuantEvaluator } from '../../../shared/quant/evaluator';
import { uniformPolicy } from '../../../shared/quant/policy';
import { buildCnn, randomInputs, type SmallModel } from './small-models';

describe('quantized evaluation against the FP32 outputs', () => {
  let m: SmallModel;
  let cached: QuantEvaluator;
  let uncached: QuantEvaluator;
  const x = randomInputs(31, [37, ...[1, 8, 8]]);
  before(async () => {
    m = await buildCnn();
    const cal = await calibrate(m.bytes, m.table, randomInputs(30, [32, 1, 8, 8]), { batchSize: 16 });
    cached = await prepareQuantEvaluator(m.bytes, m.table, cal, { batchSize: 8 });
    uncached = await prepareQuantEvaluator(m.bytes, m.table, cal, { batchSize: 8, referenceCacheBytes: 0 });
  });
  after(async () => {
    await cached?.close();
    await uncached?.close();
  });

  it('cached and per-batch FP32 references give identical signals, equal to a direct comparison', async () => {
    const split = splitFromTensor(x);
    const policy = uniformPolicy(m.table, 3, 4);
    const a = await cached.evaluate(policy, split, { metric: 'sqnr' });
    const again = await cached.evaluate(policy, split, { metric: 'sqnr' }); // from the cache
    const b = await uncached.evaluate(policy, split, { metric: 'sqnr' });
    const strip = (r: typeof a) => ({ ...r, seconds: 0 });
    assert.deepEqual(strip(again), strip(a));
    assert.deepEqual(strip(b), strip(a));
    assert.equal(a.mode, 'fidelity');
    assert.ok(a.sqnrDb!.value > 0 && a.sqnrDb!.value < 60, `SQNR ${a.sqnrDb!.value} dB`);
    assert.ok(a.kl!.value > 0 && a.cosine!.value < 1);
    // The same against FP32 outputs computed apart, on the quantized session's feeds.
    const fp32 = await ModelSession.create(m.bytes);
    try {
      const ref = await predictSplit(fp32, split);
      const q = await cached.predict(policy, split, { metric: 'sqnr' });
      assert.equal(q.result.sqnrDb!.value, a.sqnrDb!.value);
      const direct = await evaluateSession(fp32, split, { referenceOutputs: referenceFromOutputs([{ data: ref.logits, dims: [37, ref.classes] }]), metric: 'sqnr' });
      assert.equal(direct.result.kl!.value, 0, 'FP32 against its own outputs');
    } finally {
      await fp32.release();
    }
  });

  it('the FP32 evaluation scores itself: fidelity 100, KL 0', async () => {
    const r = await cached.evaluateFp32(splitFromTensor(x));
    assert.equal(r.top1, 100);
    assert.equal(r.kl!.value, 0);
  });
});
