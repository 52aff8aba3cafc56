/**
 * Quantized evaluation: for each zoo model (models/zoo/<name>/model.onnx, data folder from its
 * info.json, default models/zoo/data), the cost of evaluating a policy with the one-session
 * fake-quantized evaluator against plain FP32 evaluation on the same validation samples, the
 * policy switch cost, and top-1 of uniform 8/8, 4/4 and 2/2 policies (calibrated
 * post-training quantization, MSE clipping, per-channel weights, no fine-tuning).
 * Falls back to a small builder-made CNN on random data when the zoo has no model yet.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadDataset, type Split } from '../../shared/data/dataset';
import { evaluateSession } from '../../shared/data/evaluate';
import { GraphBuilder } from '../../shared/onnx/builder';
import { inspectModel } from '../../shared/onnx/inspect';
import { ModelSession } from '../../shared/onnx/runtime';
import { calibrate } from '../../shared/quant/calibration';
import { prepareQuantEvaluator, splitFromTensor } from '../../shared/quant/evaluator';
import { uniformPolicy } from '../../shared/quant/policy';
import { Rng } from '../../shared/rng';
import { buildZooModel } from '../../shared/zoo/architectures';
import { FsStore } from '../../shared/store/fs-store';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 30;

interface BenchModel {
  name: string;
  bytes: Uint8Array;
  calib: Split;
  val: Split;
  /** Random weights and data: the speed columns only (accuracy means nothing). */
  speedOnly?: boolean;
  batchSize?: number;
}

/**
 * ResNet-50 at ImageNet shape (random weights, BatchNormalization nodes kept, so onnxruntime
 * folds them into the Conv weights) on 16 random images: the evaluator on a model of real size.
 */
function resnet50(): BenchModel {
  const rng = new Rng(50);
  const images = (n: number) => ({ data: Float32Array.from({ length: n * 3 * 224 * 224 }, () => rng.normal(0, 1)), dims: [n, 3, 224, 224] });
  const labels = Int32Array.from({ length: 16 }, () => rng.int(1000));
  return {
    name: 'resnet-50 (224x224, random weights)',
    bytes: buildZooModel('resnet-50'),
    calib: splitFromTensor(images(8), null, 'calib'),
    val: splitFromTensor(images(16), labels),
    speedOnly: true,
    batchSize: 8,
  };
}

function zooModels(root: string): BenchModel[] | null {
  const zoo = join(root, 'models', 'zoo');
  if (!existsSync(zoo)) return null;
  const names = readdirSync(zoo).filter((n) => existsSync(join(zoo, n, 'model.onnx'))).sort();
  return names.length ? (names as unknown as BenchModel[]) : null;
}

async function loadZooModel(root: string, name: string): Promise<BenchModel> {
  const dir = join(root, 'models', 'zoo', name);
  const info = existsSync(join(dir, 'info.json')) ? (JSON.parse(readFileSync(join(dir, 'info.json'), 'utf8')) as { data?: string }) : {};
  const dataDir = resolve(dir, info.data ?? (existsSync(join(dir, 'data')) ? 'data' : '../data'));
  const ds = await loadDataset(new FsStore(dataDir), '', ['calib', 'val']);
  if (!ds.calib || !ds.val) throw new Error(`${dataDir} needs calib-inputs.npy and val-inputs.npy`);
  return { name, bytes: new Uint8Array(readFileSync(join(dir, 'model.onnx'))), calib: ds.calib, val: ds.val };
}

