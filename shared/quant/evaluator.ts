/**
 * Fast policy evaluation: the fake-quantized graph (fake-quant.ts) is built and loaded into
 * ONE onnxruntime session; a policy only changes the session's feeds (the weights quantized
 * in memory, the activation quantizers' scalars), so switching policies costs no session
 * rebuild and no model re-parse. Quantized weights are cached per (layer, bits), so a policy
 * switch after the first few is a handful of map look-ups.
 *
 * The reward uses calibrated post-training quantization, no fine-tuning (HAQ fine-tunes one
 * epoch per episode; haq has no training runtime in the loop).
 */
import { defaultMeta, type Split } from '../data/dataset';
import { evaluateSession, predictSplit, type Evaluation } from '../data/evaluate';
import { top1Predictions } from '../data/metrics';
import { CorruptObjectError, InvalidInputError } from '../errors';
import { modelInput } from '../onnx/layers';
import { decodeModel } from '../onnx/proto';
import { ModelSession, type FloatTensor, type Tensor } from '../onnx/runtime';
import type { LayerTable } from '../onnx/types';
import { deriveSeed, Rng } from '../rng';
import type { EvaluationResult } from '../search/results';
import { modelBatchSize, type Calibration } from './calibration';
import type { ClipMethod } from './clip-range';
import { buildFakeQuantModel, type FakeQuantLayer } from './fake-quant';
import { kmeansQuantize } from './kmeans';
import { activationQuant, quantizeWeightsLinear, type ActivationQuant } from './linear';
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
  /** Samples per run (a model with a fixed batch dim uses that instead). */
  batchSize?: number;
  threads?: number;
  /** Also output every layer's activation input and integer codes (tests). */
  debugOutputs?: boolean;
  /** Milliseconds clock for EvaluationResult.seconds (default performance.now). */
  clockMs?: () => number;
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
}

export interface QuantEvaluator {
  readonly table: LayerTable;
  readonly layers: readonly FakeQuantLayer[];
  /** Top-1/top-5 of the policy on the data (fidelity against the FP32 model without labels). */
  evaluate(policy: Policy | { layers: LayerBits[] }, split: Split, options?: SplitOptions): Promise<EvaluationResult>;
  /** The same numbers for the unquantized model (same session, quantizers bypassed). */
  evaluateFp32(split: Split, options?: SplitOptions): Promise<EvaluationResult>;
  /** Logits and top-1 predictions of a policy (null: FP32) on a split. */
  predict(policy: Policy | { layers: LayerBits[] } | null, split: Split, options?: SplitOptions): Promise<Evaluation>;
  /** The session feeds for a policy (weights and quantizer scalars): the policy switch. */
  policyFeeds(policy: Policy | { layers: LayerBits[] } | null): Record<string, Tensor>;
  /** Runs one batch; returns the named outputs (default: the model's outputs). */
  run(policy: Policy | { layers: LayerBits[] } | null, inputs: FloatTensor, outputNames?: string[]): Promise<Record<string, FloatTensor>>;
  /** The activation quantizer a layer gets at `bits` (from the calibration). */
  activationParams(layerIndex: number, bits: number): ActivationQuant;
  /** The quantized weights of a layer at `bits` (cached). */
  quantizedWeights(layerIndex: number, bits: number): Float32Array;
  close(): Promise<void>;
}

const scalar = (v: number): Tensor => ({ data: Float32Array.of(v), dims: [] });

/** Divisor and scale of a float (unquantized) activation: see fake-quant.ts. */
export const floatPassDivisor = 2 ** -64;

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

