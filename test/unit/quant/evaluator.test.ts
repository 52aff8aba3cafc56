import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CorruptObjectError, InvalidDataError, InvalidInputError, InvalidPolicyError, UnsupportedModelError } from '../../../shared/errors';
import { ModelSession, type FloatTensor } from '../../../shared/onnx/runtime';
import { decodeModel, encodeModel } from '../../../shared/onnx/proto';
import { searchKeys } from '../../../shared/keys';
import { cachedCalibration, Calibration, calibrate, passBatchSize } from '../../../shared/quant/calibration';
import { dynamicSpatialCnn } from '../../fixtures/models';
import { FsStore } from '../../../shared/store/fs-store';
import { tempDir } from '../../helpers/tmp';
import { prepareQuantEvaluator, splitFromTensor, type QuantEvaluator } from '../../../shared/quant/evaluator';
import { accumulatorBias, activationCodes, activationQuant, fakeQuantizeActivation, quantizeWeightsLinear } from '../../../shared/quant/linear';
import { uniformPolicy, type LayerBits } from '../../../shared/quant/policy';
import { expectClose } from '../../helpers/expect-close';
import { buildCnn, buildMlp, buildWideCnn, randomInputs, type SmallModel } from './small-models';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset } from '../../../shared/data/dataset';
import { inspectModel } from '../../../shared/onnx/inspect';
import { Rng } from '../../../shared/rng';

const N = 40;

/**
 * Straightforward reference: the MLP forward in JS with the reference quantizers. A layer whose
 * activation is quantized holds its bias on the int32 accumulator grid (s_a x s_w).
 */
function referenceMlp(m: SmallModel, cal: Calibration, layers: LayerBits[], x: FloatTensor): Float32Array {
  const n = x.dims[0];
  const quantizer = (i: number) => {
    const a = layers[i].aBits;
    const c = cal.layers[i];
    return a === null ? null : activationQuant(c.clip.mse[a - 1], a, c.signed);
  };
  const act = (i: number, v: Float32Array): Float32Array => {
    const q = quantizer(i);
    return q ? fakeQuantizeActivation(v, q) : v;
  };
  // y = x W^T (transB = 1, W [out, in]) or x W (W [in, out]), + b
  const dense = (v: Float32Array, inF: number, outF: number, name: string, transB: boolean, i: number): Float32Array => {
    const { w, b: floatBias, dims } = m.weights[name];
    const q = quantizeWeightsLinear(w, dims, layers[i].wBits, { axis: transB ? 0 : 1 });
    const wq = q.values;
    const a = quantizer(i);
    const b = floatBias && a ? accumulatorBias(floatBias, a.scale, q.scales).values : floatBias;
    const y = new Float32Array(n * outF);
    for (let r = 0; r < n; r++)
      for (let o = 0; o < outF; o++) {
        let s = b ? b[o] : 0;
        for (let k = 0; k < inF; k++) s += v[r * inF + k] * (transB ? wq[o * inF + k] : wq[k * outF + o]);
        y[r * outF + o] = s;
      }
    return y;
  };
  const relu = (v: Float32Array) => v.map((t) => Math.max(0, t));
  let h = relu(dense(act(0, x.data), 8, 16, 'fc1', true, 0));
  h = relu(dense(act(1, h), 16, 12, 'mm2', false, 1));
  return dense(act(2, h), 12, 10, 'fc3', false, 2);
}

