/**
 * Layer-wise weight reconstruction without training: GPTQ (Frantar, Ashkboos, Hoefler and
 * Alistarh, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained Transformers",
 * ICLR 2023), the one-shot form of Optimal Brain Quantization.
 *
 * One layer computes y = W x with W [rows x cols] (a row is an output channel, a column one input
 * of its dot product: an input channel, or (channel, ky, kx) of a convolution patch). Over the
 * calibration inputs x the layer's output error after quantizing W to Q is
 *     sum_x ||(W - Q) x||^2 = sum_rows (w - q) H (w - q)^T,   H = sum_x x x^T,
 * so each row is an independent quadratic problem in H. Rounding to nearest ignores H; GPTQ
 * quantizes the columns one at a time and moves each column's rounding error onto the columns
 * not yet quantized, in the direction that H says cancels it best:
 *     e = (w_i - q_i) / U_ii,   w_j -= e * U_ij  for j > i,
 * where U is the upper-triangular factor of H^-1 = U^T U. The scale of each row is fixed
 * beforehand (the quantizer of shared/quant/linear.ts: symmetric, narrow range); GPTQ only
 * chooses the integer codes.
 *
 * Choices, as in the paper's reference code: damping lambda = 1% of the mean diagonal of H is
 * added to the diagonal (H is often singular: dead inputs, few samples); columns are processed in
 * decreasing order of H_ii ("act order"); an input that is always zero (H_ii = 0) is rounded to
 * nearest and passes no error on. Beyond the paper: every row keeps whichever of the GPTQ codes
 * and the round-to-nearest codes gives the smaller error (w - q) H (w - q)^T on the undamped H,
 * so reconstruction never does worse than rounding on the calibration data.
 *
 * Wide layers: H^-1 costs cols^3 operations, so columns are split into consecutive blocks of at
 * most `maxBlock` and each block is reconstructed with its own diagonal block of H (cross-block
 * correlations are ignored, and the per-row comparison above uses the same blocks).
 *
 * Pure numerics in float64 (Float64Array); no allocation per column.
 */
import { InvalidInputError } from '../errors';
import { roundHalfEven, weightQmax } from './linear';

export interface GptqOptions {
  /** Damping added to H's diagonal, as a fraction of its mean diagonal (default 0.01). */
  dampRatio?: number;
  /** Process columns in decreasing H_ii (default true). */
  actOrder?: boolean;
  /** Largest block of columns reconstructed together (default 256). */
  maxBlock?: number;
  /** Columns per indivisible unit when splitting into blocks (e.g. kh*kw of a convolution; default 1). */
  blockUnit?: number;
}

/** The code of w for a row scale s at b bits: round to nearest (b >= 2) or the sign (b = 1). */
export function weightCode(w: number, scale: number, bits: number): number {
  return codeOf(w, scale, weightQmax(bits), bits === 1);
}

/** weightCode with qmax precomputed (the inner loops call it per weight). */
export function codeOf(w: number, scale: number, qmax: number, sign: boolean): number {
  if (sign) return w >= 0 ? 1 : -1;
  if (scale === 0) return 0;
  const q = roundHalfEven(Math.fround(w / scale));
  return q > qmax ? qmax : q < -qmax ? -qmax : q;
}

/**
 * Cholesky factor in place: the lower triangle of `a` (n x n, row-major, symmetric positive
 * definite) becomes L with a = L L^T; the strict upper triangle is zeroed. Returns false (a left
 * partly factored) when a pivot is not positive.
 */
export function choleskyInPlace(a: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j];
      for (let k = 0; k < j; k++) s -= a[ri + k] * a[rj + k];
      if (j < i) a[ri + j] = s / a[rj + j];
      else if (s > 0) a[ri + i] = Math.sqrt(s);
      else return false;
    }
    for (let j = i + 1; j < n; j++) a[ri + j] = 0;
  }
  return true;
}

