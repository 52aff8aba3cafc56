/**
 * The `haq inspect` and `haq eval` commands, run as a user would (a child process), on models
 * and data folders written to a temporary folder. Every bad input must give one error line
 * on stderr, exit code 1 and no stack trace.
 */
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeNpy } from '../../shared/data/npy';
import { Rng } from '../../shared/rng';
import { assertOneLineError, haq } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';
import { fp32BatchSize } from '../../cli/commands/eval';
import { dynamicSpatialCnn, linearClassifier, noLayerModel, plainCnn, unknownOpModel } from '../fixtures/models';

const tmp = tempDir('haq-cli');
after(tmp.cleanup);
const p = (name: string) => join(tmp.dir, name);




const features = 6;
const classes = 4;
const samples = 12;
let hand: number[] = [];

before(() => {
  writeFileSync(p('cnn.onnx'), plainCnn());
  const cnn = plainCnn();
  writeFileSync(p('truncated.onnx'), cnn.subarray(0, cnn.length - 100));
  writeFileSync(p('notes.onnx'), 'this is a text file, not a model\n');
  writeFileSync(p('unknown-op.onnx'), unknownOpModel());
  writeFileSync(p('no-layer.onnx'), noLayerModel());
  writeFileSync(p('dynamic.onnx'), dynamicSpatialCnn());
  const lin = linearClassifier(features, classes);
  writeFileSync(p('linear.onnx'), lin.bytes);
  // Data: uint8 inputs with meta.json, labels = hand argmax on even samples, shifted on odd ones.
  const rng = new Rng(5);
  const raw = Uint8Array.from({ length: samples * features }, () => rng.int(256));
  const meta = { inputScale: 1 / 64, inputOffset: -2 };
  hand = Array.from({ length: samples }, (_, n) => {
    const logit = (c: number) => lin.bias[c] + Array.from({ length: features }, (_, f) => (raw[n * features + f] * meta.inputScale + meta.inputOffset) * lin.weight[c * features + f]).reduce((a, b) => a + b, 0);
    let best = 0;
    for (let c = 1; c < classes; c++) if (logit(c) > logit(best)) best = c;
    return best;
  });
  const labels = BigInt64Array.from(hand, (h, i) => BigInt(i % 2 === 0 ? h : (h + 1) % classes));
  const folder = (name: string, files: Record<string, Uint8Array | string>) => {
    mkdirSync(p(name));
    for (const [f, body] of Object.entries(files)) writeFileSync(join(p(name), f), body);
  };
  const inputs = encodeNpy({ data: raw, shape: [samples, features] });
  folder('data', { 'val-inputs.npy': inputs, 'val-labels.npy': encodeNpy({ data: labels, shape: [samples] }), 'meta.json': JSON.stringify(meta) });
  folder('data-nolabels', { 'val-inputs.npy': inputs, 'meta.json': JSON.stringify(meta) });
  folder('data-shape', { 'val-inputs.npy': encodeNpy({ data: raw, shape: [samples, 2, 3] }) });
  const outOfRange = BigInt64Array.from(labels);
  outOfRange[3] = BigInt(classes);
  folder('data-range', { 'val-inputs.npy': inputs, 'val-labels.npy': encodeNpy({ data: outOfRange, shape: [samples] }) });
});

