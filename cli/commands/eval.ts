/**
 * `haq eval MODEL --data DIR [--split val] [--json]`: FP32 top-1/top-5 of an ONNX model on a
 * data folder (calib/val/test .npy files, see docs/ingestion.md). Without labels it reports
 * fidelity (agreement with the FP32 model's own top-1).
 *
 * Structure: loadEvalData (data folder -> split), evaluate (model + split -> Evaluation),
 * evalJson/evalText (output). A policy option plugs in at `evaluate`: quantize the model,
 * evaluate it with `reference` = the FP32 predictions, and print the same fields.
 */
import type { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError } from '../../shared/errors';
import { loadDataset, requireSplit, type Split, type SplitName } from '../../shared/data/dataset';
import { evaluateFp32, type Evaluation } from '../../shared/data/evaluate';
import { METRIC_NAMES, type MetricName } from '../../shared/data/metrics';
import { metricLabels } from '../../shared/report/labels';
import { FsStore } from '../../shared/store/fs-store';
import { action, printJson } from '../output';
import { readInputFile } from './inspect';
import { prepareQuantEvaluator } from '../../shared/quant/evaluator';
import { activationBatchSize } from '../../shared/quant/calibration';
import { inspectModel } from '../../shared/onnx/inspect';
import { policySizeBytes } from '../../shared/quant/policy';
import { addQuantOptions, inspectForPolicy, quantInputs, quantFlags, readPolicyFile, type QuantCliOptions } from './export';

export interface EvalCliOptions {
  data: string;
  split: string;
  batchSize?: string;
  limit?: string;
  metric?: string;
  json?: boolean;
}

/** `--metric top1|sqnr|cosine`, or undefined for the default (top-1 for a classifier or labels, else SQNR). */
export function metricFlag(value: string | undefined): MetricName | undefined {
  if (value === undefined || value === 'auto') return undefined;
  if (!(METRIC_NAMES as readonly string[]).includes(value)) throw new InvalidInputError(`--metric ${value} must be one of auto, ${METRIC_NAMES.join(', ')}`, { value });
  return value as MetricName;
}

const positiveInt = (value: string, flag: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidInputError(`${flag} ${value} must be a positive integer`, { value });
  return n;
};

/** Loads one split of a local data folder (wrapped in an FsStore). */
export async function loadEvalData(dir: string, splitName: string): Promise<Split> {
  if (!['val', 'select', 'test', 'calib'].includes(splitName)) throw new InvalidInputError(`--split ${splitName} must be val, select, test or calib`, { split: splitName });
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) throw new InvalidInputError(`--data ${dir} is not a folder; pass the folder that holds val-inputs.npy`, { dir });
  const dataset = await loadDataset(new FsStore(dir), '', [splitName as SplitName]);
  return requireSplit(dataset, splitName as SplitName);
}

/** The `--json` document. */
export function evalJson(e: Evaluation): Record<string, unknown> {
  const { top1, top1Se, top5, samples, seconds, mode, metric, score, scoreSe, crossEntropy, kl, sqnrDb, cosine } = e.result;
  return {
    metric,
    score,
    scoreSe,
    top1,
    top1Se,
    top5,
    crossEntropy,
    kl,
    sqnrDb,
    cosine,
    samples,
    seconds,
    imagesPerSecond: seconds > 0 ? samples / seconds : null,
    mode,
    classes: e.classes,
  };
}

const pm = (e: { value: number; se: number } | null, digits: number, unit = ''): string | null =>
  e === null ? null : `${e.value.toFixed(digits)}${unit} +- ${e.se.toFixed(digits)}${unit}`;

/** The text report; `compared` when the FP32 comparisons (KL, SQNR, cosine) are against another model's outputs. */
export function evalText(e: Evaluation, modelPath: string, split: string, compared = false): string {
  const { top1, top1Se, top5, samples, seconds, mode, metric, crossEntropy, kl, sqnrDb, cosine } = e.result;
  const what = top1 === null ? `scored by ${metricLabels(metric).name}` : mode === 'labels' ? 'accuracy vs labels' : 'fidelity (agreement with the FP32 top-1; no labels)';
  const lines = [`${modelPath} on ${split} (${samples} samples${top1 === null ? '' : `, ${e.classes} classes`}): ${what}`];
  if (top1 !== null) {
    lines.push(`  top-1 ${top1.toFixed(2)} % +- ${(top1Se ?? 0).toFixed(2)}`);
    lines.push(`  top-5 ${top5 === null ? 'n/a (5 classes or fewer)' : `${top5.toFixed(2)} %`}`);
  }
  if (crossEntropy) lines.push(`  cross-entropy ${pm(crossEntropy, 4, ' nats')}`);
  if (compared) {
    if (kl) lines.push(`  KL from FP32 ${pm(kl, 5, ' nats')}`);
    if (sqnrDb) lines.push(`  output SQNR vs FP32 ${pm(sqnrDb, 2, ' dB')}`);
    if (cosine) lines.push(`  output cosine vs FP32 ${pm(cosine, 5)}`);
  }
  lines.push(`  ${seconds.toFixed(2)} s, ${seconds > 0 ? Math.round(samples / seconds) : '-'} images/s`);
  return lines.join('\n');
}

