import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { evaluateSession } from '../../../shared/data/evaluate';
import { InvalidInputError, InvalidPolicyError } from '../../../shared/errors';
import { GraphBuilder } from '../../../shared/onnx/builder';
import { inspectModel } from '../../../shared/onnx/inspect';
import { decodeModel } from '../../../shared/onnx/proto';
import { ModelSession } from '../../../shared/onnx/runtime';
import { calibrate, type Calibration } from '../../../shared/quant/calibration';
import { prepareQuantEvaluator, splitFromTensor, type QuantEvaluator, type RecoverySource } from '../../../shared/quant/evaluator';
import { computeRecovery, policyLayers, recoverySource } from '../../../shared/quant/recovery';
import { DataTypeInt4, exportQuantizedModel, packInt4 } from '../../../shared/quant/export';
import type { LayerBits } from '../../../shared/quant/policy';
import { Rng } from '../../../shared/rng';
import { expectClose } from '../../helpers/expect-close';
import { buildCnn, buildMlp, randn, randomInputs, type SmallModel } from './small-models';

const uniform = (m: SmallModel, w: number, a: number | null): { layers: LayerBits[] } => ({
  layers: m.table.layers.map((l) => ({ name: l.name, wBits: w, aBits: a })),
});

describe('packInt4', () => {
  it('packs two nibbles per byte, first value low', () => {
    assert.deepEqual(Array.from(packInt4([1, -2, 7])), [0xe1, 0x07]);
  });
});

for (const [label, build, dims] of [
  ['MLP', buildMlp, [120, 8]],
  ['CNN', buildCnn, [120, 1, 8, 8]],
] as const) {
  describe(`export of the ${label}: onnxruntime runs it with the evaluator's accuracy`, () => {
    let m: SmallModel;
    let cal: Calibration;
    let ev: QuantEvaluator;
    let recovery: RecoverySource;
    const split = splitFromTensor(randomInputs(41, [...dims]));
    before(async () => {
      m = await build();
      const calibData = randomInputs(40, [64, ...dims.slice(1)]);
      cal = await calibrate(m.bytes, m.table, calibData);
      recovery = recoverySource(await computeRecovery(m.bytes, m.table, calibData, { mode: 'full' }));
      ev = await prepareQuantEvaluator(m.bytes, m.table, cal, { recovery });
    });
    after(async () => ev?.close());

    const cases: Array<[string, (m: SmallModel) => { layers: LayerBits[] }, string[]]> = [
      ['8/8', (mm) => uniform(mm, 8, 8), ['qdq-int8']],
      ['4/4', (mm) => uniform(mm, 4, 4), ['qdq-int4']],
      ['3/5', (mm) => uniform(mm, 3, 5), ['qdq-int4']],
      ['1/1', (mm) => uniform(mm, 1, 1), ['qdq-int4']],
      ['6/float', (mm) => uniform(mm, 6, null), ['qdq-int8', 'float']],
      ['mixed', (mm) => ({ layers: mm.table.layers.map((l, i) => ({ name: l.name, wBits: [8, 2, 5][i], aBits: [8, 4, 7][i] })) }), ['qdq-int4', 'qdq-int8']],
    ];
    for (const [name, policyOf, formats] of cases) {
      it(`${name} with recovery: same top-1 and logits, with onnxruntime's default optimizations and without`, async () => {
        const policy = policyOf(m);
        const ex = exportQuantizedModel(m.bytes, m.table, policy, cal, { recovered: await policyLayers(recovery, policy.layers) });
        assert.equal(ex.opset, 21);
        const used = new Set(ex.layers.flatMap((l) => [l.weight, l.activation]));
        for (const f of formats) assert.ok(used.has(f as never), `${f} in ${[...used].join(', ')}`);
        for (const l of ex.layers) if (l.aBits !== null) assert.notEqual(l.activation, 'float', `${l.name}: quantized activation exported as float`);
        for (const l of ex.layers) assert.equal(l.bias, l.aBits === null ? 'float' : 'qdq-int32', `${l.name}: bias`);
        const fp = await ev.predict(null, split);
        const want = await ev.predict(policy, split);
        // 'disabled': the ONNX semantics op by op; 'all': what a user deploys (fusions, integer kernels).
        // Not for weight-only layers (float activations): there onnxruntime may run a MatMulNBits
        // kernel that quantizes the activation itself (docs/quantization.md, Deployment parity).
        const levels = policy.layers.every((l) => l.aBits !== null) ? (['disabled', 'all'] as const) : (['disabled'] as const);
        for (const graphOptimization of levels) {
          const session = await ModelSession.create(ex.bytes, { graphOptimization });
          try {
            const got = await evaluateSession(session, split, { reference: fp.predictions });
            assert.equal(got.result.top1, want.result.top1, graphOptimization);
            expectClose(got.logits, want.logits, { atol: 1e-4, rtol: 1e-4 }, `${graphOptimization} logits`);
          } finally {
            await session.release();
          }
        }
      });
    }

  });
}