export async function prepareQuantEvaluator(
  modelBytes: Uint8Array,
  table: LayerTable,
  calibration: Calibration | null,
  options: QuantEvaluatorOptions = {},
): Promise<QuantEvaluator> {
  const { weightMode = 'linear', perChannel = true, clipMethod = 'mse', seed = 0, clockMs = () => performance.now() } = options;
  if (calibration) checkCalibration(calibration, table);
  const model = decodeModel(modelBytes);
  const declared = modelInput(model).dims;
  const batchSize = modelBatchSize(declared, options.batchSize ?? 64);
  const fq = buildFakeQuantModel(model, table, { debugOutputs: options.debugOutputs });
  const session = await ModelSession.create(fq.bytes, { threads: options.threads, what: 'fake-quantized model' });
  const logitsName = fq.outputNames[0];

  const weightCache = new Map<string, Float32Array>();
  const quantizedWeights = (i: number, bits: number): Float32Array => {
    const key = `${i}:${bits}`;
    let w = weightCache.get(key);
    if (!w) {
      const l = fq.layers[i];
      w =
        weightMode === 'kmeans'
          ? kmeansQuantize(l.weight, bits, new Rng(deriveSeed(seed, 'kmeans', l.name, bits))).values
          : quantizeWeightsLinear(l.weight, l.weightDims, bits, { perChannel, axis: l.channelAxis }).values;
      weightCache.set(key, w);
    }
    return w;
  };
  const activationParams = (i: number, bits: number): ActivationQuant => {
    if (!calibration) throw new InvalidInputError(`layer ${fq.layers[i].name}: activation bits ${bits} need a calibration; calibrate first or use aBits null`);
    const c = calibration.layers[i];
    return activationQuant(c.clip[clipMethod][bits - 1], bits, c.signed);
  };
  const policyFeeds = (policy: Policy | { layers: LayerBits[] } | null): Record<string, Tensor> => {
    const bits = policy ? validatePolicy(policy, table).layers : null;
    const feeds: Record<string, Tensor> = {};
    fq.layers.forEach((l, i) => {
      const b = bits?.[i];
      feeds[l.weightInput] = { data: b ? quantizedWeights(i, b.wBits) : l.weight, dims: l.weightDims };
      const a = b && b.aBits !== null ? activationParams(i, b.aBits) : null;
      // aBits null: the exact pass-through of fake-quant.ts (divide and multiply by 2^-64, no clipping).
      feeds[l.divisorInput] = scalar(a ? a.divisor : floatPassDivisor);
      feeds[l.qminInput] = scalar(a ? a.qmin : -Infinity);
      feeds[l.qmaxInput] = scalar(a ? a.qmax : Infinity);
      feeds[l.scaleInput] = scalar(a ? a.scale : floatPassDivisor);
    });
    return feeds;
  };

  const runFeeds = async (feeds: Record<string, Tensor>, inputs: FloatTensor, outputNames: string[]) =>
    session.run({ ...feeds, [fq.inputName]: inputs }, outputNames);

  // FP32 top-1 per split: the reference of fidelity mode (splits without labels).
  const fp32Reference = new WeakMap<Split, Int32Array>();
  const predict = async (policy: Policy | { layers: LayerBits[] } | null, split: Split, { limit }: SplitOptions = {}): Promise<Evaluation> => {
    const feeds = policyFeeds(policy);
    const base = { modelDims: declared, inputName: fq.inputName, outputName: logitsName, batchSize, limit, extraFeeds: feeds, nowMs: clockMs };
    if (split.labels) return evaluateSession(session, split, base);
    let reference = fp32Reference.get(split);
    if (!reference || reference.length < Math.min(split.samples, limit ?? split.samples)) {
      const fp32 = policy ? policyFeeds(null) : feeds;
      const p = await predictSplit(session, split, { ...base, extraFeeds: fp32 });
      reference = top1Predictions(p.logits, p.classes);
      fp32Reference.set(split, reference);
    }
    return evaluateSession(session, split, { ...base, reference });
  };

  return {
    table,
    layers: fq.layers,
    evaluate: async (policy, split, options) => (await predict(policy, split, options)).result,
    evaluateFp32: async (split, options) => (await predict(null, split, options)).result,
    predict,
    policyFeeds,
    run: (policy, inputs, outputNames = fq.outputNames) => runFeeds(policyFeeds(policy), inputs, outputNames),
    activationParams,
    quantizedWeights,
    close: () => session.release(),
  };
}
