/**
 * Fast policy evaluation: the fake-quantized graph (fake-quant.ts) is built and loaded into
 * ONE onnxruntime session; a policy only changes the session's feeds (the weights quantized
 * in memory, the activation quantizers' scalars), so switching policies costs no session
 * rebuild and no model re-parse. The session runs onnxruntime's optimized graph for this
 * machine with the weights as inputs in onnxruntime's own layout (shared/onnx/runtime-weights.ts),
 * so a policy evaluates at close to the speed of the FP32 model (bench: evaluation).
 *
 * Quantized weights are cached per (layer, bits), and their fed form (times the activation scale,
 * in onnxruntime's layout) per (layer, bits, activation bits), each in a least-recently-used cache
 * bounded by bytes (shared/bounded-memo.ts; weightCacheBytes, feedCacheBytes): a policy switch after
 * the first few is a handful of map look-ups, and what was dropped is computed again the same way.
 *
 * Which activations are quantized is part of the graph: all of them (linear mode, every search
 * policy) or none (k-means mode). A policy that leaves only some activations float (a
 * hand-written one for `haq eval`) gets its own session, built once on first use. FP32
 * evaluation (no policy) runs the model as given in a session of its own.
 *
 * The reward uses calibrated post-training quantization, no fine-tuning (HAQ fine-tunes one
 * epoch per episode; haq has no training runtime in the loop).
 */
import { boundedMemo } from '../bounded-memo';
import { defaultMeta, inputBatch, type Split } from '../data/dataset';
import { evaluateSession, type Evaluation, type ReferenceOutputs } from '../data/evaluate';
import type { MetricName, OutputBatch } from '../data/metrics';
import { CorruptObjectError, InvalidInputError } from '../errors';
import { modelInput } from '../onnx/layers';
import { decodeModel } from '../onnx/proto';
import { ModelSession, type FloatTensor, type Tensor } from '../onnx/runtime';
import { layoutValues, optimizeWithWeightInputs, type WeightFeed } from '../onnx/runtime-weights';
import type { LayerTable } from '../onnx/types';
import { deriveSeed, Rng } from '../rng';
import type { EvaluationResult } from '../search/results';
import { activationBatchSize, modelBatchSize, type Calibration } from './calibration';
import type { ClipMethod } from './clip-range';
import { buildFakeQuantModel, quantizableWeights, type FakeQuantLayer, type FakeQuantModel } from './fake-quant';
import { kmeansQuantize } from './kmeans';
import { accumulatorBias, activationQuant, linearWeightsBytes, quantizeWeightsLinear, type ActivationQuant, type LinearWeights } from './linear';
import { validatePolicy, type LayerBits, type Policy } from './policy';

export type WeightMode = 'linear' | 'kmeans';

export interface QuantEvaluatorOptions {
  /** 'linear' (default, the reward) or 'kmeans' (model-size mode: shared centroids per layer). */
  weightMode?: WeightMode;
  /** Per-output-channel weight scales (default) or one per tensor. */
  perChannel?: boolean;
  /** Which calibrated clip value the activations use (default 'mse'). */
  clipMethod?: ClipMethod;
  /** Seed of the k-means++ initialisation. */
  seed?: number;
  /**
   * Samples per run (default: as many as fit twice their layer inputs in calibration.ts
   * PASS_MEMORY_BYTES, at most 64, so the model's activations, not the batch, bound Evaluate's
   * memory; a model with a fixed batch dim uses that instead). Twice: the fake-quantized session
   * and the FP32 reference each hold a batch's activations (PP-OCR det at 640x640, about 100 MB
   * of layer inputs per sample, replayed as Evaluate: 254 MiB more per sample of the batch).
   */
  batchSize?: number;
  threads?: number;
  /** Also output every layer's activation input and integer codes (tests). */
  debugOutputs?: boolean;
  /**
   * 'optimized' (default): onnxruntime's optimized graph with the weights as inputs in its layout;
   * 'plain': the rewritten graph as is, weights as plain inputs (slower; the reference in tests).
   */
  runtimeLayout?: 'optimized' | 'plain';
  /** Memory for the quantized weights of recent (layer, bits) pairs, bytes (default 256 MiB). */
  weightCacheBytes?: number;
  /** Memory for the fed weights of recent (layer, bits, activation bits), bytes (default 256 MiB). */
  feedCacheBytes?: number;
  /**
   * Memory for the FP32 model's outputs on the evaluated splits (the reference of KL, SQNR,
   * cosine and fidelity), bytes (default 256 MiB); batches beyond it are recomputed per evaluation.
   */
  referenceCacheBytes?: number;
  /** Milliseconds clock for EvaluationResult.seconds (default performance.now). */
  clockMs?: () => number;
  /** Linear weights with accuracy recovery per (layer, bits) (shared/quant/recovery.ts); default: round to nearest. */
  recovery?: RecoverySource | null;
}