describe('fake-quant evaluator on an MLP (Gemm transB=1, MatMul, Gemm transB=0)', () => {
  let m: SmallModel;
  let cal: Calibration;
  let ev: QuantEvaluator;
  const x = randomInputs(21, [N, 8]);
  before(async () => {
    m = await buildMlp();
    cal = await calibrate(m.bytes, m.table, randomInputs(20, [64, 8]), { batchSize: 16 });
    ev = await prepareQuantEvaluator(m.bytes, m.table, cal, { debugOutputs: true });
  });
  after(async () => ev?.close());

  const policies: Array<[string, LayerBits[]]> = [
    ['8/8', [8, 8, 8].map((b, i) => ({ name: ['fc1', 'mm2', 'fc3'][i], wBits: b, aBits: b }))],
    ['4/4', [4, 4, 4].map((b, i) => ({ name: ['fc1', 'mm2', 'fc3'][i], wBits: b, aBits: b }))],
    ['2/2', [2, 2, 2].map((b, i) => ({ name: ['fc1', 'mm2', 'fc3'][i], wBits: b, aBits: b }))],
    ['1/1', [1, 1, 1].map((b, i) => ({ name: ['fc1', 'mm2', 'fc3'][i], wBits: b, aBits: b }))],
    [
      'mixed with a float activation',
      [
        { name: 'fc1', wBits: 7, aBits: 3 },
        { name: 'mm2', wBits: 3, aBits: null },
        { name: 'fc3', wBits: 5, aBits: 6 },
      ],
    ],
  ];
  for (const [label, layers] of policies) {
    it(`${label}: logits match the JS reference; integer codes are bit-exact`, async () => {
      const codes = ev.layers.filter((_, i) => layers[i].aBits !== null).map((l) => l.codesName);
      const out = await ev.run({ layers }, x, ['fc3_out', ...codes, 'relu_0_out', 'relu_1_out']);
      expectClose(out.fc3_out.data, referenceMlp(m, cal, layers, x), { atol: 1e-4, rtol: 1e-4 }, 'logits');
      const layerInputs = [x.data, out.relu_0_out.data, out.relu_1_out.data];
      layers.forEach((l, i) => {
        if (l.aBits === null) return;
        const c = cal.layers[i];
        const want = activationCodes(layerInputs[i], activationQuant(c.clip.mse[l.aBits - 1], l.aBits, c.signed));
        assert.deepEqual(Array.from(Int32Array.from(out[ev.layers[i].codesName].data)), Array.from(want), `codes of ${l.name}`);
      });
    });
  }

  it('calibration: signed input layer, unsigned post-ReLU layers, JSON round trip', () => {
    assert.deepEqual(cal.layers.map((l) => l.signed), [true, false, false]);
    let maxAbs = 0;
    for (const v of randomInputs(20, [64, 8]).data) maxAbs = Math.max(maxAbs, Math.abs(v));
    assert.equal(cal.layers[0].maxAbs, maxAbs);
    for (const l of cal.layers) for (let b = 0; b < 8; b++) assert.ok(l.clip.mse[b] <= l.clip.max[b] && l.clip.percentile[b] <= l.clip.max[b]);
    assert.deepEqual(Calibration.parse(JSON.parse(JSON.stringify(cal))), cal);
  });

  it('switching policies on the one session leaves no state behind', async () => {
    const split = splitFromTensor(x);
    const a = await ev.evaluate(uniformPolicy(m.table, 3, 3), split);
    await ev.evaluate(uniformPolicy(m.table, 8, null), split);
    const again = await ev.evaluate(uniformPolicy(m.table, 3, 3), split);
    assert.deepEqual({ ...again, seconds: 0 }, { ...a, seconds: 0 });
  });

  it('labels mode: top-1 is the hand-computed argmax agreement', async () => {
    const fp = await ev.predict(null, splitFromTensor(x));
    const labels = fp.predictions; // FP32 argmax as labels: FP32 scores 100
    const split = splitFromTensor(x, labels);
    assert.equal((await ev.evaluateFp32(split)).top1, 100);
    const policy = uniformPolicy(m.table, 2, 2);
    const q = await ev.predict(policy, split);
    let agree = 0;
    for (let i = 0; i < N; i++) {
      const row = q.logits.subarray(i * 10, i * 10 + 10);
      if (row.indexOf(Math.max(...row)) === labels[i]) agree++;
    }
    assert.equal(q.result.top1, (100 * agree) / N);
    assert.equal(q.result.mode, 'labels');
    // fidelity mode (no labels) gives the same number against the FP32 predictions
    assert.equal((await ev.evaluate(policy, splitFromTensor(x))).top1, q.result.top1);
  });
});

