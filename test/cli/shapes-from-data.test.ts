/**
 * An older model with dynamic dims, as a user brings it: `haq eval --policy` and `haq export`
 * take the input shape from the data (no --input-shape), upgrade the opset-9 graph, and a
 * --input-shape that disagrees with the data is one clear line.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeNpy } from '../../shared/data/npy';
import { decodeModel, opsetVersion } from '../../shared/onnx/proto';
import { ModelSession } from '../../shared/onnx/runtime';
import { Rng } from '../../shared/rng';
import { opset9DynamicClassifier } from '../fixtures/models';
import { assertOneLineError, haq } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-shapes');
after(tmp.cleanup);
const p = (name: string) => join(tmp.dir, name);
const sample = [3, 10, 14];

before(async () => {
  writeFileSync(p('old.onnx'), opset9DynamicClassifier());
  const rng = new Rng(4);
  const inputs = (n: number) => encodeNpy({ data: Float32Array.from({ length: n * 3 * 10 * 14 }, () => rng.normal(0, 1)), shape: [n, ...sample] });
  mkdirSync(p('data'));
  writeFileSync(p('data/calib-inputs.npy'), inputs(16));
  writeFileSync(p('data/val-inputs.npy'), inputs(40));
  // Layer names as the layer table gives them (unnamed nodes: <op>_<index>).
  const r = await haq(['inspect', p('old.onnx'), '--input-shape', '1,3,10,14', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const names = (JSON.parse(r.stdout).layers as Array<{ name: string }>).map((l) => l.name);
  writeFileSync(p('policy.json'), JSON.stringify({ layers: names.map((name) => ({ name, wBits: 8, aBits: 8 })) }));
});

describe('shapes from the data, opset-9 model', () => {
  it('inspect says how quantizing upgrades the opset-9 graph', async () => {
    const r = await haq(['inspect', p('old.onnx'), '--input-shape', '1,3,10,14']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /opset 9: quantizing upgrades the graph to opset 13, converting Clip x1 \(min\/max attributes to inputs\), Slice x1 .*Softmax x1/);
  });

  it('eval --policy needs no --input-shape when the data fixes the dims', async () => {
    const r = await haq(['eval', p('old.onnx'), '--data', p('data'), '--policy', p('policy.json'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.mode, 'fidelity');
    assert.equal(out.samples, 40);
    assert.ok(out.top1 >= 90, `8/8 agrees with FP32 on ${out.top1} % of 40 samples`);
  });

  it('an --input-shape that agrees with the data is accepted', async () => {
    const r = await haq(['eval', p('old.onnx'), '--data', p('data'), '--policy', p('policy.json'), '--input-shape', '1,3,10,14', '--json']);
    assert.equal(r.code, 0, r.stderr);
  });

  it('a disagreeing --input-shape is one line naming both shapes and the fix', async () => {
    for (const cmd of [['eval', '--policy', p('policy.json')], ['export', '--policy', p('policy.json'), '--out', p('x.onnx')]]) {
      const [name, ...rest] = cmd;
      assertOneLineError(
        await haq([name, p('old.onnx'), '--data', p('data'), ...rest, '--input-shape', '1,3,32,32']),
        'InvalidInputError',
        /--input-shape 1,3,32,32 disagrees with .*-inputs\.npy, whose samples are \[3, 10, 14\]; drop --input-shape .* or pass 1,3,10,14/,
      );
    }
  });

  it('export with --data writes a QDQ model (opset 13 or later) that onnxruntime runs', async () => {
    const r = await haq(['export', p('old.onnx'), '--data', p('data'), '--policy', p('policy.json'), '--out', p('old.quant.onnx'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const bytes = new Uint8Array(readFileSync(p('old.quant.onnx')));
    assert.equal(opsetVersion(decodeModel(bytes)), JSON.parse(r.stdout).opset);
    assert.ok(JSON.parse(r.stdout).opset >= 13);
    const session = await ModelSession.create(bytes);
    try {
      const out = await session.run({ x: { data: new Float32Array(2 * 3 * 10 * 14).fill(0.5), dims: [2, ...sample] } });
      assert.deepEqual(out[session.outputNames[0]].dims, [2, 3]);
    } finally {
      await session.release();
    }
  });
});