/** A layer's linear weights at one bitwidth, and the bias correction that goes with them. */
export interface QuantizedLayer extends LinearWeights {
  /** Added to the layer's float bias (null: none). */
  biasDelta: Float32Array | null;
}

/** Where the evaluator and the export get each layer's quantized weights (recovery.ts implements it). */
export interface RecoverySource {
  layer(layerIndex: number, bits: number): Promise<QuantizedLayer>;
}

/** A float32 split from tensors (tests, the bench): inputs [N, ...] and optional labels. */
export function splitFromTensor(inputs: FloatTensor, labels: Int32Array | null = null, name: Split['name'] = 'val'): Split {
  return {
    name,
    inputs: { dtype: 'float32', data: inputs.data, shape: inputs.dims },
    labels,
    samples: inputs.dims[0],
    sampleShape: inputs.dims.slice(1),
    meta: { ...defaultMeta },
  };
}

export interface SplitOptions {
  /** Only the first `limit` samples. */
  limit?: number;
  /** The metric of the result's `score` (default top1 for a classifier output, else sqnr). */
  metric?: MetricName;
}

/** How a session of the evaluator runs its graph. */
export interface EvaluatorSessionInfo {
  /** Which activations stay float ('' when all are quantized; layer indices, comma separated). */
  floatLayers: string;
  /** onnxruntime's optimized graph with weight inputs, or the plain fallback (and why). */
  optimized: boolean;
  reason?: string;
  reordersRemoved: number;
}

export interface QuantEvaluator {
  readonly table: LayerTable;
  /** Samples per onnxruntime run (QuantEvaluatorOptions.batchSize). */
  readonly batchSize: number;
  /** The layers of the all-quantized graph (names of the inputs and debug outputs). */
  readonly layers: readonly FakeQuantLayer[];
  /** The sessions opened so far (one per set of float activations used). */
  sessions(): EvaluatorSessionInfo[];
  /**
   * Top-1/top-5 of the policy on the data (fidelity against the FP32 model without labels), and
   * its cross-entropy, KL divergence, SQNR and cosine against the FP32 model's outputs.
   */
  evaluate(policy: Policy | { layers: LayerBits[] }, split: Split, options?: SplitOptions): Promise<EvaluationResult>;
  /** The same numbers for the unquantized model (the model as given, in its own session). */
  evaluateFp32(split: Split, options?: SplitOptions): Promise<EvaluationResult>;
  /** Logits and top-1 predictions of a policy (null: FP32, the model as given) on a split. */
  predict(policy: Policy | { layers: LayerBits[] } | null, split: Split, options?: SplitOptions): Promise<Evaluation>;
  /** The session feeds for a policy (weights and quantizer scalars): the policy switch. */
  policyFeeds(policy: Policy | { layers: LayerBits[] } | null): Promise<Record<string, Tensor>>;
  /** Runs one batch; returns the named outputs (default: the model's outputs). */
  run(policy: Policy | { layers: LayerBits[] } | null, inputs: FloatTensor, outputNames?: string[]): Promise<Record<string, FloatTensor>>;
  /** The activation quantizer a layer gets at `bits` (from the calibration). */
  activationParams(layerIndex: number, bits: number): ActivationQuant;
  /** The quantized weights of a layer at `bits` (cached; from the recovery source when there is one). */
  quantizedWeights(layerIndex: number, bits: number): Promise<Float32Array>;
  /** The bias a layer adds for a policy's bits (null: the layer has no bias slot). */
  layerBias(layerIndex: number, wBits: number, aBits: number | null): Promise<Float32Array | null>;
  /** Bytes the caches hold now: each within its bound (or one entry larger than it, alone). */
  cachedBytes(): { weights: number; feeds: number; references: number };
  close(): Promise<void>;
}