describe('fake-quant evaluator on a CNN (Conv, depthwise Conv, Gemm)', () => {
  let m: SmallModel;
  let cal: Calibration;
  let ev: QuantEvaluator;
  const x = randomInputs(31, [N, 1, 8, 8]);
  before(async () => {
    m = await buildCnn();
    cal = await calibrate(m.bytes, m.table, randomInputs(30, [32, 1, 8, 8]));
    ev = await prepareQuantEvaluator(m.bytes, m.table, cal, { debugOutputs: true });
  });
  after(async () => ev?.close());

  it('with no policy the output equals the original FP32 model', async () => {
    const plain = await ModelSession.create(m.bytes);
    const want = await plain.run({ x });
    await plain.release();
    const got = await ev.run(null, x);
    expectClose(got[ev.table.layers.at(-1)!.outputName].data, want[Object.keys(want)[0]].data, { atol: 1e-5, rtol: 1e-5 });
  });

  for (const bits of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`${bits} bits: per-channel weights quantized as the reference; every layer's codes bit-exact`, async () => {
      const policy = uniformPolicy(m.table, bits, bits);
      for (const [i, l] of ev.layers.entries()) {
        const { w, dims } = m.weights[l.name];
        const want = quantizeWeightsLinear(w, dims, bits, { axis: l.channelAxis }).values;
        assert.deepEqual(Array.from(await ev.quantizedWeights(i, bits)), Array.from(want), `weights of ${l.name}`);
      }
      const names = ev.layers.map((l) => l.activationName).filter((n) => n !== 'x');
      const out = await ev.run(policy, x, [...ev.layers.map((l) => l.codesName), ...names]);
      ev.layers.forEach((l, i) => {
        const input = l.activationName === 'x' ? x.data : out[l.activationName].data;
        const c = cal.layers[i];
        const want = activationCodes(input, activationQuant(c.clip.mse[bits - 1], bits, c.signed));
        assert.deepEqual(Array.from(Int32Array.from(out[l.codesName].data)), Array.from(want), `codes of ${l.name}`);
      });
    });
  }

  for (const opset of [11, 9]) it(`opset ${opset} (${opset < 11 ? 'upgraded to 11, ' : ''}Clip on floats after the Cast): the same codes and logits as opset 13`, async () => {
    const old = await buildCnn(2, opset);
    const ocal = await calibrate(old.bytes, old.table, randomInputs(30, [32, 1, 8, 8]));
    const oev = await prepareQuantEvaluator(old.bytes, old.table, ocal, { debugOutputs: true });
    try {
      assert.ok(oev.layers.every((l) => l.boundsType === 'float32'));
      assert.ok(ev.layers.every((l) => l.boundsType !== 'float32'));
      for (const bits of [1, 3, 8]) {
        const policy = { layers: uniformPolicy(m.table, bits, bits).layers };
        const names = [...ev.layers.map((l) => l.codesName), m.table.layers.at(-1)!.outputName];
        const [a, b] = [await oev.run(policy, x, names), await ev.run(policy, x, names)];
        for (const l of ev.layers) assert.deepEqual(Array.from(a[l.codesName].data), Array.from(b[l.codesName].data), `${bits} bits, codes of ${l.name}`);
        expectClose(a[names.at(-1)!].data, b[names.at(-1)!].data, { atol: 1e-5, rtol: 1e-5 });
      }
    } finally {
      await oev.close();
    }
  });

  it('k-means mode feeds at most 2^b distinct weights per layer, deterministically', async () => {
    const km = await prepareQuantEvaluator(m.bytes, m.table, null, { weightMode: 'kmeans', seed: 3 });
    const km2 = await prepareQuantEvaluator(m.bytes, m.table, null, { weightMode: 'kmeans', seed: 3 });
    try {
      const policy = uniformPolicy(m.table, 2, null);
      for (const [i, l] of km.layers.entries()) {
        const w = await km.quantizedWeights(i, 2);
        assert.ok(new Set(w).size <= 4, `${l.name} has ${new Set(w).size} distinct weights`);
        assert.deepEqual(Array.from(w), Array.from(await km2.quantizedWeights(i, 2)));
      }
      const [feeds, feeds2] = [await km.policyFeeds(policy), await km2.policyFeeds(policy)];
      for (const name of Object.keys(feeds)) assert.deepEqual(feeds[name].data, feeds2[name].data, name);
      const r = await km.evaluate(policy, splitFromTensor(x));
      assert.equal(r.mode, 'fidelity');
      assert.ok(r.top1! >= 0 && r.top1! <= 100);
    } finally {
      await km.close();
      await km2.close();
    }
  });

  it('a fixed-batch model (batch dim 1) evaluates every sample and agrees with the dynamic one', async () => {
    const fixed = await buildCnn(2, 13, 1);
    const fcal = await calibrate(fixed.bytes, fixed.table, randomInputs(30, [32, 1, 8, 8]));
    assert.deepEqual(fcal.layers.map((l) => l.clip), cal.layers.map((l) => l.clip));
    const fev = await prepareQuantEvaluator(fixed.bytes, fixed.table, fcal);
    try {
      const policy = { layers: uniformPolicy(m.table, 4, 4).layers };
      const a = await fev.evaluate(policy, splitFromTensor(x));
      const b = await ev.evaluate(policy, splitFromTensor(x));
      assert.equal(a.samples, N);
      assert.equal(a.top1, b.top1);
    } finally {
      await fev.close();
    }
  });
});