describe('export format', () => {
  let m: SmallModel;
  let cal: Calibration;
  before(async () => {
    m = await buildCnn();
    cal = await calibrate(m.bytes, m.table, randomInputs(40, [16, 1, 8, 8]));
  });

  it('narrows sub-8-bit activations with a Clip before 8-bit QDQ and records every layer in metadata_props', () => {
    const ex = exportQuantizedModel(m.bytes, m.table, uniform(m, 4, 3), cal);
    const model = decodeModel(ex.bytes);
    const nodes = model.graph!.node!;
    assert.ok(nodes.some((n) => n.name === 'haq_qdq_0_narrow' && n.opType === 'Clip' && n.input!.length === 3));
    assert.ok(nodes.some((n) => n.name === 'haq_qdq_0_quantize' && n.opType === 'QuantizeLinear'));
    assert.ok(nodes.some((n) => n.name === 'haq_qdq_0_weight' && n.opType === 'DequantizeLinear'));
    assert.ok(!nodes.some((n) => n.name?.startsWith('haq_fakequant_')));
    const meta = Object.fromEntries(model.metadataProps!.map((p) => [p.key, p.value]));
    const summary = JSON.parse(meta['haq.quantization']!);
    assert.equal(summary.format, 'haq-qdq-v1');
    assert.deepEqual(summary.layers.map((l: { aBits: number }) => l.aBits), [3, 3, 3]);
    assert.ok(summary.layers.every((l: { activation: string }) => /^qdq-u?int8$/.test(l.activation)));
    assert.match(meta['haq.note']!, /All quantization is standard/);
    // 4-bit weights are INT4 initializers; the FP32 weights are gone
    const inits = model.graph!.initializer!;
    assert.equal(inits.find((t) => t.name === 'haq_0_w_codes')!.dataType, DataTypeInt4.INT4);
    assert.ok(!inits.some((t) => t.name === 'conv1_w'));
  });

  it('k-means weights: a UINT8 index tensor and a codebook, equal to the evaluator in k-means mode', async () => {
    const policy = uniform(m, 2, null);
    const ex = exportQuantizedModel(m.bytes, m.table, policy, null, { weightMode: 'kmeans', seed: 4 });
    assert.deepEqual([...new Set(ex.layers.map((l) => l.weight))], ['kmeans-uint8']);
    const ev = await prepareQuantEvaluator(m.bytes, m.table, null, { weightMode: 'kmeans', seed: 4 });
    const session = await ModelSession.create(ex.bytes, { graphOptimization: 'disabled' });
    try {
      const x = randomInputs(3, [10, 1, 8, 8]);
      const want = (await ev.run(policy, x))[m.table.layers[2].outputName].data;
      const got = await session.run({ x });
      expectClose(got[Object.keys(got)[0]].data, want, { atol: 1e-6 });
    } finally {
      await session.release();
      await ev.close();
    }
  });

  it('keeps the opset (8-bit containers, fake-quant 4-bit activations) when an op is not known to be stable up to 21', async () => {
    const rng = new Rng(1);
    const g = new GraphBuilder({ opset: 13 });
    const x = g.input('x', 'float32', ['N', 6]);
    const h = g.op('Selu', [g.gemm(x, { name: 'fc1', weight: randn(rng, 24), weightDims: [4, 6] })]);
    g.output(g.gemm(h, { name: 'fc2', weight: randn(rng, 12), weightDims: [3, 4] }));
    const bytes = g.toBytes();
    const table = await inspectModel(bytes);
    const c = await calibrate(bytes, table, randomInputs(1, [32, 6]));
    const ex = exportQuantizedModel(bytes, table, { layers: table.layers.map((l) => ({ name: l.name, wBits: 4, aBits: 4 })) }, c);
    assert.equal(ex.opset, 13);
    assert.deepEqual(ex.layers.map((l) => l.weight), ['qdq-int8', 'qdq-int8']);
    assert.ok(ex.layers.every((l) => /^qdq-u?int8$/.test(l.activation)));
    const ev = await prepareQuantEvaluator(bytes, table, c);
    const session = await ModelSession.create(ex.bytes, { graphOptimization: 'disabled' });
    try {
      const xs = randomInputs(2, [8, 6]);
      const got = await session.run({ x: xs });
      expectClose(got[Object.keys(got)[0]].data, (await ev.run({ layers: ex.layers }, xs))[table.layers[1].outputName].data, { atol: 1e-6 });
    } finally {
      await session.release();
      await ev.close();
    }
  });

  it('rejects activation bits without calibration and a policy that does not fit', () => {
    assert.throws(() => exportQuantizedModel(m.bytes, m.table, uniform(m, 4, 4), null), (err: unknown) => {
      assert.ok(err instanceof InvalidInputError);
      assert.match((err as Error).message, /conv1, dw2, fc.*--data/);
      return true;
    });
    assert.throws(() => exportQuantizedModel(m.bytes, m.table, { layers: [{ name: 'nope', wBits: 4, aBits: null }] }, null), InvalidPolicyError);
  });
});