const scalar = (v: number, type: FakeQuantLayer['boundsType'] | 'float32' = 'float32'): Tensor => ({
  data: type === 'int8' ? Int8Array.of(v) : type === 'uint8' ? Uint8Array.of(v) : Float32Array.of(v),
  dims: [],
});

/** One graph variant (a set of float activations) and its session. */
interface Variant {
  info: EvaluatorSessionInfo;
  fq: FakeQuantModel;
  session: ModelSession;
  /** Per layer: the graph inputs carrying its weights, and its bias. */
  weightFeeds: WeightFeed[][];
  biasFeeds: WeightFeed[][];
}

/** Checks that a calibration object belongs to the model and its layer table. */
export function checkCalibration(calibration: Calibration, table: LayerTable): void {
  if (calibration.modelHash !== table.modelHash) {
    throw new CorruptObjectError(
      `calibration was computed for model ${calibration.modelHash.slice(0, 12)}..., not this model (${table.modelHash.slice(0, 12)}...); recalibrate`,
    );
  }
  const names = calibration.layers.map((l) => l.name).join(',');
  if (names !== table.layers.map((l) => l.name).join(',')) {
    throw new CorruptObjectError(`calibration layers (${names}) do not match the layer table; recalibrate`);
  }
}

/** Copies of a batch's layer inputs an evaluation holds at once (QuantEvaluatorOptions.batchSize). */
const EVAL_COPIES = 2;

