/**
 * The committed zoo (models/zoo, made by models/train_zoo.py): every model loads in the
 * product's layer table, evaluates through the product's FP32 evaluation (shared/data) at the
 * accuracy info.json reports (measured by PyTorch and by a direct onnxruntime run in
 * scripts/verify-zoo.ts), and the shared data folder has the documented format.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { z } from 'zod';
import { limitSplit, loadDataset, requireSplit, type Dataset } from '../../shared/data/dataset';
import { decodeNpy, type NpyArray } from '../../shared/data/npy';
import { evaluateFp32 } from '../../shared/data/evaluate';
import { inspectModel } from '../../shared/onnx/inspect';
import { decodeModel } from '../../shared/onnx/proto';
import { FsStore } from '../../shared/store/fs-store';
import { parse } from '../../shared/validate';

const zooDir = join(import.meta.dirname, '..', '..', 'models', 'zoo');
const EXPECTED_MODELS = ['fmnist-cnn', 'fmnist-mobilenet', 'fmnist-resnet'];
/** Lowest acceptable FP32 test top-1 (percent) for a committed model. */
const TOP1_FLOOR = 85;
/** info.json figures are rounded to 0.01; the two runtimes may differ in the last float bits. */
const TOP1_TOLERANCE = 0.1;

const ModelInfo = z.object({
  name: z.string(),
  architecture: z.string().min(1),
  quantizableLayers: z.number().int(),
  onnxOps: z.record(z.number().int()),
  testTop1Torch: z.number(),
  /** PyTorch measured on the first testTop1TorchSamples test images (the test split at training time). */
  testTop1TorchSamples: z.number().int().positive(),
  testTop1Onnxruntime: z.number(),
  epochs: z.number().int().positive(),
  trainSeconds: z.number().positive(),
});

function readNpy(file: string): NpyArray {
  return decodeNpy(new Uint8Array(readFileSync(join(zooDir, 'data', file))), file);
}

function readInfo(name: string): z.infer<typeof ModelInfo> {
  return parse(ModelInfo, JSON.parse(readFileSync(join(zooDir, name, 'info.json'), 'utf8')), `models/zoo/${name}/info.json`);
}

describe('model zoo: shared data folder', () => {
  let dataset: Dataset;
  before(async () => {
    dataset = await loadDataset(new FsStore(zooDir), 'data');
  });

  it('holds uint8 [N,1,28,28] splits of 512 / 4000 / 8000 images with int64 labels and meta 1/255', () => {
    assert.deepEqual(dataset.meta, { inputScale: 1 / 255, inputOffset: 0 });
    for (const [name, samples, labelled] of [['calib', 512, false], ['val', 4000, true], ['test', 8000, true]] as const) {
      const split = requireSplit(dataset, name);
      assert.equal(split.inputs.dtype, 'uint8', `${name} dtype`);
      assert.deepEqual(split.inputs.shape, [samples, 1, 28, 28], `${name} shape`);
      assert.equal(split.labels !== null, labelled, `${name} labels present`);
    }
    const labelFile = readFileSync(join(zooDir, 'data', 'test-labels.npy'));
    assert.match(labelFile.toString('latin1', 10, 80), /'descr': '<i8'/);
  });

  it('holds a labelled selection split of 4000 images (select-*.npy)', () => {
    const inputs = readNpy('select-inputs.npy');
    const labels = readNpy('select-labels.npy');
    assert.equal(inputs.dtype, 'uint8');
    assert.deepEqual(inputs.shape, [4000, 1, 28, 28]);
    assert.deepEqual(labels.shape, [4000]);
  });

  it('has every class in the labelled splits, and no image in two of calib / val / select / test', () => {
    for (const name of ['val', 'test'] as const) {
      const split = requireSplit(dataset, name);
      const counts = new Array(10).fill(0);
      for (const label of split.labels ?? []) counts[label]++;
      assert.ok(counts.every((c) => c >= split.samples / 20), `${name} class counts ${counts}`);
    }
    // Fashion-MNIST has a few exact duplicate images; the splits are disjoint by row, so count
    // shared images and require them to be as rare as duplicates are in the data (< 0.5 %).
    const seen = new Map<string, string>();
    let shared = 0;
    for (const file of ['calib-inputs.npy', 'val-inputs.npy', 'select-inputs.npy', 'test-inputs.npy']) {
      const data = readNpy(file).data as Uint8Array;
      for (let i = 0; i < data.length; i += 784) {
        const key = Buffer.from(data.subarray(i, i + 784)).toString('base64');
        const other = seen.get(key);
        if (other !== undefined && other !== file) shared++;
        seen.set(key, file);
      }
    }
    assert.ok(shared < 0.005 * seen.size, `${shared} images appear in two splits`);
  });
});

describe('model zoo: models', () => {
  it('contains exactly the documented models, each with model.onnx and info.json', () => {
    const names = readdirSync(zooDir).filter((n) => existsSync(join(zooDir, n, 'model.onnx'))).sort();
    assert.deepEqual(names, EXPECTED_MODELS);
    for (const name of names) assert.equal(readInfo(name).name, name);
  });

  for (const name of EXPECTED_MODELS) {
    describe(name, () => {
      const bytes = (): Uint8Array => new Uint8Array(readFileSync(join(zooDir, name, 'model.onnx')));

      it('has the input/output contract and 6-20 quantizable layers in the layer table, as info.json says', async () => {
        const info = readInfo(name);
        const table = await inspectModel(bytes(), { what: name });
        assert.deepEqual(table.inputShape, [1, 1, 28, 28]);
        assert.equal(table.layers.length, info.quantizableLayers);
        assert.ok(table.layers.length >= 6 && table.layers.length <= 20, `${table.layers.length} layers`);
        const model = decodeModel(bytes(), name);
        assert.equal(model.graph?.input?.[0]?.name, 'input');
        assert.equal(model.graph?.output?.[0]?.name, 'logits');
        const ops = new Set((model.graph?.node ?? []).map((n) => n.opType));
        if (name === 'fmnist-mobilenet') assert.ok(table.layers.some((l) => l.kind === 'depthwise'), 'depthwise layers');
        if (name === 'fmnist-resnet') assert.ok(ops.has('Add'), 'residual Add');
      });

      it(`scores its reported test top-1 (>= ${TOP1_FLOOR}%) through the FP32 evaluation`, async () => {
        const info = readInfo(name);
        const dataset = await loadDataset(new FsStore(zooDir), 'data', ['test']);
        const test = requireSplit(dataset, 'test');
        const { result } = await evaluateFp32(bytes(), test, { what: name, batchSize: 250 });
        assert.equal(result.mode, 'labels');
        assert.equal(result.samples, 8000);
        const top1 = result.top1!;
        assert.ok(Math.abs(top1 - info.testTop1Onnxruntime) <= TOP1_TOLERANCE, `top-1 ${top1} vs info.json onnxruntime ${info.testTop1Onnxruntime}`);
        assert.ok(top1 >= TOP1_FLOOR, `top-1 ${top1} below the floor ${TOP1_FLOOR}`);
        const first = await evaluateFp32(bytes(), limitSplit(test, info.testTop1TorchSamples), { what: name, batchSize: 250 });
        assert.equal(first.result.samples, info.testTop1TorchSamples);
        const torchTop1 = first.result.top1!;
        assert.ok(Math.abs(torchTop1 - info.testTop1Torch) <= TOP1_TOLERANCE, `top-1 ${torchTop1} on the first ${info.testTop1TorchSamples} vs info.json PyTorch ${info.testTop1Torch}`);
      });
    });
  }
});
