/**
 * Quantized evaluation: for each zoo model (models/zoo/<name>/model.onnx, data folder from its
 * info.json, default models/zoo/data), on the held-out test split:
 *  - accuracy recovery: test top-1 (± standard error) of uniform and first/last-pinned policies
 *    with plain rounding, bias correction and full recovery (GPTQ + bias correction), and the
 *    time recovery takes (every layer at bits 1..8, what Prepare stores);
 *  - 8/8 against onnxruntime's own quantize_static (MinMax, per-channel, QDQ) on the same
 *    calibration samples, run in this bench (scripts/ort-quantize: a PyPI venv);
 *  - export parity: the exported QDQ model in onnxruntime-node with default session options
 *    against the evaluator's figure, for uniform policies 3..8 bits and a mixed policy;
 *  - speed: one policy evaluation on the fake-quantized session against plain FP32 evaluation.
 * Plus the recovery time of ResNet-50 at 224x224 (random weights). Falls back to a small
 * builder-made CNN on random data when the zoo has no model yet.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inputBatch, loadDataset, type Split } from '../../shared/data/dataset';
import { evaluateSession } from '../../shared/data/evaluate';
import { encodeNpy } from '../../shared/data/npy';
import { GraphBuilder } from '../../shared/onnx/builder';
import { inspectModel } from '../../shared/onnx/inspect';
import { ModelSession, type FloatTensor } from '../../shared/onnx/runtime';
import type { LayerTable } from '../../shared/onnx/types';
import { calibrate, type Calibration } from '../../shared/quant/calibration';
import { prepareQuantEvaluator, splitFromTensor, type QuantEvaluator } from '../../shared/quant/evaluator';
import { exportQuantizedModel } from '../../shared/quant/export';
import { pinEndLayers, uniformPolicy, type LayerBits, type RecoveryMode } from '../../shared/quant/policy';
import { computeRecovery, policyLayers, recoverySource, type RecoveryResult } from '../../shared/quant/recovery';
import { Rng } from '../../shared/rng';
import { buildZooModel } from '../../shared/zoo/architectures';
import { FsStore } from '../../shared/store/fs-store';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 30;
/** Full mode: three zoo models x three recovery modes on the whole test split (8000 samples), exports, and ResNet-50's recovery at every bitwidth. */
export const timeoutSeconds = 3600;

interface BenchModel {
  name: string;
  bytes: Uint8Array;
  calib: Split;
  val: Split;
  /** The held-out split the accuracy figures are measured on (none for the builder model). */
  test: Split | null;
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
  return { name: 'builder-cnn (no zoo model)', bytes: g.toBytes(), calib: splitFromTensor(input(256), null, 'calib'), val: splitFromTensor(input(1000)), test: null };
}

function zooNames(root: string): string[] {
  const zoo = join(root, 'models', 'zoo');
  if (!existsSync(zoo)) return [];
  return readdirSync(zoo)
    .filter((n) => existsSync(join(zoo, n, 'model.onnx')))
    .sort();
}