export async function prepareQuantEvaluator(
  modelBytes: Uint8Array,
  table: LayerTable,
  calibration: Calibration | null,
  options: QuantEvaluatorOptions = {},
): Promise<QuantEvaluator> {
  const { weightMode = 'linear', perChannel = true, clipMethod = 'mse', seed = 0, clockMs = () => performance.now(), recovery = null } = options;
  const { runtimeLayout = 'optimized', weightCacheBytes = 256 * 2 ** 20, feedCacheBytes = 256 * 2 ** 20, referenceCacheBytes = 256 * 2 ** 20, debugOutputs = false } = options;
  if (calibration) checkCalibration(calibration, table);
  const model = decodeModel(modelBytes);
  const declared = modelInput(model).dims;
  const batchSize = modelBatchSize(declared, options.batchSize ?? activationBatchSize(table, EVAL_COPIES));
  const signed = calibration ? calibration.layers.map((l) => l.signed) : [];
  const layerWeights = quantizableWeights(model, table);
  const allFloat = layerWeights.map(() => true);

  const variants = new Map<string, Promise<Variant>>();
  const opened: Variant[] = [];
  const openVariant = async (floatActivations: boolean[]): Promise<Variant> => {
    const fq = buildFakeQuantModel(model, table, { debugOutputs, signed, floatActivations });
    const weights = fq.layers.flatMap((l) => [
      { name: l.weightInput, data: l.weight, dims: l.weightDims },
      ...(l.biasInput ? [{ name: l.biasInput, data: l.bias!, dims: [l.bias!.length] }] : []),
    ]);
    const rw = await optimizeWithWeightInputs(fq.model, weights, { what: 'fake-quantized model', optimize: runtimeLayout === 'optimized' });
    const session = await ModelSession.create(rw.bytes, { threads: options.threads, what: 'fake-quantized model', graphOptimization: rw.graphOptimization });
    const floatLayers = floatActivations.flatMap((f, i) => (f ? [i] : [])).join(',');
    const v: Variant = {
      info: { floatLayers, optimized: rw.optimized, reason: rw.reason, reordersRemoved: rw.reordersRemoved },
      fq,
      session,
      weightFeeds: fq.layers.map((l) => rw.feeds.get(l.weightInput)!),
      biasFeeds: fq.layers.map((l) => (l.biasInput ? rw.feeds.get(l.biasInput)! : [])),
    };
    opened.push(v);
    return v;
  };
  const variant = (floatActivations: boolean[]): Promise<Variant> => {
    const key = floatActivations.map((f) => (f ? 1 : 0)).join('');
    let v = variants.get(key);
    if (!v) {
      v = openVariant(floatActivations);
      variants.set(key, v);
      v.catch(() => variants.delete(key));
    }
    return v;
  };
  // The search's graph: every activation quantized (linear mode with a calibration), or none.
  const main = await variant(calibration && weightMode === 'linear' ? layerWeights.map(() => false) : allFloat);

  // Quantized weights per (layer, bits): from the recovery source, else rounded to nearest (or k-means).
  const weightCache = boundedMemo<QuantizedLayer | Float32Array>(weightCacheBytes, (w) => (w instanceof Float32Array ? w.byteLength : linearWeightsBytes(w)));
  const layerWeightsAt = (i: number, bits: number): Promise<QuantizedLayer | Float32Array> =>
    weightCache.get(`${i}:${bits}`, async () => {
      const l = main.fq.layers[i];
      if (weightMode === 'kmeans') return kmeansQuantize(l.weight, bits, new Rng(deriveSeed(seed, 'kmeans', l.name, bits))).values;
      if (recovery) return recovery.layer(i, bits);
      return { ...quantizeWeightsLinear(l.weight, l.weightDims, bits, { perChannel, axis: l.channelAxis }), biasDelta: null };
    });
  const quantizedWeights = async (i: number, bits: number): Promise<Float32Array> => {
    const w = await layerWeightsAt(i, bits);
    return w instanceof Float32Array ? w : w.values;
  };
  const activationParams = (i: number, bits: number): ActivationQuant => {
    if (!calibration) throw new InvalidInputError(`layer ${main.fq.layers[i].name}: activation bits ${bits} need a calibration; calibrate first or use aBits null`);
    const c = calibration.layers[i];
    return activationQuant(c.clip[clipMethod][bits - 1], bits, c.signed);
  };

  // Fed weights (scaled, in the session's layout), least recently used dropped beyond the budget.
  const fed = boundedMemo<Float32Array>(feedCacheBytes, (w) => w.byteLength);

  /**
   * The bias of layer i: its float bias plus the recovery's correction; on the int32 accumulator
   * grid (accumulatorBias) whenever its activation is quantized and its weights are linear, as an
   * integer kernel and the exported model hold it.
   */
  const layerBias = async (i: number, wBits: number | null, aBits: number | null): Promise<Float32Array | null> => {
    const l = main.fq.layers[i];
    if (!l.bias) return null;
    if (wBits === null) return l.bias;
    const w = await layerWeightsAt(i, wBits);
    const delta = w instanceof Float32Array ? null : w.biasDelta;
    const bias = delta ? Float32Array.from(l.bias, (b, c) => b + delta[c]) : l.bias;
    if (aBits === null || w instanceof Float32Array) return bias;
    return accumulatorBias(bias, activationParams(i, aBits).scale, w.scales).values;
  };

  type AnyPolicy = Policy | { layers: LayerBits[] } | null;
  // The policy switch: validates the policy once, picks its graph, builds the feeds.
  const policyRun = async (policy: AnyPolicy): Promise<{ v: Variant; feeds: Record<string, Tensor> }> => {
    const bits = policy ? validatePolicy(policy, table).layers : null;
    const needsCalibration = bits?.findIndex((b) => b.aBits !== null) ?? -1;
    if (needsCalibration >= 0) activationParams(needsCalibration, bits![needsCalibration].aBits!); // no calibration: fail before opening a session
    const v = await variant(bits ? bits.map((b) => b.aBits === null) : allFloat);
    const feeds: Record<string, Tensor> = {};
    for (const [i, l] of v.fq.layers.entries()) {
      const b = bits?.[i];
      const a = b && b.aBits !== null ? activationParams(i, b.aBits) : null;
      if (a) {
        feeds[l.divisorInput] = scalar(a.divisor);
        feeds[l.qminInput] = scalar(a.qmin, l.boundsType);
        feeds[l.qmaxInput] = scalar(a.qmax, l.boundsType);
      }
      // The layer consumes the integer codes: the dequantizing scale rides on its weights.
      const scale = a ? Math.fround(a.scale) : 1;
      const tag = `${v.info.floatLayers}|${b ? b.wBits : 'fp32'}|${b?.aBits ?? 'float'}`;
      const base = () => (b ? quantizedWeights(i, b.wBits) : Promise.resolve(l.weight));
      for (const f of v.weightFeeds[i]) {
        const plain = !(f.gather || f.scale || f.offset || scale !== 1);
        const data = await fed.get(`${tag}|${f.input}`, async () => (plain ? base() : layoutValues(await base(), f.gather, f.scale, scale, f.offset)));
        feeds[f.input] = { data, dims: f.dims };
      }
      for (const f of v.biasFeeds[i]) {
        const bias = async () => (await layerBias(i, b?.wBits ?? null, b?.aBits ?? null))!;
        const data = await fed.get(`${tag}|${f.input}`, async () => (f.gather || f.scale || f.offset ? layoutValues(await bias(), f.gather, f.scale, 1, f.offset) : bias()));
        feeds[f.input] = { data, dims: f.dims };
      }
    }
    return { v, feeds };
  };

  // FP32 (no policy): the model as given, in its own session (onnxruntime optimizes its constant
  // weights directly; no rewrite, no probes), opened on first use.
  let fp32Session: Promise<ModelSession> | null = null;
  const fp32 = (): Promise<ModelSession> => {
    if (!fp32Session) {
      fp32Session = ModelSession.create(modelBytes, { threads: options.threads, what: 'FP32 model' });
      fp32Session.catch(() => (fp32Session = null)); // a failed open is retried on the next call
    }
    return fp32Session;
  };
  const { inputName, outputNames } = main.fq;
  // The FP32 outputs per split and batch: the reference of every policy's KL, SQNR, cosine and
  // fidelity. Computed beside the first policy evaluated on the split, kept within the budget.
  const fp32Outputs = new WeakMap<Split, Map<string, OutputBatch>>();
  let referenceBytes = 0;
  const referenceOf = (split: Split): ReferenceOutputs => async (start, count) => {
    let batches = fp32Outputs.get(split);
    if (!batches) fp32Outputs.set(split, (batches = new Map()));
    const key = `${start}:${count}`;
    const hit = batches.get(key);
    if (hit) return hit;
    const result = await (await fp32()).run({ [inputName]: inputBatch(split, start, count) }, outputNames);
    const out = outputNames.map((n) => result[n]);
    const bytes = out.reduce((b, o) => b + o.data.byteLength, 0);
    if (referenceBytes + bytes <= referenceCacheBytes) {
      batches.set(key, out);
      referenceBytes += bytes;
    }
    return out;
  };

  const predict = async (policy: AnyPolicy, split: Split, { limit, metric }: SplitOptions = {}): Promise<Evaluation> => {
    const common = { modelDims: declared, inputName, outputNames, batchSize, limit, metric, nowMs: clockMs };
    if (!policy) return evaluateSession(await fp32(), split, { ...common, referenceOutputs: 'self' });
    const { v, feeds } = await policyRun(policy);
    return evaluateSession(v.session, split, { ...common, extraFeeds: feeds, referenceOutputs: referenceOf(split) });
  };

  return {
    table,
    layers: main.fq.layers,
    batchSize,
    sessions: () => opened.map((v) => v.info),
    cachedBytes: () => ({ weights: weightCache.bytes, feeds: fed.bytes, references: referenceBytes }),
    evaluate: async (policy, split, options) => (await predict(policy, split, options)).result,
    evaluateFp32: async (split, options) => (await predict(null, split, options)).result,
    predict,
    policyFeeds: async (policy) => (await policyRun(policy)).feeds,
    run: async (policy, inputs, outputNames) => {
      const { v, feeds } = await policyRun(policy);
      return v.session.run({ ...feeds, [v.fq.inputName]: inputs }, outputNames ?? v.fq.outputNames);
    },
    activationParams,
    quantizedWeights,
    layerBias: (i, wBits, aBits) => layerBias(i, wBits, aBits),
    close: async () => {
      await Promise.allSettled(variants.values());
      for (const v of opened.splice(0)) await v.session.release();
      variants.clear();
      const f = fp32Session;
      fp32Session = null;
      await (await f?.catch(() => null))?.release();
    },
  };
}
