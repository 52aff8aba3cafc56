/**
 * Linear (uniform) quantization, the reward's default scheme (DESIGN.md "The algorithm").
 *
 * Weights: symmetric, per output channel by default (per tensor as an option, as in HAQ).
 *   b >= 2 bits: codes q in [-(2^(b-1)-1), 2^(b-1)-1] (narrow range, so +x and -x quantize
 *   alike), scale = max|w| / (2^(b-1)-1), w_q = q * scale.
 *   b = 1 bit: sign times scale, scale = mean|w| (the L2-optimal binary scale, XNOR-Net,
 *   Rastegari et al. 2016), codes in {-1, +1} (w = 0 counts as +1).
 * Activations (each quantizable layer's input), per tensor, with a calibrated clip value alpha:
 *   unsigned (the calibration set never saw a negative value): q in [0, 2^b - 1],
 *   scale = alpha / (2^b - 1);
 *   signed, b >= 2: q in [-(2^(b-1)-1), 2^(b-1)-1], scale = alpha / (2^(b-1)-1);
 *   signed, b = 1: sign(x) * alpha: q = clip(round(x / 2^-100), -1, 1), value = q * alpha
 *   (the levels are -alpha and +alpha; only |x| < 2^-101, i.e. x = 0, gives 0).
 * Every activation quantizer is therefore value = clip(round(x / divisor), qmin, qmax) * scale,
 * with divisor = scale except for signed 1 bit, computed in float32 with round-half-to-even: four
 * ONNX ops (Div, Round, Clip, Mul). The fake-quant graph (shared/quant/fake-quant.ts) runs
 * exactly these operations, so its integer codes match `activationCodes` bit for bit.
 */
import { InvalidInputError } from '../errors';

/** Round half to even, as ONNX Round and numpy.round do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // rounds .5 up
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Divisor that turns round() into sign() for signed 1-bit activations (x / 2^-100 is +-1 or more unless x ~ 0). */
export const signDivisor = 2 ** -100;

/** Smallest activation scale: a layer whose calibrated range is 0 maps everything to ~0 instead of dividing by 0. */
export const minActivationScale = 2 ** -100;

export function assertBits(bits: number, what = 'bits'): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new InvalidInputError(`${what} must be an integer in 1..8, got ${bits}`);
  }
}

/** Largest weight code for b bits (symmetric, narrow range); 1 for b = 1 (sign). */
export function weightQmax(bits: number): number {
  return bits === 1 ? 1 : 2 ** (bits - 1) - 1;
}

export interface WeightQuantOptions {
  /** Per output channel (default) or one scale for the whole tensor. */
  perChannel?: boolean;
  /** The output-channel axis of `shape` (0 for Conv, 1 for a MatMul/Gemm weight [K, N]). */
  axis?: number;
}

export interface LinearWeights {
  bits: number;
  shape: number[];
  /** Output-channel axis, or null when per tensor. */
  axis: number | null;
  /** Integer codes, one per weight. */
  codes: Int8Array;
  /** One scale per output channel (length shape[axis]), or length 1 per tensor. */
  scales: Float32Array;
  /** The dequantized weights codes * scale, in float32. */
  values: Float32Array;
}

/** Bytes a layer's linear weights hold in memory (codes, scales, values, and a bias correction if any). */
export function linearWeightsBytes(w: LinearWeights & { biasDelta?: Float32Array | null }): number {
  return w.codes.byteLength + w.scales.byteLength + w.values.byteLength + (w.biasDelta?.byteLength ?? 0);
}

/** Quantizes a weight tensor symmetrically (see the module comment). Returns new arrays. */
export function quantizeWeightsLinear(
  weights: Float32Array,
  shape: readonly number[],
  bits: number,
  { perChannel = true, axis = 0 }: WeightQuantOptions = {},
): LinearWeights {
  assertBits(bits, 'weight bits');
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== weights.length) {
    throw new InvalidInputError(`weight shape [${shape.join(', ')}] holds ${size} values, got ${weights.length}`);
  }
  if (perChannel && (axis < 0 || axis >= shape.length)) {
    throw new InvalidInputError(`output-channel axis ${axis} is outside the weight shape [${shape.join(', ')}]`);
  }
  const channels = perChannel ? shape[axis] : 1;
  const inner = perChannel ? shape.slice(axis + 1).reduce((a, b) => a * b, 1) : 1;
  const channelOf = perChannel ? (i: number) => Math.floor(i / inner) % channels : () => 0;

  // Per-channel statistic: max|w| (b >= 2) or mean|w| (b = 1).
  const stat = new Float64Array(channels);
  const count = new Float64Array(channels);
  for (let i = 0; i < weights.length; i++) {
    const c = channelOf(i);
    const a = Math.abs(weights[i]);
    if (bits === 1) stat[c] += a;
    else if (a > stat[c]) stat[c] = a;
    count[c] += 1;
  }
  const qmax = weightQmax(bits);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scales[c] = bits === 1 ? (count[c] > 0 ? stat[c] / count[c] : 0) : stat[c] / qmax;
    // An all-zero channel has codes 0 at any scale; 1 keeps its bias representable (accumulatorBias).
    if (scales[c] === 0) scales[c] = 1;
  }

  const codes = new Int8Array(weights.length);
  const values = new Float32Array(weights.length);
  for (let i = 0; i < weights.length; i++) {
    const s = scales[channelOf(i)];
    let q: number;
    if (bits === 1) q = weights[i] >= 0 ? 1 : -1;
    else q = Math.max(-qmax, Math.min(qmax, roundHalfEven(Math.fround(weights[i] / s))));
    codes[i] = q;
    values[i] = codes[i] * s; // the Int8 code, so -0 becomes 0
  }
  return { bits, shape: [...shape], axis: perChannel ? axis : null, codes, scales, values };
}

