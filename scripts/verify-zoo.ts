/**
 * Checks every zoo model in onnxruntime-node and records its test top-1.
 *
 *   npx tsx scripts/verify-zoo.ts [--write] [--zoo models/zoo]
 *
 * For each models/zoo/<name>/model.onnx: loads it, checks the input (`input`, [N,1,28,28])
 * and output (`logits`, [N,10]) and runs the shared test split (models/zoo/data, uint8 x
 * meta.inputScale + meta.inputOffset). Prints onnxruntime's top-1 next to PyTorch's
 * (info.json testTop1Torch, measured at training on the first testTop1TorchSamples test images,
 * the test split then) on those same images, and onnxruntime's on the whole test split; with
 * --write stores the latter as info.json testTop1Onnxruntime. Exits 1 when a model fails to
 * load or the two figures on the same images differ by more than 0.1 points.
 *
 * A one-off tool run after models/train_zoo.py. It calls onnxruntime-node directly (not the
 * product's shared/data evaluation), so test/unit/zoo-models.test.ts, which checks the committed
 * figure through the product's evaluation, compares two independent implementations.
 */
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { decodeNpy, type NpyArray } from '../shared/data/npy';

/** Top-1 (percent) on the first `prefix` samples and on all of them, from one pass. */
async function top1(modelPath: string, inputs: NpyArray, labels: BigInt64Array, scale: number, offset: number, prefix: number): Promise<{ prefix: number; all: number }> {
  const session = await ort.InferenceSession.create(modelPath);
  if (session.inputNames[0] !== 'input' || session.outputNames[0] !== 'logits') {
    throw new Error(`${modelPath}: expected input 'input' and output 'logits', got ${session.inputNames} -> ${session.outputNames}`);
  }
  const [n, c, h, w] = inputs.shape;
  const head = Math.min(n, prefix);
  const per = c * h * w;
  const batch = 250;
  let correct = 0;
  let correctHead = 0;
  for (let i = 0; i < n; i += batch) {
    const b = Math.min(batch, n - i);
    const x = new Float32Array(b * per);
    const src = inputs.data as Uint8Array;
    for (let j = 0; j < b * per; j++) x[j] = Math.fround(src[i * per + j] * scale + offset);
    const out = await session.run({ input: new ort.Tensor('float32', x, [b, c, h, w]) });
    const logits = out.logits;
    if (logits.dims[0] !== b || logits.dims[1] !== 10) throw new Error(`${modelPath}: logits shape ${logits.dims}, expected [${b},10]`);
    const data = logits.data as Float32Array;
    for (let k = 0; k < b; k++) {
      let best = 0;
      for (let cls = 1; cls < 10; cls++) if (data[k * 10 + cls] > data[k * 10 + best]) best = cls;
      if (BigInt(best) !== labels[i + k]) continue;
      correct++;
      if (i + k < head) correctHead++;
    }
  }
  await session.release();
  return { prefix: (correctHead / head) * 100, all: (correct / n) * 100 };
}

function readNpy(path: string): NpyArray {
  return decodeNpy(new Uint8Array(readFileSync(path)), path);
}

async function main(): Promise<void> {
  const write = process.argv.includes('--write');
  const zooFlag = process.argv.indexOf('--zoo');
  const zoo = zooFlag > 0 ? process.argv[zooFlag + 1] : join(import.meta.dirname, '..', 'models', 'zoo');
  const meta = JSON.parse(readFileSync(join(zoo, 'data', 'meta.json'), 'utf8')) as { inputScale: number; inputOffset: number };
  const inputs = readNpy(join(zoo, 'data', 'test-inputs.npy'));
  const labelArray = readNpy(join(zoo, 'data', 'test-labels.npy'));
  if (labelArray.dtype !== 'int64' || inputs.dtype !== 'uint8') throw new Error(`expected uint8 inputs and int64 labels, got ${inputs.dtype} and ${labelArray.dtype}`);
  const labels = labelArray.data as BigInt64Array;
  let failed = false;
  for (const name of readdirSync(zoo).sort()) {
    const modelPath = join(zoo, name, 'model.onnx');
    if (!existsSync(modelPath)) continue;
    const infoPath = join(zoo, name, 'info.json');
    const info = JSON.parse(readFileSync(infoPath, 'utf8')) as Record<string, unknown>;
    const round2 = (x: number): number => Math.round(x * 100) / 100;
    const torchSamples = (info.testTop1TorchSamples as number | undefined) ?? inputs.shape[0];
    const measured = await top1(modelPath, inputs, labels, meta.inputScale, meta.inputOffset, torchSamples);
    const [ortOnTorchSamples, ortTop1] = [round2(measured.prefix), round2(measured.all)];
    const torchTop1 = info.testTop1Torch as number;
    const ok = Math.abs(ortOnTorchSamples - torchTop1) <= 0.1;
    failed ||= !ok;
    console.log(`${name}: first ${torchSamples} test images: onnxruntime ${ortOnTorchSamples.toFixed(2)}%  torch ${torchTop1.toFixed(2)}%  ${ok ? 'ok' : 'MISMATCH'}; ` +
      `all ${inputs.shape[0]}: onnxruntime ${ortTop1.toFixed(2)}%`);
    if (write) writeFileSync(infoPath, JSON.stringify({ ...info, testTop1Onnxruntime: ortTop1 }, null, 2) + '\n');
  }
  if (failed) process.exit(1);
}

await main();