describe('the fast session: onnxruntime\'s optimized graph, one session per search', () => {
  let m: SmallModel;
  let cal: Calibration;
  let fast: QuantEvaluator;
  let plain: QuantEvaluator;
  const x = randomInputs(41, [24, 1, 12, 12]);
  const rng = new Rng(5);
  const randomPolicy = (floatAt = -1): LayerBits[] =>
    m.table.layers.map((l, i) => ({ name: l.name, wBits: 1 + rng.int(8), aBits: i === floatAt ? null : 1 + rng.int(8) }));
  before(async () => {
    m = await buildWideCnn();
    cal = await calibrate(m.bytes, m.table, randomInputs(40, [32, 1, 12, 12]));
    fast = await prepareQuantEvaluator(m.bytes, m.table, cal);
    plain = await prepareQuantEvaluator(m.bytes, m.table, cal, { runtimeLayout: 'plain' });
  });
  after(async () => {
    await fast?.close();
    await plain?.close();
  });

  it('runs the optimized graph with the quantizers on the blocked tensors', () => {
    const [info] = fast.sessions();
    assert.equal(info.optimized, true, info.reason);
    assert.equal(info.floatLayers, '');
    if (process.arch === 'x64') assert.ok(info.reordersRemoved >= 3, `${info.reordersRemoved} reorders removed`);
    assert.equal(plain.sessions()[0].optimized, false);
  });

  it('agrees with the plain graph on random policies (1-8 bits, signed 1-bit input layer included)', async () => {
    const out = (ev: QuantEvaluator, layers: LayerBits[]) => ev.run({ layers }, x).then((o) => o[ev.table.layers.at(-1)!.outputName].data);
    for (let trial = 0; trial < 6; trial++) {
      const layers = randomPolicy();
      if (trial === 0) layers[0].aBits = 1; // the input layer is signed: sign(x) * alpha
      expectClose(await out(fast, layers), await out(plain, layers), { atol: 1e-4, rtol: 1e-4 }, JSON.stringify(layers));
    }
  });

  it('every search policy runs on the one session; float activations open one more', async () => {
    const labelled = splitFromTensor(x, new Int32Array(x.dims[0]).map((_, i) => i % 10)); // labels: no FP32 reference needed
    for (let i = 0; i < 20; i++) await fast.evaluate({ layers: randomPolicy() }, labelled);
    assert.equal(fast.sessions().length, 1);
    const mixed = randomPolicy(2);
    await fast.evaluate({ layers: mixed }, labelled);
    await fast.evaluate({ layers: mixed }, labelled);
    assert.deepEqual(fast.sessions().map((s) => s.floatLayers), ['', '2']);
    expectClose(
      (await fast.run({ layers: mixed }, x))[m.table.layers.at(-1)!.outputName].data,
      (await plain.run({ layers: mixed }, x))[m.table.layers.at(-1)!.outputName].data,
      { atol: 1e-4, rtol: 1e-4 },
    );
    // FP32 evaluation runs the model as given in its own session: no rewritten graph.
    const fp32 = await fast.predict(null, labelled);
    assert.deepEqual(fast.sessions().map((s) => s.floatLayers), ['', '2']);
    const original = await ModelSession.create(m.bytes);
    try {
      const want = (await original.run({ x }))[original.outputNames[0]].data;
      expectClose(fp32.logits, want, { atol: 1e-6, rtol: 1e-6 });
      // run(null) (tests, debug outputs) uses the rewritten graph with every activation float.
      expectClose((await fast.run(null, x))[m.table.layers.at(-1)!.outputName].data, want, { atol: 1e-5, rtol: 1e-5 });
    } finally {
      await original.release();
    }
    assert.deepEqual(fast.sessions().map((s) => s.floatLayers), ['', '2', '0,1,2,3,4']);
  });
});