describe('haq inspect', { concurrency: 3 }, () => {
  it('--json prints the layer table', async () => {
    const r = await haq(['inspect', p('cnn.onnx'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out.layers[0]), ['name', 'kind', 'inChannels', 'outChannels', 'kernel', 'stride', 'groups', 'inputShape', 'outputShape', 'params', 'macs']);
    assert.deepEqual(out.layers.map((l: { name: string; macs: number }) => [l.name, l.macs]), [['conv1', 221184], ['conv2', 73728], ['fc', 160]]);
    assert.deepEqual(out.totals, { params: 1528, macs: 295072, skippedMacs: 0 });
  });

  it('prints a readable table without --json, and honours --input-shape', async () => {
    const r = await haq(['inspect', p('cnn.onnx'), '--input-shape', '2,3,32,32']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /3 quantizable layers for input 2x3x32x32/);
    assert.match(r.stdout, /conv2\s+conv\s+8\s+16\s+3x3\s+2x2\s+1\s+2x8x16x16\s+2x16x8x8/);
    assert.match(r.stdout, /total: 1528 params/);
  });

  it('dynamic spatial dims: an error asking for --input-shape, then success with it', async () => {
    assertOneLineError(await haq(['inspect', p('dynamic.onnx')]), 'InvalidInputError', /dynamic dims \[N, 3, \?, \?\]; pass --input-shape/);
    const r = await haq(['inspect', p('dynamic.onnx'), '--input-shape', '1,3,20,20', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).layers[0].outputShape, [1, 4, 20, 20]);
  });

  it('bad models: one clear error line each', async () => {
    assertOneLineError(await haq(['inspect', p('notes.onnx')]), 'UnsupportedModelError', /notes\.onnx is not an ONNX model/);
    assertOneLineError(await haq(['inspect', p('truncated.onnx')]), 'UnsupportedModelError', /truncated/);
    assertOneLineError(await haq(['inspect', p('unknown-op.onnx')]), 'UnsupportedModelError', /uses the op FooBar/);
    assertOneLineError(await haq(['inspect', p('no-layer.onnx')]), 'UnsupportedModelError', /has no quantizable layer/);
    assertOneLineError(await haq(['inspect', p('missing.onnx')]), 'InvalidInputError', /missing\.onnx does not exist/);
    assertOneLineError(await haq(['inspect', p('cnn.onnx'), '--input-shape', '1,3,x']), 'InvalidInputError', /--input-shape "1,3,x"/);
  });

  it('--json errors are a JSON document on stdout too', async () => {
    const r = await haq(['inspect', p('notes.onnx'), '--json']);
    assert.equal(r.code, 1);
    assert.equal(JSON.parse(r.stdout).error.name, 'UnsupportedModelError');
  });
});

describe('haq eval', { concurrency: 3 }, () => {
  it('--json top-1 equals the hand-computed argmax accuracy', async () => {
    const r = await haq(['eval', p('linear.onnx'), '--data', p('data'), '--json', '--batch-size', '5']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.top1, 50); // even samples carry the hand argmax, odd ones another class
    assert.equal(out.samples, samples);
    assert.equal(out.mode, 'labels');
    assert.equal(out.top5, null); // 4 classes: top-5 is not informative
    assert.ok(out.seconds >= 0 && (out.imagesPerSecond === null || out.imagesPerSecond > 0));
  });

  it('without labels reports fidelity, readable text without --json', async () => {
    const r = await haq(['eval', p('linear.onnx'), '--data', p('data-nolabels')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fidelity/);
    assert.match(r.stdout, /top-1 100\.00 %/);
  });

  it('bad data: one clear error line each', async () => {
    assertOneLineError(await haq(['eval', p('linear.onnx'), '--data', p('data-shape')]), 'InvalidDataError', /samples of shape \[2, 3\] .* \[N, 6\]/);
    assertOneLineError(await haq(['eval', p('linear.onnx'), '--data', p('data-range')]), 'InvalidDataError', /val-labels\.npy\[3\] = 4 is out of range: the model outputs 4 classes/);
    assertOneLineError(await haq(['eval', p('linear.onnx'), '--data', p('nowhere')]), 'InvalidInputError', /is not a folder/);
    assertOneLineError(await haq(['eval', p('linear.onnx'), '--data', p('data'), '--split', 'test']), 'InvalidDataError', /data\/? has no test-inputs\.npy \(the held-out test split\); add it/);
    assertOneLineError(await haq(['eval', p('truncated.onnx'), '--data', p('data')]), 'UnsupportedModelError', /truncated/);
  });
});

describe('haq eval FP32 batch', () => {
  it('runs as many samples as fit their layer inputs in 1 GiB, at most 128; 128 without a layer table', async () => {
    // One conv reading the input: 3x28x28 is tiny (128); 3x2048x2048 is 48 MiB per sample (21 in 1 GiB).
    assert.equal(await fp32BatchSize(dynamicSpatialCnn(), [3, 28, 28]), 128);
    assert.equal(await fp32BatchSize(dynamicSpatialCnn(), [3, 2048, 2048]), 21);
    assert.equal(await fp32BatchSize(noLayerModel(), [4]), 128);
  });
});
