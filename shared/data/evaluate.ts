/**
 * Running a model over a data split and scoring it (the adapter over runtime.ts + metrics.ts).
 *
 *   const fp32 = await evaluateFp32(bytes, split);                               // FP32 baseline
 *   const q = await evaluateSession(quantSession, split, { modelDims, referenceOutputs, extraFeeds });
 *
 * With labels the top-1 is accuracy; without labels it is fidelity: agreement with the FP32
 * model's own top-1, which is 100 for the FP32 model itself. Given the FP32 model's outputs on
 * the same samples (`referenceOutputs`), the evaluation also returns the KL divergence from
 * the FP32 logits and the SQNR and cosine similarity of every output (metrics.ts).
 */
import { InvalidDataError } from '../errors';
import { modelInput } from '../onnx/layers';
import { decodeModel } from '../onnx/proto';
import { ModelSession, type FloatTensor, type Tensor } from '../onnx/runtime';
import type { EvaluationResult } from '../search/results';
import { batchRanges, checkSampleShape, dataFiles, inputBatch, type Split } from './dataset';
import { checkLabels, metricScore, signalAccumulator, top1Predictions, type MetricName, type OutputBatch, type Signals } from './metrics';

export interface PredictOptions {
  /** The model input's declared dims ([batch, ...], null = dynamic) to check the data against. */
  modelDims?: Array<number | null>;
  /** Input tensor name (default: the session's first input). */
  inputName?: string;
  /** Output tensors in order; the first holds the logits (default: every output of the session). */
  outputNames?: readonly string[];
  /** Samples per run (default 128). */
  batchSize?: number;
  /** Use only the first `limit` samples. */
  limit?: number;
  /** Extra constant feeds (e.g. a quantized model's scale inputs), passed to every run. */
  extraFeeds?: Record<string, Tensor>;
  /** Called after each batch with (samplesDone, samplesTotal). */
  onProgress?: (done: number, total: number) => void;
}

export interface Predictions {
  /** The first output, [samples, classes] row-major. */
  logits: Float32Array;
  classes: number;
  samples: number;
}

/** Samples of a split that an evaluation with `limit` covers. */
export const samplesOf = (split: Split, limit?: number): number => Math.min(split.samples, limit ?? split.samples);

/**
 * Runs the session over a split in batches and hands each batch's outputs (in `outputNames`
 * order, each [count, ...]) to `onBatch`. Returns the number of samples run.
 */
export async function forEachBatch(
  session: ModelSession,
  split: Split,
  options: PredictOptions,
  onBatch: (start: number, count: number, outputs: FloatTensor[]) => void | Promise<void>,
): Promise<number> {
  const inputName = options.inputName ?? session.inputNames[0];
  const outputNames = options.outputNames ?? session.outputNames;
  if (options.modelDims) checkSampleShape(options.modelDims, split.sampleShape, dataFiles.inputs(split.name), inputName);
  const samples = samplesOf(split, options.limit);
  for (const { start, count } of batchRanges(samples, options.batchSize ?? 128)) {
    const batch = inputBatch(split, start, count);
    const result = await session.run({ ...options.extraFeeds, [inputName]: batch }, outputNames);
    const outputs = outputNames.map((name) => {
      const out = result[name];
      if (out.dims[0] !== count || out.data.length % count !== 0) {
        throw new InvalidDataError(
          `the model output "${name}" has shape [${out.dims.join(', ')}] for a batch of ${count}; haq expects every output to have the batch first, [N, ...]`,
          { dims: out.dims },
        );
      }
      return out;
    });
    await onBatch(start, count, outputs);
    options.onProgress?.(start + count, samples);
  }
  return samples;
}

/** Runs the session over a split (in batches) and collects the first output (the logits). */
export async function predictSplit(session: ModelSession, split: Split, options: PredictOptions = {}): Promise<Predictions> {
  const outputNames = [(options.outputNames ?? session.outputNames)[0]];
  let logits: Float32Array | null = null;
  let classes = 0;
  const samples = await forEachBatch(session, split, { ...options, outputNames }, (start, count, [out]) => {
    if (!logits) {
      classes = out.data.length / count;
      logits = new Float32Array(samplesOf(split, options.limit) * classes);
    }
    logits.set(out.data, start * classes);
  });
  return { logits: logits ?? new Float32Array(0), classes, samples };
}

/** The FP32 model's outputs for the samples [start, start + count) of a split, in output order. */
export type ReferenceOutputs = (start: number, count: number) => Promise<OutputBatch>;

export interface EvaluateOptions extends PredictOptions {
  /**
   * The FP32 model's outputs on the same split: KL, SQNR, cosine, and the fidelity targets
   * without labels ('self': the session is the FP32 model, its own reference).
   */
  referenceOutputs?: ReferenceOutputs | 'self';
  /** FP32 top-1 predictions for fidelity mode, when the full outputs are not at hand (top-1 only). */
  reference?: Int32Array;
  /** The metric of `score` (default top1, or sqnr when the first output is not [N, classes] and there are no labels). */
  metric?: MetricName;
  /** Keep the first output of every sample in `Evaluation.logits` (default true). */
  keepLogits?: boolean;
  /** Clock in milliseconds for `seconds` (default performance.now). */
  nowMs?: () => number;
}