/** Inverse of a lower-triangular matrix in place (row-major, n x n, non-zero diagonal). */
export function invertLowerInPlace(l: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const d = 1 / l[ri + i];
    // Row i of L^-1: x_ij = -(sum_{k=j}^{i-1} l_ik x_kj) / l_ii for j < i, using rows already inverted.
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s += l[ri + k] * l[k * n + j];
      l[ri + j] = -s * d;
    }
    l[ri + i] = d;
  }
}

/**
 * U upper triangular with H^-1 = U^T U, for H symmetric positive definite (n x n). Computed
 * without forming H^-1: with J the reversal permutation, J H J = L L^T gives H = A A^T for the
 * upper-triangular A = J L J, hence H^-1 = A^-T A^-1 and U = A^-1 = J L^-1 J. One Cholesky and
 * one triangular inverse (2n^3/3 multiply-adds). Returns null when H is not positive definite.
 */
export function inverseUpperFactor(h: Float64Array, n: number): Float64Array | null {
  const r = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  if (!choleskyInPlace(r, n)) return null;
  invertLowerInPlace(r, n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = r[(n - 1 - i) * n + (n - 1 - j)];
  return u;
}

/** a H b^T for a symmetric H [n x n] and rows a, b [n]; terms where a is zero are skipped. */
export function bilinearForm(a: Float64Array, h: Float64Array, b: Float64Array, n: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const ai = a[i];
    if (ai === 0) continue;
    const ri = i * n;
    let s = 0;
    for (let j = 0; j < n; j++) s += h[ri + j] * b[j];
    total += ai * s;
  }
  return total;
}

/** (w - q) H (w - q)^T for one row: d [cols] the difference, h [cols x cols]. */
export function quadraticForm(d: Float64Array, h: Float64Array, cols: number): number {
  return bilinearForm(d, h, d, cols);
}

/** Consecutive column blocks [start, end) of at most maxBlock columns, cut at multiples of unit. */
export function columnBlocks(cols: number, maxBlock: number, unit = 1): Array<[number, number]> {
  const step = Math.max(unit, Math.floor(maxBlock / unit) * unit);
  const out: Array<[number, number]> = [];
  for (let s = 0; s < cols; s += step) out.push([s, Math.min(cols, s + step)]);
  return out;
}

/** The part of GPTQ that depends on H only, shared by every bitwidth of a layer. */
export interface GptqFactors {
  cols: number;
  blocks: Array<{
    start: number;
    end: number;
    /** Processing order within the block (act order), as block-local column indices. */
    order: number[];
    /** The undamped block of H in block column order, for the errors. */
    h: Float64Array;
    /** U with (damped, permuted block of H)^-1 = U^T U. */
    u: Float64Array;
  }>;
}

/** Splits H [cols x cols] into blocks, orders, damps and factors them (2 n^3 / 3 per block of n). */
export function gptqFactors(h: Float64Array, cols: number, options: GptqOptions = {}): GptqFactors {
  const { dampRatio = 0.01, actOrder = true, maxBlock = 256, blockUnit = 1 } = options;
  if (h.length !== cols * cols) throw new InvalidInputError(`gptq: H has ${h.length} values, want ${cols}^2`);
  const blocks = columnBlocks(cols, maxBlock, blockUnit).map(([start, end]) => {
    const n = end - start;
    const hb = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) hb[i * n + j] = h[(start + i) * cols + start + j];
    const order = Array.from({ length: n }, (_, i) => i);
    if (actOrder) order.sort((a, b) => hb[b * n + b] - hb[a * n + a] || a - b);
    // H permuted into processing order, dead inputs (H_ii = 0) decoupled, damped.
    const hp = new Float64Array(n * n);
    let meanDiag = 0;
    for (let i = 0; i < n; i++) meanDiag += hb[i * n + i];
    meanDiag /= n;
    const damp = dampRatio * (meanDiag > 0 ? meanDiag : 1);
    for (let i = 0; i < n; i++) {
      const oi = order[i];
      const dead = !(hb[oi * n + oi] > 0);
      for (let j = 0; j < n; j++) {
        const oj = order[j];
        hp[i * n + j] = dead || !(hb[oj * n + oj] > 0) ? 0 : hb[oi * n + oj];
      }
      hp[i * n + i] = (dead ? 1 : hb[oi * n + oi]) + damp;
    }
    const u = inverseUpperFactor(hp, n);
    if (!u) throw new InvalidInputError(`gptq: the damped Hessian block [${start}, ${end}) is not positive definite`);
    return { start, end, order, h: hb, u };
  });
  return { cols, blocks };
}

