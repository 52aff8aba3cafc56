/**
 * `haq eval --policy` and `haq export`, run as a user would (child processes) on a small model
 * and data folder in a temporary folder; bad input gives one error line and exit code 1.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evaluateSession } from '../../../shared/data/evaluate';
import { encodeNpy } from '../../../shared/data/npy';
import { ModelSession } from '../../../shared/onnx/runtime';
import { calibrate } from '../../../shared/quant/calibration';
import { prepareQuantEvaluator, splitFromTensor } from '../../../shared/quant/evaluator';
import { computeRecovery, recoverySource } from '../../../shared/quant/recovery';
import { expectClose } from '../../helpers/expect-close';
import { assertOneLineError, haq } from '../../helpers/cli';
import { tempDir } from '../../helpers/tmp';
import { buildMlp, randomInputs, type SmallModel } from './small-models';

const tmp = tempDir('haq-quant-cli');
after(tmp.cleanup);
const p = (name: string) => join(tmp.dir, name);




let m: SmallModel;
const calib = randomInputs(50, [48, 8]);
const val = randomInputs(51, [60, 8]);
const labels = Int32Array.from({ length: 60 }, (_, i) => (i * 7) % 10);
const policy = (names: string[]) => ({ layers: names.map((name, i) => ({ name, wBits: [8, 3, 6][i], aBits: [8, 4, 5][i] })) });

before(async () => {
  m = await buildMlp();
  writeFileSync(p('mlp.onnx'), m.bytes);
  mkdirSync(p('data'));
  writeFileSync(p('data/calib-inputs.npy'), encodeNpy({ data: calib.data, shape: calib.dims }));
  writeFileSync(p('data/val-inputs.npy'), encodeNpy({ data: val.data, shape: val.dims }));
  writeFileSync(p('data/val-labels.npy'), encodeNpy({ data: labels, shape: [60] }));
  mkdirSync(p('bad-data'));
  writeFileSync(p('bad-data/calib-inputs.npy'), encodeNpy({ data: new Float32Array(48 * 9), shape: [48, 9] }));
  writeFileSync(p('bad-data/val-inputs.npy'), encodeNpy({ data: val.data, shape: val.dims }));
  const names = m.table.layers.map((l) => l.name);
  writeFileSync(p('policy.json'), JSON.stringify(policy(names)));
  writeFileSync(p('broken.json'), '{"layers": [');
  writeFileSync(p('unknown.json'), JSON.stringify({ layers: [...policy(names).layers, { name: 'conv7', wBits: 4, aBits: 4 }] }));
  writeFileSync(p('bits.json'), JSON.stringify({ layers: names.map((name, i) => ({ name, wBits: i === 0 ? 0 : 4, aBits: i === 1 ? 9 : 4 })) }));
  writeFileSync(p('other.json'), JSON.stringify({ ...policy(names), model: { name: 'resnet18', hash: 'f'.repeat(64) } }));
});

describe('haq eval --policy / haq export', () => {
  it('eval --policy --json prints the FP32 keys plus sizeBytes, with the evaluator\'s top-1', async () => {
    const r = await haq(['eval', p('mlp.onnx'), '--data', p('data'), '--policy', p('policy.json'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    for (const k of ['top1', 'top5', 'samples', 'seconds', 'imagesPerSecond', 'sizeBytes']) assert.ok(k in out, k);
    assert.equal(out.sizeBytes, (128 * 8 + 192 * 3 + 120 * 6) / 8);
    const cal = await calibrate(m.bytes, m.table, calib, { batchSize: 128 });
    // Recovery is on by default: the same GPTQ + bias correction from the same calibration samples.
    const ev = await prepareQuantEvaluator(m.bytes, m.table, cal, { recovery: recoverySource(await computeRecovery(m.bytes, m.table, calib, { mode: 'full' })) });
    try {
      const want = await ev.evaluate(policy(m.table.layers.map((l) => l.name)), splitFromTensor(val, labels));
      assert.equal(out.top1, want.top1);
      assert.equal(out.mode, 'labels');
    } finally {
      await ev.close();
    }
  });

  it('export writes a QDQ model that onnxruntime runs with the evaluator\'s accuracy', async () => {
    const r = await haq(['export', p('mlp.onnx'), '--policy', p('policy.json'), '--data', p('data'), '--out', p('mlp.quant.onnx'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.layers.map((l: { activation: string }) => l.activation), ['qdq-int8', 'qdq-uint8', 'qdq-uint8']);
    assert.deepEqual(out.layers.map((l: { bias: string }) => l.bias), ['qdq-int32', 'qdq-int32', 'qdq-int32'], 'every bias an int32 accumulator value (the MatMul + Add one too)');
    const bytes = new Uint8Array(readFileSync(p('mlp.quant.onnx')));
    const cal = await calibrate(m.bytes, m.table, calib);
    const ev = await prepareQuantEvaluator(m.bytes, m.table, cal, { recovery: recoverySource(await computeRecovery(m.bytes, m.table, calib, { mode: 'full' })) });
    try {
      const split = splitFromTensor(val, labels);
      const want = await ev.predict(policy(m.table.layers.map((l) => l.name)), split);
      // onnxruntime's default graph optimizations (what a user deploys) and none (the ONNX semantics op by op).
      for (const graphOptimization of ['all', 'disabled'] as const) {
        const session = await ModelSession.create(bytes, { graphOptimization });
        try {
          const got = await evaluateSession(session, split);
          assert.equal(got.result.top1, want.result.top1, graphOptimization);
          expectClose(got.logits, want.logits, { atol: 1e-4, rtol: 1e-4 }, graphOptimization);
        } finally {
          await session.release();
        }
      }
    } finally {
      await ev.close();
    }
  });

  it("reads the policy's quantization record: its calibration samples and clip method; notes other calibration data", async () => {
    const names = m.table.layers.map((l) => l.name);
    const first = await calibrate(m.bytes, m.table, { data: calib.data.subarray(0, 20 * 8), dims: [20, 8] });
    const record = { weights: 'linear', perChannel: true, clipMethod: 'max', percentile: 99.99, calibSamples: 20, calibSha256: first.dataSha256, recovery: 'none', seed: 0 };
    writeFileSync(p('recorded.json'), JSON.stringify({ ...policy(names), quantization: record }));
    writeFileSync(p('other-data.json'), JSON.stringify({ ...policy(names), quantization: { ...record, calibSha256: '0'.repeat(64) } }));
    writeFileSync(p('too-many.json'), JSON.stringify({ ...policy(names), quantization: { ...record, calibSamples: 49 } }));
    const [recorded, otherData, tooMany] = await Promise.all([
      haq(['eval', p('mlp.onnx'), '--data', p('data'), '--policy', p('recorded.json'), '--json']),
      haq(['eval', p('mlp.onnx'), '--data', p('data'), '--policy', p('other-data.json'), '--json']),
      haq(['export', p('mlp.onnx'), '--data', p('data'), '--policy', p('too-many.json'), '--out', p('x.onnx')]),
    ]);
    assert.equal(recorded.code, 0, recorded.stderr);
    assert.doesNotMatch(recorded.stderr, /note/);
    const ev = await prepareQuantEvaluator(m.bytes, m.table, first, { clipMethod: 'max' });
    try {
      assert.equal(JSON.parse(recorded.stdout).top1, (await ev.evaluate(policy(names), splitFromTensor(val, labels))).top1);
    } finally {
      await ev.close();
    }
    assert.equal(otherData.code, 0, otherData.stderr);
    assert.match(otherData.stderr, /haq eval: note: .*calib-inputs\.npy is not the data the search calibrated on/);
    assertOneLineError(tooMany, 'InvalidInputError', /calibrated on 49 samples but .*calib-inputs\.npy has 48/);
  });

  it('bad input: one clear error line each', async () => {
    const model = p('mlp.onnx');
    const [broken, unknown, bits, other, shape, noData] = await Promise.all([
      haq(['eval', model, '--data', p('data'), '--policy', p('broken.json')]),
      haq(['eval', model, '--data', p('data'), '--policy', p('unknown.json')]),
      haq(['eval', model, '--data', p('data'), '--policy', p('bits.json')]),
      haq(['export', model, '--policy', p('other.json'), '--out', p('x.onnx'), '--data', p('data')]),
      haq(['eval', model, '--data', p('bad-data'), '--policy', p('policy.json')]),
      haq(['export', model, '--policy', p('policy.json'), '--out', p('x.onnx')]),
    ]);
    assertOneLineError(broken, 'InvalidPolicyError', /broken\.json is not valid JSON/);
    assertOneLineError(unknown, 'InvalidPolicyError', /unknown layers "conv7"/);
    assertOneLineError(bits, 'InvalidPolicyError', /fc1\.wBits=0, mm2\.aBits=9/);
    assertOneLineError(other, 'InvalidPolicyError', /another model.*resnet18/);
    assertOneLineError(shape, 'InvalidDataError', /calibration data has shape \[48, 9\].*\[N, 8\]/);
    assertOneLineError(noData, 'InvalidInputError', /--data DIR/);
  });
});