export interface Evaluation {
  result: EvaluationResult;
  /** Top-1 class per sample (the `reference` for evaluating other models in fidelity mode); empty unless the first output is [N, classes]. */
  predictions: Int32Array;
  /** The first output of every sample (empty with keepLogits false). */
  logits: Float32Array;
  classes: number;
  signals: Signals;
}

/** The stored form of the signals: the metric's score and every signal with its standard error. */
export function evaluationResult(signals: Signals, metric: MetricName, seconds: number): EvaluationResult {
  const score = metricScore(metric, signals);
  if (!score) {
    throw new InvalidDataError(
      metric === 'top1'
        ? `--metric top1 needs labels or a classifier output [N, classes] (and FP32 outputs for fidelity); use --metric sqnr or --metric cosine`
        : `--metric ${metric} compares with the FP32 model's outputs, and there were none to compare with`,
      { metric },
    );
  }
  return {
    top1: signals.top1?.value ?? null,
    top1Se: signals.top1?.se ?? null,
    top5: signals.top5,
    mode: signals.mode,
    samples: signals.samples,
    seconds,
    metric,
    score: score.value,
    scoreSe: score.se,
    crossEntropy: signals.crossEntropy,
    kl: signals.kl,
    sqnrDb: signals.sqnrDb,
    cosine: signals.cosine,
  };
}

/**
 * Evaluates a session on a split: top-1 against labels when the split has them, else against
 * the FP32 top-1 (`referenceOutputs` or `reference`); the FP32 comparisons when
 * `referenceOutputs` is given. InvalidDataError when the metric cannot be computed.
 */
export async function evaluateSession(session: ModelSession, split: Split, options: EvaluateOptions = {}): Promise<Evaluation> {
  const now = options.nowMs ?? (() => performance.now());
  const t0 = now();
  const samples = samplesOf(split, options.limit);
  const labels = split.labels ? split.labels.subarray(0, samples) : null;
  if (!labels && !options.referenceOutputs && !options.reference) {
    throw new InvalidDataError(`${dataFiles.labels(split.name)} is missing and no FP32 reference predictions were given for fidelity mode`, {});
  }
  if (options.reference && options.reference.length < samples) {
    throw new InvalidDataError(`the FP32 reference has ${options.reference.length} predictions for ${samples} samples`, {});
  }
  const keep = options.keepLogits ?? true;
  const acc = signalAccumulator();
  let logits = new Float32Array(0);
  let predictions = new Int32Array(0);
  let classes = 0;
  await forEachBatch(session, split, options, async (start, count, outputs) => {
    const first = outputs[0];
    if (start === 0) {
      classes = first.data.length / count;
      if (labels && first.dims.length === 2) checkLabels(labels, classes, dataFiles.labels(split.name));
      if (first.dims.length === 2) predictions = new Int32Array(samples);
      if (keep) logits = new Float32Array(samples * classes);
    }
    if (keep) logits.set(first.data, start * classes);
    if (predictions.length > 0) predictions.set(top1Predictions(first.data, classes), start);
    const ref = options.referenceOutputs;
    const reference = ref === 'self' ? outputs : ref ? await ref(start, count) : null;
    acc.add(outputs, {
      labels: labels ? labels.subarray(start, start + count) : null,
      reference,
      referenceTop1: options.reference ? options.reference.subarray(start, start + count) : null,
    });
  });
  const signals = acc.finish();
  const metric = options.metric ?? (signals.top1 || !signals.sqnrDb ? 'top1' : 'sqnr');
  const seconds = (now() - t0) / 1000;
  return { result: evaluationResult(signals, metric, seconds), predictions, logits, classes, signals };
}

/** A ReferenceOutputs over outputs already computed for the whole split (each [samples, ...]). */
export function referenceFromOutputs(outputs: OutputBatch): ReferenceOutputs {
  return async (start, count) =>
    outputs.map((o) => {
      const per = o.data.length / o.dims[0];
      return { data: o.data.subarray(start * per, (start + count) * per), dims: [count, ...o.dims.slice(1)] };
    });
}

/**
 * FP32 evaluation of model bytes on a split. Without labels the top-1 is fidelity against the
 * model's own top-1 (100 by definition); `predictions` is the reference for other models.
 */
export async function evaluateFp32(
  bytes: Uint8Array,
  split: Split,
  options: Omit<EvaluateOptions, 'reference' | 'referenceOutputs' | 'modelDims'> & { what?: string; threads?: number } = {},
): Promise<Evaluation> {
  const what = options.what ?? 'model';
  const model = decodeModel(bytes, what);
  const input = modelInput(model, what);
  checkSampleShape(input.dims, split.sampleShape, dataFiles.inputs(split.name), input.name);
  const session = await ModelSession.create(bytes, { what, threads: options.threads });
  try {
    // The model is its own reference: fidelity 100, KL 0, SQNR at its cap, cosine 1.
    return await evaluateSession(session, split, { ...options, modelDims: input.dims, inputName: input.name, referenceOutputs: 'self' });
  } finally {
    await session.release();
  }
}
