import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { decodeModel, type ModelProto } from '../../../shared/onnx/proto';
import { ModelSession, type FloatTensor, type Tensor } from '../../../shared/onnx/runtime';
import { optimizeWithWeightInputs, type RuntimeWeightsModel } from '../../../shared/onnx/runtime-weights';
import { buildFakeQuantModel } from '../../../shared/quant/fake-quant';
import { Rng } from '../../../shared/rng';
import { expectClose } from '../../helpers/expect-close';
import { buildWideCnn, randn, randomInputs, type SmallModel } from '../quant/small-models';

/** onnxruntime's NCHWc layout exists on x86-64 only; elsewhere the optimized graph keeps plain Convs. */
const nchwcExpected = process.arch === 'x64';

/** The model with every layer's weight as a constant named haq_w_<i> (no quantizers). */
function weightModel(m: SmallModel): { model: ModelProto; weights: Array<{ name: string; data: Float32Array; dims: number[] }> } {
  const fq = buildFakeQuantModel(decodeModel(m.bytes), m.table, { weights: 'constants', floatActivations: m.table.layers.map(() => true) });
  return { model: fq.model, weights: fq.layers.map((l) => ({ name: l.weightInput, data: l.weight, dims: l.weightDims })) };
}

function gathered(rw: RuntimeWeightsModel, name: string, data: Float32Array): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const f of rw.feeds.get(name)!) {
    const out = f.gather ? Float32Array.from(f.gather, (g) => (g < 0 ? 0 : data[g])) : data;
    feeds[f.input] = { data: out, dims: f.dims };
  }
  return feeds;
}

async function runWith(rw: RuntimeWeightsModel, weights: Map<string, Float32Array>, x: FloatTensor): Promise<Float32Array> {
  const session = await ModelSession.create(rw.bytes, { graphOptimization: rw.graphOptimization });
  try {
    let feeds: Record<string, Tensor> = { x };
    for (const [name, data] of weights) feeds = { ...feeds, ...gathered(rw, name, data) };
    const out = await session.run(feeds);
    return out[session.outputNames[0]].data;
  } finally {
    await session.release();
  }
}

describe('weights as inputs in onnxruntime\'s optimized layout', () => {
  let m: SmallModel;
  let optimized: RuntimeWeightsModel;
  let plain: RuntimeWeightsModel;
  const x = randomInputs(3, [6, 1, 12, 12]);
  before(async () => {
    m = await buildWideCnn();
    const { model, weights } = weightModel(m);
    optimized = await optimizeWithWeightInputs(model, weights);
    plain = await optimizeWithWeightInputs(model, weights, { optimize: false });
  });

  it('locates every weight in the optimized graph (NCHWc re-blocked on x86-64)', () => {
    assert.equal(optimized.optimized, true, optimized.reason);
    assert.equal(optimized.graphOptimization, 'disabled');
    assert.equal(plain.optimized, false);
    const ops = (decodeModel(optimized.bytes).graph?.node ?? []).map((n) => `${n.domain ?? ''}:${n.opType}`);
    if (nchwcExpected) {
      assert.ok(ops.filter((o) => o === 'com.microsoft.nchwc:Conv').length >= 3, ops.join(' '));
      const reblocked = [...optimized.feeds.values()].flat().filter((f) => f.gather !== null);
      assert.ok(reblocked.length >= 3, 'the Conv weights are fed in a new order');
      // a re-blocked filter may be padded: padding elements are fed 0
      for (const f of reblocked) assert.equal(f.gather!.length, f.dims.reduce((a, b) => a * b, 1));
    }
  });

  it('any weights fed through the layout give what the plain graph gives with them', async () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 3; trial++) {
      const weights = new Map([...optimized.feeds.keys()].map((name, i) => [name, randn(rng, m.table.layers[i].params, 0.3)]));
      // Biases stay as in the model; only weights are fed.
      expectClose(await runWith(optimized, weights, x), await runWith(plain, weights, x), { atol: 1e-4, rtol: 1e-4 }, `trial ${trial}`);
    }
  });

  it('weights split over several probes are located the same way', async () => {
    const { model, weights } = weightModel(m);
    const split = await optimizeWithWeightInputs(model, weights, { probeValues: 5000 });
    assert.ok(split.probes >= 2, `${split.probes} probes`);
    assert.equal(optimized.probes, 1);
    for (const [name, feeds] of optimized.feeds) {
      assert.deepEqual(
        split.feeds.get(name)!.map((f) => [f.input, f.dims, f.gather && Array.from(f.gather)]),
        feeds.map((f) => [f.input, f.dims, f.gather && Array.from(f.gather)]),
        name,
      );
    }
  });

  it('a weight folded with another constant (BatchNormalization) falls back to the plain form, still correct', async () => {
    const bn = await buildWideCnn(5, { batchNorm: true });
    const { model, weights } = weightModel(bn);
    const rw = await optimizeWithWeightInputs(model, weights);
    assert.equal(rw.optimized, false);
    assert.match(rw.reason ?? '', /computed value|folded|depends on the weight values/);
    const original = await ModelSession.create(bn.bytes);
    try {
      const want = (await original.run({ x }))[original.outputNames[0]].data;
      const got = await runWith(rw, new Map(weights.map((w) => [w.name, w.data])), x);
      expectClose(got, want, { atol: 1e-5, rtol: 1e-5 });
    } finally {
      await original.release();
    }
  });
});
