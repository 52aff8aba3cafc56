import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { decodeModel, tensorDims, tensorToFloat32, type ModelProto } from '../../../shared/onnx/proto';
import { ModelSession, type FloatTensor, type Tensor } from '../../../shared/onnx/runtime';
import { layoutValues, optimizeWithWeightInputs, type RuntimeWeightsModel } from '../../../shared/onnx/runtime-weights';
import { GraphBuilder } from '../../../shared/onnx/builder';
import { buildFakeQuantModel } from '../../../shared/quant/fake-quant';
import { Rng } from '../../../shared/rng';
import { expectClose } from '../../helpers/expect-close';
import { buildWideCnn, randn, randomInputs, type SmallModel } from '../quant/small-models';

/** onnxruntime's NCHWc layout exists on x86-64 only; elsewhere the optimized graph keeps plain Convs. */
const nchwcExpected = process.arch === 'x64';

/** The model with every layer's weight as a constant named haq_w_<i> (no quantizers), and with `biases` its bias haq_b_<i> too. */
function weightModel(m: SmallModel, biases = false): { model: ModelProto; weights: Array<{ name: string; data: Float32Array; dims: number[] }> } {
  const fq = buildFakeQuantModel(decodeModel(m.bytes), m.table, { floatActivations: m.table.layers.map(() => true) });
  return {
    model: fq.model,
    weights: fq.layers.flatMap((l) => [
      { name: l.weightInput, data: l.weight, dims: l.weightDims },
      ...(biases && l.biasInput ? [{ name: l.biasInput, data: l.bias!, dims: [l.bias!.length] }] : []),
    ]),
  };
}