export interface GptqLayerResult {
  /** Integer codes [rows x cols], row-major. */
  codes: Int8Array;
  /** (row, column block) pairs that kept the round-to-nearest codes because GPTQ's were not better. */
  blocksRounded: number;
  /** Sum over rows of (w - q) H (w - q)^T with the chosen codes, and with round to nearest (same blocks of H); 0 without `compare`. */
  error: number;
  errorRounded: number;
}

/**
 * GPTQ codes for W [rows x cols] (row-major float32) with per-row scales at `bits`, given the
 * factors of the input Gram matrix H = sum x x^T (gptqFactors; or H itself, factored here).
 * `compare: false` skips the per-row comparison with round to nearest (the caller makes its own).
 */
export function gptqCodes(
  w: Float32Array,
  rows: number,
  cols: number,
  factors: GptqFactors | Float64Array,
  scales: Float32Array,
  bits: number,
  options: GptqOptions & { compare?: boolean } = {},
): GptqLayerResult {
  const { compare = true } = options;
  const f = factors instanceof Float64Array ? gptqFactors(factors, cols, options) : factors;
  if (w.length !== rows * cols || f.cols !== cols || scales.length !== rows) {
    throw new InvalidInputError(`gptq: weights ${w.length} (want ${rows}x${cols}), H for ${f.cols} columns, scales ${scales.length} (want ${rows})`);
  }
  const qmax = weightQmax(bits);
  const sign = bits === 1;
  const codes = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) codes[r * cols + c] = codeOf(w[r * cols + c], scales[r], qmax, sign);
  let error = 0;
  let errorRounded = 0;
  let blocksRounded = 0;
  const gptqRow = new Int8Array(cols);
  for (const { start, end, order, h: hb, u } of f.blocks) {
    const n = end - start;
    const wr = new Float64Array(n);
    const dGptq = new Float64Array(n);
    const dRound = new Float64Array(n);
    for (let r = 0; r < rows; r++) {
      const s = scales[r];
      const base = r * cols + start;
      for (let i = 0; i < n; i++) wr[i] = w[base + order[i]];
      for (let i = 0; i < n; i++) {
        const q = codeOf(wr[i], s, qmax, sign);
        gptqRow[i] = q;
        const err = (wr[i] - q * s) / u[i * n + i];
        if (err === 0) continue;
        const ui = i * n;
        for (let j = i + 1; j < n; j++) wr[j] -= err * u[ui + j];
      }
      if (!compare) {
        for (let i = 0; i < n; i++) codes[base + order[i]] = gptqRow[i];
        continue;
      }
      // Errors on the undamped block, in the block's own column order.
      for (let i = 0; i < n; i++) {
        const oi = order[i];
        const orig = w[base + oi];
        dGptq[oi] = orig - gptqRow[i] * s;
        dRound[oi] = orig - codes[base + oi] * s;
      }
      const eg = quadraticForm(dGptq, hb, n);
      const er = quadraticForm(dRound, hb, n);
      errorRounded += er;
      if (eg < er) {
        for (let i = 0; i < n; i++) codes[base + order[i]] = gptqRow[i];
        error += eg;
      } else {
        error += er;
        blocksRounded++;
      }
    }
  }
  return { codes, blocksRounded, error, errorRounded };
}