describe('zoo models on the fast session', () => {
  const zoo = join(import.meta.dirname, '..', '..', '..', 'models', 'zoo');
  for (const name of ['fmnist-cnn', 'fmnist-mobilenet', 'fmnist-resnet']) {
    it(`${name}: optimized graph; uniform 8/8 within 0.5 top-1 points of FP32; same top-1 as the plain graph`, { skip: !existsSync(join(zoo, name)) }, async () => {
      const bytes = new Uint8Array(readFileSync(join(zoo, name, 'model.onnx')));
      const table = await inspectModel(bytes, { what: name });
      const data = await loadDataset(new FsStore(join(zoo, 'data')), '', ['calib', 'val']);
      const calibration = await calibrate(bytes, table, data.calib!);
      const fast = await prepareQuantEvaluator(bytes, table, calibration, { batchSize: 250 });
      const plain = await prepareQuantEvaluator(bytes, table, calibration, { batchSize: 250, runtimeLayout: 'plain' });
      try {
        assert.equal(fast.sessions()[0].optimized, true, fast.sessions()[0].reason);
        const limit = 1000;
        const fp32 = await fast.evaluateFp32(data.val!, { limit });
        const p88 = uniformPolicy(table, 8, 8);
        const q = await fast.evaluate(p88, data.val!, { limit });
        assert.ok(fp32.top1! - q.top1! <= 0.5, `8/8 ${q.top1} vs FP32 ${fp32.top1}`);
        const p = uniformPolicy(table, 4, 5);
        assert.equal((await fast.evaluate(p, data.val!, { limit })).top1, (await plain.evaluate(p, data.val!, { limit })).top1);
      } finally {
        await fast.close();
        await plain.close();
      }
    });
  }
});