/** The runtime parameters of one activation quantizer (the fake-quant graph's inputs for a layer). */
export interface ActivationQuant {
  bits: number;
  signed: boolean;
  /** The calibrated clip value alpha (the largest magnitude represented). */
  clip: number;
  /** The value of one code step (what codes are multiplied by). */
  scale: number;
  /** What x is divided by before rounding: scale, or 2^-100 for signed 1 bit (a sign function). */
  divisor: number;
  qmin: number;
  qmax: number;
}

/** Quantizer parameters for a clip value alpha at b bits (see the module comment). */
export function activationQuant(clip: number, bits: number, signed: boolean): ActivationQuant {
  assertBits(bits, 'activation bits');
  if (!(clip >= 0) || !Number.isFinite(clip)) {
    throw new InvalidInputError(`activation clip value must be finite and >= 0, got ${clip}`);
  }
  let scale: number;
  let qmin: number;
  let qmax: number;
  if (!signed) {
    qmin = 0;
    qmax = 2 ** bits - 1;
    scale = clip / qmax;
  } else if (bits === 1) {
    qmin = -1;
    qmax = 1;
    scale = clip;
  } else {
    qmax = 2 ** (bits - 1) - 1;
    qmin = -qmax;
    scale = clip / qmax;
  }
  scale = Math.fround(scale);
  if (!(scale > 0)) scale = minActivationScale;
  const divisor = signed && bits === 1 ? signDivisor : scale;
  return { bits, signed, clip, scale, divisor, qmin, qmax };
}

/** Integer codes of an activation tensor, computed in float32 exactly as the fake-quant graph does. */
export function activationCodes(x: Float32Array, p: ActivationQuant): Int32Array {
  const out = new Int32Array(x.length);
  const d = Math.fround(p.divisor);
  for (let i = 0; i < x.length; i++) {
    const t = Math.fround(x[i] / d);
    out[i] = Math.max(p.qmin, Math.min(p.qmax, roundHalfEven(t)));
  }
  return out;
}

/** Dequantized (fake-quantized) activations, float32 exactly as the graph computes them. */
export function fakeQuantizeActivation(x: Float32Array, p: ActivationQuant): Float32Array {
  const codes = activationCodes(x, p);
  const out = new Float32Array(x.length);
  const s = Math.fround(p.scale);
  for (let i = 0; i < x.length; i++) out[i] = codes[i] * s;
  return out;
}

/** The int32 range an accumulator bias is clamped to. */
const int32Min = -(2 ** 31);
const int32Max = 2 ** 31 - 1;

export interface AccumulatorBias {
  /** int32 codes per output channel. */
  codes: Int32Array;
  /** Their scale per output channel (or one, per-tensor weights): activation scale x weight scale, in float32. */
  scales: Float32Array;
  /** codes x scales in float32: the bias the layer adds. */
  values: Float32Array;
}

/**
 * A bias as an integer kernel holds it: in the int32 accumulator of codes x codes, whose unit is
 * s_a x s_w[c] (QLinearConv's and QGemm's bias; onnxruntime's graph optimizer rewrites a float
 * bias of a QDQ Conv/Gemm into this form too). codes = round_half_even(b / (s_a x s_w)), all in
 * float32 as onnxruntime's Mul, Div and Round compute them. `weightScales` has one scale per
 * output channel or one for the whole tensor.
 */
export function accumulatorBias(bias: Float32Array, activationScale: number, weightScales: Float32Array): AccumulatorBias {
  const n = bias.length;
  const scales = new Float32Array(weightScales.length);
  for (let c = 0; c < scales.length; c++) scales[c] = Math.fround(activationScale) * weightScales[c];
  const codes = new Int32Array(n);
  const values = new Float32Array(n);
  for (let c = 0; c < n; c++) {
    const s = scales[scales.length === 1 ? 0 : c];
    const q = s > 0 ? roundHalfEven(Math.fround(bias[c] / s)) : 0;
    codes[c] = Math.max(int32Min, Math.min(int32Max, q));
    values[c] = Math.fround(codes[c]) * s;
  }
  return { codes, scales, values };
}