/**
 * FP32 eval's samples per run when --batch-size is not given: as many as fit their layer
 * inputs in 1 GiB (calibration.ts PASS_MEMORY_BYTES), at most 128, so a 640x640 model does not
 * hold 128 samples' activations at once. 128 when the model has no layer table to size it by
 * (no quantizable layer, or inspection fails: evaluateFp32 then reports what is wrong).
 */
export async function fp32BatchSize(bytes: Uint8Array, sampleShape: readonly number[]): Promise<number> {
  try {
    return activationBatchSize(await inspectModel(bytes, { inputShape: [1, ...sampleShape] }), 1, 128);
  } catch {
    return 128;
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('top-1/top-5 and cross-entropy of an ONNX model on a data folder (.npy files), FP32 or with --policy quantized (then also KL, output SQNR and cosine against FP32); fidelity to the FP32 top-1 when there are no labels')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--data <dir>', 'data folder with <split>-inputs.npy, optional <split>-labels.npy and meta.json')
    .option('--split <name>', 'which split to evaluate: val, select, test or calib', 'val')
    .option('--batch-size <n>', 'samples per onnxruntime run (default: as many as fit their layer inputs in 1 GiB, at most 128; with --policy twice their layer inputs, at most 64)')
    .option('--limit <n>', 'evaluate only the first n samples')
    .option('--metric <name>', 'what --json "score" is: top1 | sqnr | cosine (output SQNR dB / cosine vs FP32, for any model; default top1 for labels or a classifier output [N, classes], else sqnr)')
    .option('--policy <file>', 'evaluate the model quantized by this policy JSON (calibrated on <data>/calib-inputs.npy as its "quantization" record says); adds sizeBytes')
    .option('--input-shape <dims>', 'with --policy: the input shape for the layer table; the data fixes it, so it must agree with the data')
    .option('--json', 'print JSON: {"metric","score","scoreSe","top1","top1Se","top5","crossEntropy","kl","sqnrDb","cosine","samples","seconds","imagesPerSecond"} (+ "sizeBytes" with --policy)');
  addQuantOptions(cmd).action(
    action(async (modelPath: string, opts: EvalCliOptions & QuantCliOptions & { policy?: string }) => {
      const batchSize = opts.batchSize !== undefined ? positiveInt(opts.batchSize, '--batch-size') : undefined;
      if (opts.policy) quantFlags(opts); // bad flags fail before any work
      const limit = opts.limit !== undefined ? positiveInt(opts.limit, '--limit') : undefined;
      const bytes = await readInputFile(modelPath);
      const metric = metricFlag(opts.metric);
      const split = await loadEvalData(opts.data, opts.split);
      if (opts.policy) {
        // Quantized evaluation (shared/quant): one fake-quantized session, calibrated activations.
        const table = await inspectForPolicy(bytes, modelPath, opts.inputShape, { sampleShape: split.sampleShape, what: join(opts.data, `${opts.split}-inputs.npy`) });
        const policy = await readPolicyFile(opts.policy, table);
        const flags = quantFlags(opts, policy);
        const { calibration, recovery } = await quantInputs(bytes, table, policy, opts.data, flags, (line) => process.stderr.write(`haq eval: note: ${line}\n`));
        const evaluator = await prepareQuantEvaluator(bytes, table, calibration, { ...flags, recovery, batchSize });
        try {
          const evaluation = await evaluator.predict(policy, split, { limit, metric });
          const slow = evaluator.sessions().find((s) => !s.optimized);
          if (slow) process.stderr.write(`haq eval: note: evaluated on the plain graph, slower than onnxruntime's optimized one (${slow.reason})\n`);
          const sizeBytes = policySizeBytes(table, policy.layers);
          if (opts.json) printJson({ ...evalJson(evaluation), sizeBytes });
          else process.stdout.write(`${evalText(evaluation, `${modelPath} with policy ${opts.policy}`, opts.split, true)}\n  quantized weights ${sizeBytes} bytes\n`);
        } finally {
          await evaluator.close();
        }
        return;
      }
      const evaluation = await evaluateFp32(bytes, split, { what: modelPath, batchSize: batchSize ?? (await fp32BatchSize(bytes, split.sampleShape)), limit, metric });
      if (opts.json) printJson(evalJson(evaluation));
      else process.stdout.write(`${evalText(evaluation, modelPath, opts.split)}\n`);
    }),
  );
}