/** A 3-conv CNN on random 28x28 inputs, labelled by its own FP32 predictions (fidelity). */
function builderModel(): BenchModel {
  const rng = new Rng(7);
  const randn = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal(0, s));
  const g = new GraphBuilder({ name: 'bench-cnn', opset: 13 });
  let h = g.input('x', 'float32', ['N', 1, 28, 28]);
  h = g.maxPool(g.relu(g.conv(h, { weight: randn(16 * 9, 0.3), weightDims: [16, 1, 3, 3], bias: randn(16, 0.1), pads: [1, 1, 1, 1] })), [2, 2]);
  h = g.maxPool(g.relu(g.conv(h, { weight: randn(32 * 16 * 9, 0.1), weightDims: [32, 16, 3, 3], bias: randn(32, 0.1), pads: [1, 1, 1, 1] })), [2, 2]);
  g.output(g.gemm(g.flatten(h), { weight: randn(10 * 32 * 49, 0.05), weightDims: [10, 32 * 49] }));
  const input = (n: number) => ({ data: Float32Array.from({ length: n * 784 }, () => rng.next()), dims: [n, 1, 28, 28] });
  return { name: 'builder-cnn (no zoo model)', bytes: g.toBytes(), calib: splitFromTensor(input(256), null, 'calib'), val: splitFromTensor(input(1000)) };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const names = zooModels(ctx.root) as unknown as string[] | null;
  // --quick: the first zoo model only, on 500 samples (the whole bench must stay under a minute).
  const chosen = names && ctx.quick ? names.slice(0, 1) : names;
  const models: BenchModel[] = chosen ? await Promise.all(chosen.map((n) => loadZooModel(ctx.root, n))) : [builderModel()];
  if (!ctx.quick) models.push(resnet50());
  const limit = ctx.quick ? 500 : undefined;
  const repeats = ctx.quick ? 1 : 5;
  const defaultBatch = 128;
  const figures: Record<string, number | string | null> = {};
  const speed: BenchTable = {
    title: 'Policy evaluation vs FP32 evaluation (same validation samples)',
    headers: [
      'model',
      'samples',
      'FP32 images/s',
      'policy images/s',
      'ratio (target <= 1.3)',
      'ratio, plain weight inputs',
      'open s',
      'switch ms (first)',
      'switch ms (20 random)',
      'switch ms (cached)',
      'calibration s',
    ],
    rows: [],
    note:
      `onnxruntime-node CPU, 1 intra-op thread, batch ${defaultBatch} (resnet-50: 8), median of ${repeats} run(s) each after one warm-up (FP32: plain model session; policy: uniform 8/8 on the ` +
      "one fake-quantized session, onnxruntime's optimized graph with the weights as inputs in its layout; runs alternate). Plain weight inputs: the same graph with the weights as " +
      'plain graph inputs (no NCHWc kernels; the fallback). Open = preparing the evaluator (graph rewrite, optimizer probes, session). Switch = building the feeds of a new policy on ' +
      'the same session (first: quantizing every layer at 8 bits; 20 random policies, quantizing each new layer/bitwidth pair once; the same 20 again, all cached).',
  };
  const accuracy: BenchTable = {
    title: 'Top-1 of uniform policies (post-training, calibrated, no fine-tuning)',
    headers: ['model', 'mode', 'FP32 top-1', '8/8', '4/4', '2/2', '8/8 drop (points, acceptance <= 0.5)'],
    rows: [],
    note: 'Per-channel symmetric weights, activations clipped at the MSE-optimal value per layer and bitwidth (calibration split); first/last layers NOT pinned here.',
  };
  for (const m of models) {
    const batchSize = m.batchSize ?? defaultBatch;
    ctx.log(`${m.name}: calibrating on ${m.calib.samples} samples`);
    const table = await inspectModel(m.bytes, { what: m.name });
    let t0 = performance.now();
    const calibration = await calibrate(m.bytes, table, m.calib, { batchSize });
    const calibrationSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const ev = await prepareQuantEvaluator(m.bytes, table, calibration, { batchSize });
    const openSeconds = (performance.now() - t0) / 1000;
    const plain = await prepareQuantEvaluator(m.bytes, table, calibration, { batchSize, runtimeLayout: 'plain' });
    try {
      const [session] = ev.sessions();
      if (!session.optimized) ctx.log(`${m.name}: onnxruntime's optimized graph not used: ${session.reason}`);
      const rng = new Rng(2019);
      t0 = performance.now();
      await ev.policyFeeds(uniformPolicy(table, 8, 8));
      const firstSwitchMs = performance.now() - t0;
      const policies = Array.from({ length: 20 }, () => ({ layers: table.layers.map((l) => ({ name: l.name, wBits: 2 + rng.int(7), aBits: 2 + rng.int(7) })) }));
      const timeSwitches = async (): Promise<number[]> => {
        const times: number[] = [];
        for (const policy of policies) {
          t0 = performance.now();
          await ev.policyFeeds(policy);
          times.push(performance.now() - t0);
        }
        return times;
      };
      const switches = await timeSwitches(); // new (layer, bits) pairs get quantized on first use
      const cachedSwitches = await timeSwitches(); // the same policies again: every quantized weight cached
      // FP32: the plain model in its own session (onnxruntime's full optimizations); both
      // sessions are warmed up once, then the two evaluations alternate.
      const fp32Session = await ModelSession.create(m.bytes, { what: m.name, threads: 1 });
      const fp32Seconds: number[] = [];
      const policySeconds: number[] = [];
      const plainSeconds: number[] = [];
      let fp32Top1 = 0;
      let mode = '';
      let samples = 0;
      const p88 = uniformPolicy(table, 8, 8);
      try {
        const fp32Run = async () => {
          const e = await evaluateSession(fp32Session, m.val, { batchSize, limit, reference: m.val.labels ? undefined : (await ev.predict(null, m.val, { limit })).predictions });
          return e.result;
        };
        await fp32Run();
        await ev.evaluate(p88, m.val, { limit });
        await plain.evaluate(p88, m.val, { limit });
        for (let r = 0; r < repeats; r++) {
          const fp = await fp32Run();
          fp32Seconds.push(fp.seconds);
          fp32Top1 = fp.top1 ?? Number.NaN;
          mode = fp.mode;
          samples = fp.samples;
          policySeconds.push((await ev.evaluate(p88, m.val, { limit })).seconds);
          plainSeconds.push((await plain.evaluate(p88, m.val, { limit })).seconds);
        }
      } finally {
        await fp32Session.release();
      }
      const top1 = async (b: number) => (m.speedOnly ? null : (await ev.evaluate(uniformPolicy(table, b, b), m.val, { limit })).top1);
      const [t8, t4, t2] = [await top1(8), await top1(4), await top1(2)];
      const fpIps = samples / median(fp32Seconds);
      const qIps = samples / median(policySeconds);
      const ratio = median(policySeconds) / median(fp32Seconds);
      const plainRatio = median(plainSeconds) / median(fp32Seconds);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const switchMean = mean(switches);
      const cachedMean = mean(cachedSwitches);
      speed.rows.push([
        m.name,
        samples,
        Math.round(fpIps),
        Math.round(qIps),
        Number(ratio.toFixed(2)),
        Number(plainRatio.toFixed(2)),
        Number(openSeconds.toFixed(2)),
        Number(firstSwitchMs.toFixed(2)), Number(switchMean.toFixed(3)), Number(cachedMean.toFixed(3)), Number(calibrationSeconds.toFixed(2))]);
      if (!m.speedOnly) accuracy.rows.push([m.name, mode, fp32Top1, t8, t4, t2, Number((fp32Top1 - t8!).toFixed(2))]);
      Object.assign(figures, {
        [`${m.name}.policyOverFp32Time`]: Number(ratio.toFixed(3)),
        [`${m.name}.plainInputsOverFp32Time`]: Number(plainRatio.toFixed(3)),
        [`${m.name}.optimizedGraph`]: session.optimized ? 'yes' : `no: ${session.reason}`,
        [`${m.name}.switchMs`]: Number(switchMean.toFixed(3)),
        [`${m.name}.switchMsCached`]: Number(cachedMean.toFixed(3)),
        ...(m.speedOnly ? {} : { [`${m.name}.fp32Top1`]: fp32Top1, [`${m.name}.top1_8_8`]: t8, [`${m.name}.top1_4_4`]: t4, [`${m.name}.top1_2_2`]: t2 }),
      });
      ctx.log(`${m.name}: ratio ${ratio.toFixed(2)} (plain inputs ${plainRatio.toFixed(2)}), open ${openSeconds.toFixed(1)} s, switch ${switchMean.toFixed(3)} ms, top-1 fp32 ${fp32Top1} 8/8 ${t8} 4/4 ${t4} 2/2 ${t2}`);
    } finally {
      await ev.close();
      await plain.close();
    }
  }
  return { id: 'evaluation', title: 'Quantized evaluation: speed and uniform-policy accuracy', figures, tables: [speed, accuracy] };
}