async function loadZooModel(root: string, name: string): Promise<BenchModel> {
  const dir = join(root, 'models', 'zoo', name);
  const info = existsSync(join(dir, 'info.json')) ? (JSON.parse(readFileSync(join(dir, 'info.json'), 'utf8')) as { data?: string }) : {};
  const dataDir = resolve(dir, info.data ?? (existsSync(join(dir, 'data')) ? 'data' : '../data'));
  const ds = await loadDataset(new FsStore(dataDir), '', ['calib', 'val', 'test']);
  if (!ds.calib || !ds.val || !ds.test) throw new Error(`${dataDir} needs calib, val and test splits (inputs and labels)`);
  return { name, bytes: new Uint8Array(readFileSync(join(dir, 'model.onnx'))), calib: ds.calib, val: ds.val, test: ds.test };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round2 = (x: number): number => Number(x.toFixed(2));
/** "89.50 ± 0.48" (percent, standard error in points). */
const withSe = (top1: number, se: number): string => `${top1.toFixed(2)} ± ${se.toFixed(2)}`;
const seOf = (top1: number, n: number): number => 100 * Math.sqrt(((top1 / 100) * (1 - top1 / 100)) / n);

/** The policies of the recovery table: [label, layers]. */
function recoveryPolicies(table: LayerTable): Array<[string, LayerBits[]]> {
  const uniform = (w: number, a: number) => uniformPolicy(table, w, a).layers;
  const pinned = (w: number, a: number) => pinEndLayers(uniform(w, a));
  return [
    ['w8a8', uniform(8, 8)],
    ['w4a8', uniform(4, 8)],
    ['w3a8', uniform(3, 8)],
    ['w4a4', uniform(4, 4)],
    ['w4a8, first/last 8/8', pinned(4, 8)],
    ['w3a8, first/last 8/8', pinned(3, 8)],
    ['w4a4, first/last 8/8', pinned(4, 4)],
  ];
}

/** A seeded mixed-precision policy (weights 3..8, activations 4..8, first/last 8/8), like a search's. */
function mixedPolicy(table: LayerTable): LayerBits[] {
  const rng = new Rng(2019);
  return pinEndLayers(table.layers.map((l) => ({ name: l.name, wBits: 3 + rng.int(6), aBits: 4 + rng.int(5) })));
}

/**
 * onnxruntime's quantize_static on the calibration samples (scripts/ort-quantize), scored on
 * `split` in onnxruntime-node with default options; null (and why) when Python is unavailable.
 */
async function ortQuantizeStatic(ctx: BenchContext, name: string, bytes: Uint8Array, calib: FloatTensor, split: Split, limit?: number): Promise<{ top1: number | null; note: string }> {
  const dir = join(ctx.scratch, name);
  execFileSync('mkdir', ['-p', dir]);
  let python: string;
  try {
    python = execFileSync('bash', [join(ctx.root, 'scripts', 'ort-quantize', 'setup.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').pop()!;
  } catch (err) {
    return { top1: null, note: `no onnxruntime venv: ${(err as Error).message.split('\n')[0]}` };
  }
  writeFileSync(join(dir, 'model.onnx'), bytes);
  writeFileSync(join(dir, 'calib.npy'), encodeNpy({ data: calib.data, shape: calib.dims }));
  execFileSync(python, [join(ctx.root, 'scripts', 'ort-quantize', 'quantize.py'), join(dir, 'model.onnx'), join(dir, 'calib.npy'), join(dir, 'model.ort-qdq.onnx')], { stdio: ['ignore', 'ignore', 'pipe'] });
  const session = await ModelSession.create(new Uint8Array(readFileSync(join(dir, 'model.ort-qdq.onnx'))), { what: `${name} quantize_static` });
  try {
    const e = await evaluateSession(session, split, { limit, keepLogits: false });
    return { top1: e.result.top1, note: 'quantize_static' };
  } finally {
    await session.release();
  }
}

/** Top-1 of an exported QDQ model in onnxruntime-node with default session options. */
async function exportedTop1(bytes: Uint8Array, table: LayerTable, layers: LayerBits[], calibration: Calibration, recovery: RecoveryResult, split: Split, limit?: number): Promise<number | null> {
  const ex = exportQuantizedModel(bytes, table, { layers }, calibration, { recovered: await policyLayers(recoverySource(recovery), layers) });
  const session = await ModelSession.create(ex.bytes, { what: 'exported model' });
  try {
    return (await evaluateSession(session, split, { limit, keepLogits: false })).result.top1;
  } finally {
    await session.release();
  }
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const names = zooNames(ctx.root);
  // --quick: the first zoo model only, on 500 samples.
  const chosen = ctx.quick ? names.slice(0, 1) : names;
  const models: BenchModel[] = chosen.length ? await Promise.all(chosen.map((n) => loadZooModel(ctx.root, n))) : [builderModel()];
  const limit = ctx.quick ? 500 : undefined;
  const repeats = ctx.quick ? 1 : 5;
  const batchSize = 128;
  const figures: Record<string, number | string | null> = {};
  const recoveryTables: BenchTable[] = [];
  const baseline: BenchTable = {
    title: "8/8 against onnxruntime's quantize_static (same calibration samples, test split)",
    headers: ['model', 'test samples', 'FP32', 'haq 8/8 (full recovery)', "onnxruntime quantize_static 8/8", 'haq - onnxruntime (points)', 'haq 8/8 drop vs FP32 (acceptance <= 0.3)'],
    rows: [],
    note:
      'quantize_static(QDQ, per_channel=True, MinMax calibration, int8 weights and activations; scripts/ort-quantize, onnxruntime from PyPI in a venv), run in onnxruntime-node with ' +
      'default session options; haq: every layer 8/8 (not pinned), MSE activation clipping, per-channel weights, recovery full. Acceptance: haq >= onnxruntime (a difference within ' +
      'the standard errors is a tie).',
  };
  const parity: BenchTable = {
    title: 'Export parity: the exported QDQ model in onnxruntime-node (default session options) vs the figure haq reports (test split)',
    headers: ['model', 'policy', 'evaluator top-1', 'exported model top-1', 'difference (points; acceptance |d| <= 0.3 for 4..8 bits and mixed)'],
    rows: [],
    note: 'Recovery full. Uniform policies: every layer w = a at the same bits; mixed: seeded (Rng 2019) weights 3..8, activations 4..8, first/last 8/8, like a search result.',
  };
  const timing: BenchTable = {
    title: 'Recovery time (every layer at weight bits 1..8; Prepare computes the search bitwidths, 2..8 by default, once per model and calibration data)',
    headers: ['model', 'calibration samples', 'layers', 'statistics s', 'GPTQ + bias correction s', 'total s'],
    rows: [],
    note: 'Single thread, this machine (shared, loaded). Statistics: one onnxruntime pass collecting each layer\'s input Gram matrix; then per layer and bitwidth the reconstruction.',
  };
  const speed: BenchTable = {
    title: 'Policy evaluation vs FP32 evaluation (same validation samples, recovery full)',
    headers: ['model', 'samples', 'FP32 images/s', 'policy images/s', 'ratio (target <= 1.3)', 'open s', 'switch ms (first)', 'switch ms (20 random)', 'calibration s'],
    rows: [],
    note:
      `onnxruntime-node CPU, 1 intra-op thread, batch ${batchSize}, median of ${repeats} run(s) each after one warm-up (FP32: plain model session; policy: uniform 8/8 on the ` +
      "one fake-quantized session, weights from the recovery as feeds); runs alternate. Open = preparing the evaluator. Switch = building the feeds of a new policy on the same session.",
  };

  for (const m of models) {
    const table = await inspectModel(m.bytes, { what: m.name });
    const calibData = inputBatch(m.calib, 0, m.calib.samples);
    ctx.log(`${m.name}: calibrating on ${m.calib.samples} samples`);
    let t0 = performance.now();
    const calibration = await calibrate(m.bytes, table, m.calib, { batchSize });
    const calibrationSeconds = (performance.now() - t0) / 1000;
    const recoveries = new Map<RecoveryMode, RecoveryResult>();
    for (const mode of ['none', 'bias', 'full'] as const) {
      t0 = performance.now();
      const r = await computeRecovery(m.bytes, table, calibData, { mode });
      recoveries.set(mode, r);
      if (mode === 'full') {
        const total = (performance.now() - t0) / 1000;
        timing.rows.push([m.name, m.calib.samples, table.layers.length, round2(r.statsMs / 1000), round2(r.solveMs / 1000), round2(total)]);
        figures[`${m.name}.recoverySeconds`] = round2(total);
      }
      if (ctx.signal?.aborted) throw new Error('aborted');
    }
    const evaluators = new Map<RecoveryMode, QuantEvaluator>();
    for (const [mode, r] of recoveries) evaluators.set(mode, await prepareQuantEvaluator(m.bytes, table, calibration, { recovery: recoverySource(r), batchSize }));
    const full = evaluators.get('full')!;
    try {
      const split = m.test ?? m.val;
      const fp32 = await full.evaluateFp32(split, { limit });
      const fp32Top1 = fp32.top1!;
      const n = fp32.samples;
      figures[`${m.name}.fp32Top1`] = fp32Top1;
      // Recovery table: bits x {none, bias, full}.
      const acc: BenchTable = {
        title: `${m.name}: test top-1 by recovery (FP32 ${withSe(fp32Top1, fp32.top1Se ?? seOf(fp32Top1, n))} %, ${n} test samples)`,
        headers: ['policy', 'plain rounding', 'bias correction', 'full recovery (GPTQ + bias)', 'drop vs FP32, full (points)'],
        rows: [],
        note: `Top-1 % ± standard error; per-channel symmetric weights, MSE-clipped activations, ${m.calib.samples} calibration samples (all of calib, as the search uses them).`,
      };
      for (const [label, layers] of recoveryPolicies(table)) {
        const row: Array<string | number> = [label];
        let fullTop1 = 0;
        for (const mode of ['none', 'bias', 'full'] as const) {
          const e = await evaluators.get(mode)!.evaluate({ layers }, split, { limit });
          row.push(withSe(e.top1!, e.top1Se ?? seOf(e.top1!, n)));
          figures[`${m.name}.${label.replace(/[^a-z0-9]+/g, '_')}.${mode}`] = e.top1;
          if (mode === 'full') fullTop1 = e.top1!;
        }
        row.push(round2(fp32Top1 - fullTop1));
        acc.rows.push(row);
        ctx.log(`${m.name}: ${label}: ${row.slice(1).join(' | ')}`);
      }
      recoveryTables.push(acc);

      // onnxruntime's quantize_static on the same calibration samples.
      const p88 = uniformPolicy(table, 8, 8);
      const haq88 = (await full.evaluate(p88, split, { limit })).top1!;
      if (m.test) {
        const ort = await ortQuantizeStatic(ctx, m.name, m.bytes, calibData, split, limit);
        baseline.rows.push([
          m.name,
          n,
          withSe(fp32Top1, seOf(fp32Top1, n)),
          withSe(haq88, seOf(haq88, n)),
          ort.top1 === null ? ort.note : withSe(ort.top1, seOf(ort.top1, n)),
          ort.top1 === null ? null : round2(haq88 - ort.top1),
          round2(fp32Top1 - haq88),
        ]);
        figures[`${m.name}.ortQuantizeStaticTop1`] = ort.top1;
        figures[`${m.name}.top1_8_8`] = haq88;
      }

      // Export parity: uniform 3..8 and a mixed policy.
      const full8 = recoveries.get('full')!;
      const parityPolicies: Array<[string, LayerBits[]]> = [...[8, 7, 6, 5, 4, 3].map((b): [string, LayerBits[]] => [`${b}/${b}`, uniformPolicy(table, b, b).layers]), ['mixed', mixedPolicy(table)]];
      let worst = 0;
      for (const [label, layers] of parityPolicies) {
        const reported = (await full.evaluate({ layers }, split, { limit })).top1!;
        const exported = await exportedTop1(m.bytes, table, layers, calibration, full8, split, limit);
        const d = exported === null ? null : round2(exported - reported);
        if (d !== null && label !== '3/3') worst = Math.max(worst, Math.abs(d));
        parity.rows.push([m.name, label, reported, exported, d]);
      }
      figures[`${m.name}.exportParityWorst4to8`] = round2(worst);

      // Speed: uniform 8/8 on the fake-quantized session vs the FP32 model's own session.
      t0 = performance.now();
      const ev = await prepareQuantEvaluator(m.bytes, table, calibration, { recovery: recoverySource(full8), batchSize });
      const openSeconds = (performance.now() - t0) / 1000;
      try {
        t0 = performance.now();
        await ev.policyFeeds(p88);
        const firstSwitchMs = performance.now() - t0;
        const rng = new Rng(2019);
        const switches: number[] = [];
        for (let i = 0; i < 20; i++) {
          const policy = { layers: table.layers.map((l) => ({ name: l.name, wBits: 2 + rng.int(7), aBits: 2 + rng.int(7) })) };
          t0 = performance.now();
          await ev.policyFeeds(policy);
          switches.push(performance.now() - t0);
        }
        const fp32Session = await ModelSession.create(m.bytes, { what: m.name, threads: 1 });
        const fp32Seconds: number[] = [];
        const policySeconds: number[] = [];
        let samples = 0;
        try {
          const reference = m.val.labels ? undefined : (await ev.predict(null, m.val, { limit })).predictions;
          const fp32Run = async () => (await evaluateSession(fp32Session, m.val, { batchSize, limit, reference, keepLogits: false })).result;
          await fp32Run();
          await ev.evaluate(p88, m.val, { limit });
          for (let r = 0; r < repeats; r++) {
            const fp = await fp32Run();
            fp32Seconds.push(fp.seconds);
            samples = fp.samples;
            policySeconds.push((await ev.evaluate(p88, m.val, { limit })).seconds);
          }
        } finally {
          await fp32Session.release();
        }
        const ratio = median(policySeconds) / median(fp32Seconds);
        const switchMean = switches.reduce((a, b) => a + b, 0) / switches.length;
        speed.rows.push([
          m.name,
          samples,
          Math.round(samples / median(fp32Seconds)),
          Math.round(samples / median(policySeconds)),
          round2(ratio),
          round2(openSeconds),
          round2(firstSwitchMs),
          Number(switchMean.toFixed(3)),
          round2(calibrationSeconds),
        ]);
        figures[`${m.name}.policyOverFp32Time`] = Number(ratio.toFixed(3));
        ctx.log(`${m.name}: policy/FP32 time ${ratio.toFixed(2)}, export parity worst (4..8, mixed) ${worst.toFixed(2)}`);
      } finally {
        await ev.close();
      }
    } finally {
      for (const ev of evaluators.values()) await ev.close();
    }
  }

  if (!ctx.quick) {
    // ResNet-50 at ImageNet shape, random weights, 8 random calibration images.
    const bytes = buildZooModel('resnet-50');
    const table = await inspectModel(bytes, { what: 'resnet-50' });
    const rng = new Rng(50);
    const calib = { data: Float32Array.from({ length: 8 * 3 * 224 * 224 }, () => rng.normal(0, 1)), dims: [8, 3, 224, 224] };
    ctx.log('resnet-50 (224x224): recovery at bits 1..8');
    const t0 = performance.now();
    const r = await computeRecovery(bytes, table, calib, { mode: 'full', batchSize: 4 });
    const total = (performance.now() - t0) / 1000;
    timing.rows.push(['resnet-50 (224x224, random weights)', 8, table.layers.length, round2(r.statsMs / 1000), round2(r.solveMs / 1000), round2(total)]);
    figures['resnet-50.recoverySeconds'] = round2(total);
  }
  return {
    id: 'evaluation',
    title: 'Quantized evaluation: accuracy recovery, onnxruntime baseline, export parity, speed',
    figures,
    tables: [...recoveryTables, baseline, parity, timing, speed],
  };
}