describe('evaluator bad input', () => {
  it('calibration data of the wrong shape -> InvalidDataError naming both shapes', async () => {
    const m = await buildCnn();
    await assert.rejects(calibrate(m.bytes, m.table, randomInputs(1, [4, 1, 7, 7])), (err: unknown) => {
      assert.ok(err instanceof InvalidDataError);
      assert.match((err as Error).message, /\[4, 1, 7, 7\].*\[N, 1, 8, 8\]/);
      return true;
    });
    await assert.rejects(calibrate(m.bytes, m.table, randomInputs(1, [4, 64])), InvalidDataError);
  });

  it('evaluation data of the wrong shape -> InvalidDataError', async () => {
    const m = await buildMlp();
    const ev = await prepareQuantEvaluator(m.bytes, m.table, null);
    try {
      await assert.rejects(ev.evaluate(uniformPolicy(m.table, 4, null), splitFromTensor(randomInputs(1, [3, 9]))), InvalidDataError);
    } finally {
      await ev.close();
    }
  });

  it('a calibration or a policy for another model is rejected', async () => {
    const mlp = await buildMlp();
    const other = await buildMlp(9);
    const cal = await calibrate(other.bytes, other.table, randomInputs(1, [8, 8]));
    await assert.rejects(prepareQuantEvaluator(mlp.bytes, mlp.table, cal), CorruptObjectError);
    const ev = await prepareQuantEvaluator(mlp.bytes, mlp.table, null);
    try {
      await assert.rejects(ev.policyFeeds(uniformPolicy(other.table, 4, null)), InvalidPolicyError);
      await assert.rejects(ev.policyFeeds({ layers: [{ name: 'fc1', wBits: 9, aBits: 4 }] }), /fc1\.wBits=9/);
      // activation bits without a calibration
      await assert.rejects(ev.policyFeeds({ layers: uniformPolicy(mlp.table, 4, 4).layers }), InvalidInputError);
    } finally {
      await ev.close();
    }
  });

  it('a model below opset 7 is rejected with the fix', async () => {
    const m = await buildCnn(2, 10);
    const model = decodeModel(m.bytes);
    model.opsetImport = [{ domain: '', version: 6 }];
    await assert.rejects(prepareQuantEvaluator(encodeModel(model), m.table, null), (err: unknown) => {
      assert.ok(err instanceof UnsupportedModelError);
      assert.match((err as Error).message, /opset 6; haq reads opset 7 and later/);
      return true;
    });
  });
});

describe('cachedCalibration', () => {
  it('computes once, then reads the stored object; recomputes for another model', async () => {
    const tmp = tempDir('haq-cal');
    try {
      const store = new FsStore(tmp.dir);
      const m = await buildMlp();
      const other = await buildMlp(9);
      const key = searchKeys.calibration('s1');
      let computed = 0;
      const compute = (mm: SmallModel) => async () => {
        computed++;
        return calibrate(mm.bytes, mm.table, randomInputs(1, [16, 8]));
      };
      const first = await cachedCalibration(store, key, m.table, compute(m));
      const second = await cachedCalibration(store, key, m.table, compute(m));
      assert.equal(computed, 1);
      assert.deepEqual(second, first);
      const third = await cachedCalibration(store, key, other.table, compute(other));
      assert.equal(computed, 2);
      assert.equal(third.modelHash, other.table.modelHash);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('the evaluator batch: bounded by the memory of its layer inputs', () => {
  it('runs 64 samples at a time on small inputs, fewer on large ones, and what it is asked for', async () => {
    const bytes = dynamicSpatialCnn();
    const at = async (side: number, batchSize?: number): Promise<number> => {
      const table = await inspectModel(bytes, { inputShape: [1, 3, side, side] });
      const evaluator = await prepareQuantEvaluator(bytes, table, null, { batchSize });
      try {
        return evaluator.batchSize;
      } finally {
        await evaluator.close();
      }
    };
    assert.equal(await at(28), 64);
    // One layer reading the 3x2048x2048 input: 48 MiB of float32 per sample, counted twice: 10 in PASS_MEMORY_BYTES (1 GiB).
    const large = await at(2048);
    assert.equal(large, passBatchSize(2 * 3 * 2048 * 2048 * 4));
    assert.equal(large, 10);
    assert.equal(await at(2048, 5), 5);
  });
});
