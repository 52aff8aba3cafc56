/**
 * Running a model over a data split and scoring it (the adapter over runtime.ts + metrics.ts).
 *
 *   const { result, predictions } = await evaluateFp32(bytes, split);      // FP32 baseline
 *   const q = await evaluateSession(quantSession, split, { modelDims, reference: predictions, extraFeeds });
 *
 * With labels the score is accuracy; without labels it is fidelity: agreement with the FP32
 * model's own top-1 (`reference`), which is 100 for the FP32 model itself.
 */
import { InvalidDataError } from '../errors';
import { modelInput } from '../onnx/layers';
import { decodeModel } from '../onnx/proto';
import { ModelSession, type Tensor } from '../onnx/runtime';
import type { EvaluationResult } from '../search/results';
import { batchRanges, checkSampleShape, dataFiles, inputBatch, type Split } from './dataset';
import { checkLabels, scoreLogits, top1Predictions } from './metrics';

export interface PredictOptions {
  /** The model input's declared dims ([batch, ...], null = dynamic) to check the data against. */
  modelDims?: Array<number | null>;
  /** Input tensor name (default: the session's first input). */
  inputName?: string;
  /** Output tensor with the logits (default: the session's first output). */
  outputName?: string;
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
  /** [samples, classes] row-major. */
  logits: Float32Array;
  classes: number;
  samples: number;
}

/** Runs the session over a split (in batches) and collects the logits. */
export async function predictSplit(session: ModelSession, split: Split, options: PredictOptions = {}): Promise<Predictions> {
  const inputName = options.inputName ?? session.inputNames[0];
  const outputName = options.outputName ?? session.outputNames[0];
  const what = dataFiles.inputs(split.name);
  if (options.modelDims) checkSampleShape(options.modelDims, split.sampleShape, what, inputName);
  const samples = Math.min(split.samples, options.limit ?? split.samples);
  let logits: Float32Array | null = null;
  let classes = 0;
  for (const { start, count } of batchRanges(samples, options.batchSize ?? 128)) {
    const batch = inputBatch(split, start, count);
    const out = (await session.run({ ...options.extraFeeds, [inputName]: batch }, [outputName]))[outputName];
    if (out.dims[0] !== count) {
      throw new InvalidDataError(
        `the model output "${outputName}" has shape [${out.dims.join(', ')}] for a batch of ${count}; haq expects logits [N, classes] with the batch first`,
        { dims: out.dims },
      );
    }
    const rowClasses = out.data.length / count;
    if (!logits) {
      classes = rowClasses;
      logits = new Float32Array(samples * classes);
    }
    logits.set(out.data, start * classes);
    options.onProgress?.(start + count, samples);
  }
  return { logits: logits ?? new Float32Array(0), classes, samples };
}

export interface EvaluateOptions extends PredictOptions {
  /** FP32 top-1 predictions for fidelity mode (used when the split has no labels). */
  reference?: Int32Array;
  /** Clock in milliseconds for `seconds` (default performance.now). */
  nowMs?: () => number;
}

export interface Evaluation {
  result: EvaluationResult;
  /** Top-1 class per sample (the `reference` for evaluating other models in fidelity mode). */
  predictions: Int32Array;
  logits: Float32Array;
  classes: number;
}

/**
 * Evaluates a session on a split: labels when the split has them, else fidelity against
 * `options.reference` (InvalidDataError when neither is available).
 */
export async function evaluateSession(session: ModelSession, split: Split, options: EvaluateOptions = {}): Promise<Evaluation> {
  const now = options.nowMs ?? (() => performance.now());
  const t0 = now();
  const p = await predictSplit(session, split, options);
  const seconds = (now() - t0) / 1000;
  const predictions = top1Predictions(p.logits, p.classes);
  let targets: { labels: Int32Array } | { reference: Int32Array };
  if (split.labels) {
    const labels = split.labels.subarray(0, p.samples);
    checkLabels(labels, p.classes, dataFiles.labels(split.name));
    targets = { labels };
  } else if (options.reference) {
    if (options.reference.length < p.samples) {
      throw new InvalidDataError(`the FP32 reference has ${options.reference.length} predictions for ${p.samples} samples`, {});
    }
    targets = { reference: options.reference.subarray(0, p.samples) };
  } else {
    throw new InvalidDataError(`${dataFiles.labels(split.name)} is missing and no FP32 reference predictions were given for fidelity mode`, {});
  }
  const scores = scoreLogits(p.logits, p.classes, targets);
  return { result: { ...scores, samples: p.samples, seconds }, predictions, logits: p.logits, classes: p.classes };
}

/**
 * FP32 evaluation of model bytes on a split. Without labels the score is fidelity against the
 * model's own top-1 (100 by definition); `predictions` is the reference for other models.
 */
export async function evaluateFp32(
  bytes: Uint8Array,
  split: Split,
  options: Omit<EvaluateOptions, 'reference' | 'modelDims'> & { what?: string; threads?: number } = {},
): Promise<Evaluation> {
  const what = options.what ?? 'model';
  const model = decodeModel(bytes, what);
  const input = modelInput(model, what);
  checkSampleShape(input.dims, split.sampleShape, dataFiles.inputs(split.name), input.name);
  const session = await ModelSession.create(bytes, { what, threads: options.threads });
  try {
    if (split.labels) return await evaluateSession(session, split, { ...options, modelDims: input.dims, inputName: input.name });
    // Fidelity: the reference is the model's own top-1, so top-1 agreement is 100.
    return await evaluateSelf(session, split, { ...options, modelDims: input.dims, inputName: input.name });
  } finally {
    await session.release();
  }
}

async function evaluateSelf(session: ModelSession, split: Split, options: EvaluateOptions): Promise<Evaluation> {
  const now = options.nowMs ?? (() => performance.now());
  const t0 = now();
  const p = await predictSplit(session, split, options);
  const seconds = (now() - t0) / 1000;
  const predictions = top1Predictions(p.logits, p.classes);
  const scores = scoreLogits(p.logits, p.classes, { reference: predictions });
  return { result: { ...scores, samples: p.samples, seconds }, predictions, logits: p.logits, classes: p.classes };
}