function gathered(rw: RuntimeWeightsModel, name: string, data: Float32Array): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const f of rw.feeds.get(name)!) feeds[f.input] = { data: layoutValues(data, f.gather, f.scale, 1, f.offset), dims: f.dims };
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

  it('finds the layout in four optimizer runs; weights longer than the id span take a fifth, same layout', async () => {
    const { model, weights } = weightModel(m);
    assert.equal(optimized.probes, 4);
    const split = await optimizeWithWeightInputs(model, weights, { idSpan: 100 });
    assert.equal(split.probes, 5);
    for (const [name, feeds] of optimized.feeds) {
      assert.deepEqual(
        split.feeds.get(name)!.map((f) => [f.input, f.dims, f.gather && Array.from(f.gather), f.scale]),
        feeds.map((f) => [f.input, f.dims, f.gather && Array.from(f.gather), f.scale]),
        name,
      );
    }
  });

  it('a BatchNormalization folded into the Conv is a per-element scale of the layout; any weights still match the plain graph', async () => {
    const bn = await buildWideCnn(5, { batchNorm: true });
    const { model, weights } = weightModel(bn);
    const rw = await optimizeWithWeightInputs(model, weights);
    const bnPlain = await optimizeWithWeightInputs(model, weights, { optimize: false });
    assert.equal(rw.optimized, true, rw.reason);
    const stem = rw.feeds.get(weights[0].name)!;
    assert.ok(stem.some((f) => f.scale !== null), 'the stem Conv weight carries the BatchNormalization scale');
    assert.ok([...rw.feeds.values()].flat().filter((f) => f.scale !== null).length === stem.filter((f) => f.scale).length, 'only the stem is scaled');
    const original = await ModelSession.create(bn.bytes);
    try {
      const want = (await original.run({ x }))[original.outputNames[0]].data;
      expectClose(await runWith(rw, new Map(weights.map((w) => [w.name, w.data])), x), want, { atol: 1e-4, rtol: 1e-4 });
    } finally {
      await original.release();
    }
    const rng = new Rng(12);
    const other = new Map(weights.map((w) => [w.name, randn(rng, w.data.length, 0.3)]));
    expectClose(await runWith(rw, other, x), await runWith(bnPlain, other, x), { atol: 1e-4, rtol: 1e-4 });
  });

  it('a bias with a BatchNormalization folded in is an offset layout ((b - mean) s + beta); any biases still match the plain graph', async () => {
    const bn = await buildWideCnn(5, { batchNorm: true });
    const { model, weights } = weightModel(bn, true);
    const rw = await optimizeWithWeightInputs(model, weights);
    assert.equal(rw.optimized, true, rw.reason);
    const stemBias = rw.feeds.get('haq_b_0')!;
    assert.ok(stemBias.every((f) => f.offset !== null && f.scale !== null), 'the stem bias carries the BatchNormalization scale and offset');
    assert.ok(rw.feeds.get('haq_b_1')!.every((f) => f.offset === null), 'the other biases have none');
    const rng = new Rng(13);
    const other = new Map(weights.map((w) => [w.name, randn(rng, w.data.length, 0.3)]));
    const bnPlain = await optimizeWithWeightInputs(model, weights, { optimize: false });
    expectClose(await runWith(rw, other, x), await runWith(bnPlain, other, x), { atol: 1e-4, rtol: 1e-4 });
  });

  it('no writable temp folder for the optimized graph: the plain form, with the reason', async () => {
    const { model, weights } = weightModel(m);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = '/nonexistent/haq-tmp';
    let rw: RuntimeWeightsModel;
    try {
      rw = await optimizeWithWeightInputs(model, weights);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    assert.equal(rw.optimized, false);
    assert.match(rw.reason ?? '', /optimizer failed: .*ENOENT/);
    const w = new Map(weights.map((v) => [v.name, v.data]));
    expectClose(await runWith(rw, w, x), await runWith(plain, w, x), { atol: 1e-6, rtol: 1e-6 });
  });

  /** c1 -> c2 -> c3 where c3's weight is f(c2's weight) computed from constants: the optimizer folds it into a new one. */
  async function foldedModel(derive: (g: GraphBuilder, w: string) => string) {
    const rng = new Rng(4);
    const g = new GraphBuilder({ name: 'folded', opset: 13 });
    const input = g.input('x', 'float32', ['N', 1, 12, 12]);
    const h = g.relu(g.conv(input, { name: 'c1', weight: randn(rng, 16 * 9, 0.4), weightDims: [16, 1, 3, 3], pads: [1, 1, 1, 1] }));
    const h2 = g.relu(g.conv(h, { name: 'c2', weight: randn(rng, 16 * 16 * 9, 0.1), weightDims: [16, 16, 3, 3], pads: [1, 1, 1, 1] }));
    const h3 = g.op('Conv', [h2, derive(g, 'c2_w')], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    g.output(g.flatten(g.globalAveragePool(h3)));
    const bytes = g.toBytes();
    const model = decodeModel(bytes);
    const weights = ['c1_w', 'c2_w'].map((name) => {
      const t = model.graph!.initializer!.find((i) => i.name === name)!;
      return { name, data: tensorToFloat32(t), dims: tensorDims(t) };
    });
    return { bytes, model, weights, rw: await optimizeWithWeightInputs(model, weights) };
  }

  it('a weight the optimizer adds another constant to is an offset layout: any weights still match the plain graph', async () => {
    const rng = new Rng(6);
    const { model, weights, rw } = await foldedModel((g, w) => g.add(w, g.initializer('shift', randn(rng, 16 * 16 * 9, 0.05), [16, 16, 3, 3])));
    assert.equal(rw.optimized, true, rw.reason);
    assert.ok(rw.feeds.get('c2_w')!.some((f) => f.offset !== null), 'W + c is fed as W plus an offset');
    const plainForm = await optimizeWithWeightInputs(model, weights, { optimize: false });
    const other = new Map(weights.map((w) => [w.name, randn(rng, w.data.length, 0.3)]));
    expectClose(await runWith(rw, other, x), await runWith(plainForm, other, x), { atol: 1e-4, rtol: 1e-4 });
  });

  it('a weight the optimizer combines with itself (not affine) falls back to the plain form, still correct', async () => {
    const { bytes, weights, rw } = await foldedModel((g, w) => g.op('Mul', [w, w]));
    assert.equal(rw.optimized, false);
    assert.match(rw.reason ?? '', /computed value|re-ordering|depends on the weight values|reaches/);
    const original = await ModelSession.create(bytes);
    try {
      const want = (await original.run({ x }))[original.outputNames[0]].data;
      expectClose(await runWith(rw, new Map(weights.map((w) => [w.name, w.data])), x), want, { atol: 1e-5, rtol: 1e-5 });
    } finally {
      await original.release();
    }
  });
});
