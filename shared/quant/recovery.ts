/**
 * Accuracy recovery without training, per (layer, weight bitwidth): computed once from the
 * calibration samples and reused by every policy of a search, since it depends on the layer, its
 * bitwidth and the data but not on the rest of the policy.
 *
 *   'none'  round to nearest (shared/quant/linear.ts quantizeWeightsLinear);
 *   'bias'  empirical bias correction (Nagel et al., "Data-Free Quantization Through Weight
 *           Equalization and Bias Correction", ICCV 2019, with the input mean measured on the
 *           calibration data): quantizing W to Q shifts the mean output of channel c by
 *           sum_j (W - Q)_cj E[x_j]; adding that to the bias makes the mean shift zero;
 *   'full'  (default) GPTQ weight reconstruction (shared/quant/gptq.ts) on H = sum x x^T of the
 *           layer's inputs, then bias correction. (GPTQ on the covariance instead, the error left
 *           once the bias absorbs the mean, measured worse: fmnist-mobilenet w3a8 79.3 % against
 *           86.1 % on the test split; see docs/quantization.md.)
 *
 * The scales are those of round to nearest (symmetric, per output channel or per tensor); only
 * the integer codes and the bias change, so the exported model has the same form. The layer
 * inputs are the FP32 model's (layer-stats.ts); the target is the FP32 layer output.
 *
 * The results are QuantizedLayer objects, stored per (layer, bits) in the work store by Prepare
 * under the model's and the calibration samples' hashes (recoveryKeys: every search of the same
 * model and data shares them) and read back by Evaluate and Finalize; `haq eval` and `haq export`
 * recompute them from the same calibration samples.
 */
import { CorruptObjectError, InvalidInputError } from '../errors';
import { decodeModel } from '../onnx/proto';
import type { FloatTensor } from '../onnx/runtime';
import type { LayerTable } from '../onnx/types';
import { z } from 'zod';
import { boundedMemo } from '../bounded-memo';
import { cacheKeys } from '../keys';
import { getJson, putJson, type ObjectStore } from '../store/object-store';
import type { QuantizedLayer, RecoverySource } from './evaluator';
import { quantizableWeights, type LayerWeights } from './fake-quant';
import { bilinearForm, codeOf, gptqCodes, gptqFactors, type GptqFactors, type GptqOptions } from './gptq';
import { layerStatistics, type LayerStats } from './layer-stats';
import { linearWeightsBytes, quantizeWeightsLinear, weightQmax } from './linear';
import type { LayerBits, RecoveryMode } from './policy';

export interface RecoveryOptions {
  mode: RecoveryMode;
  /** Weight bitwidths to compute for every layer (default 1..8). */
  bits?: readonly number[];
  /** Per layer (table order), the bitwidths to compute instead of `bits` (a policy's wBits: eval, export); an empty list skips the layer. */
  layerBits?: ReadonlyArray<readonly number[]>;
  perChannel?: boolean;
  gptq?: GptqOptions;
  /** 'full': choose each row's scale too (max|w| / qmax shrunk by up to half, on the diagonal of H; default true). */
  searchScales?: boolean;
  /** Also measure each layer's output error before and after (costs rows x cols^2 per layer and bits). */
  reports?: boolean;
  /** Samples per onnxruntime run of the statistics pass (default: within calibration.ts PASS_MEMORY_BYTES, at most 64). */
  batchSize?: number;
  threads?: number;
  /**
   * Receives each layer's results (per bitwidth) as soon as they are computed; the result then
   * keeps none of them (`layers` stays empty), and each layer's statistics are dropped once used:
   * Prepare streams them to the store instead of holding every layer at every bitwidth.
   */
  onLayer?: (index: number, perBits: QuantizedLayer[]) => Promise<void>;
}

/** How much one layer's output error on the calibration data changed, per input vector. */
export interface LayerRecoveryReport {
  name: string;
  bits: number;
  /** Mean over input vectors of ||(W - Q) x||^2 (+ the bias correction when applied), rounding to nearest and recovered (full H, no blocks). */
  errorRounded: number;
  errorRecovered: number;
  /** Rows (output channels) where the recovered codes were not better and rounding to nearest was kept. */
  rowsRounded: number;
}

export interface RecoveryResult {
  mode: RecoveryMode;
  /** The bitwidths computed (with `layerBits`, each for the layers that listed it). */
  bits: number[];
  /** layers[i][bits] (sparse: only the computed bitwidths); empty with `onLayer`. */
  layers: QuantizedLayer[][];
  reports: LayerRecoveryReport[];
  /** Milliseconds in the statistics pass and in the per-layer reconstruction. */
  statsMs: number;
  solveMs: number;
}

/** A layer's weights as a [rows x cols] matrix per group (rows = output channels), and back. */
interface WeightMatrix {
  groups: number;
  rows: number;
  cols: number;
  /** Row-major [groups * rows * cols] in the layer's weight order when `transposed` is false. */
  data: Float32Array;
  /** Gemm with transB = 0 and MatMul hold W as [K, N]: data is its transpose. */
  transposed: boolean;
}

function weightMatrix(l: LayerWeights, groups: number): WeightMatrix {
  const dims = l.weightDims;
  if (l.candidate.op === 'Conv') {
    const cols = dims[1] * dims[2] * dims[3];
    return { groups, rows: dims[0] / groups, cols, data: l.weight, transposed: false };
  }
  if (l.channelAxis === 0) return { groups: 1, rows: dims[0], cols: dims[1], data: l.weight, transposed: false };
  const [k, n] = dims;
  const t = new Float32Array(k * n);
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) t[j * k + i] = l.weight[i * n + j];
  return { groups: 1, rows: n, cols: k, data: t, transposed: true };
}

/** Codes in matrix order back to the weight's own layout. */
function codesToWeightLayout(m: WeightMatrix, codes: Int8Array): Int8Array {
  if (!m.transposed) return codes;
  const out = new Int8Array(codes.length);
  const [n, k] = [m.rows, m.cols];
  for (let j = 0; j < n; j++) for (let i = 0; i < k; i++) out[i * n + j] = codes[j * k + i];
  return out;
}

/** Mean over vectors of sum_rows d H d^T for D = W - Q given per group (gram or covariance, / count). */
function outputError(m: WeightMatrix, deltas: Float64Array, h: Float64Array, count: number): number {
  let total = 0;
  const { rows, cols } = m;
  for (let g = 0; g < m.groups; g++) {
    const hg = h.subarray(g * cols * cols, (g + 1) * cols * cols);
    for (let r = 0; r < rows; r++) {
      const d = deltas.subarray((g * rows + r) * cols, (g * rows + r + 1) * cols);
      for (let i = 0; i < cols; i++) {
        if (d[i] === 0) continue;
        let s = 0;
        for (let j = 0; j < cols; j++) s += hg[i * cols + j] * d[j];
        total += d[i] * s;
      }
    }
  }
  return count > 0 ? total / count : 0;
}

/** Gram matrices centred on the mean: sum (x - m)(x - m)^T = sum x x^T - n m m^T. */
export function covariance(stats: LayerStats): Float64Array {
  const { groups, cols, count } = stats;
  const c = Float64Array.from(stats.gram);
  if (count === 0) return c;
  for (let g = 0; g < groups; g++) {
    const s = stats.sum.subarray(g * cols, (g + 1) * cols);
    const base = g * cols * cols;
    for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) c[base + i * cols + j] -= (s[i] * s[j]) / count;
  }
  return c;
}

/**
 * One layer at one bitwidth: round-to-nearest codes, GPTQ codes ('full'), and the bias
 * correction ('bias', 'full') when the layer has a bias slot.
 */
export function recoverLayer(
  l: LayerWeights,
  stats: LayerStats,
  bits: number,
  mode: RecoveryMode,
  options: { perChannel?: boolean; gptq?: GptqOptions; factors?: GptqFactors[]; report?: boolean; searchScales?: boolean } = {},
): { layer: QuantizedLayer; report: LayerRecoveryReport | null } {
  const { perChannel = true } = options;
  const rounded = quantizeWeightsLinear(l.weight, l.weightDims, bits, { perChannel, axis: l.channelAxis });
  const m = weightMatrix(l, stats.groups);
  if (m.cols !== stats.cols || m.groups * m.rows * m.cols !== l.weight.length) {
    throw new InvalidInputError(`layer ${stats.name}: the statistics have ${stats.groups} groups of ${stats.cols} inputs but the weight is [${l.weightDims.join(', ')}]`);
  }
  const scales = mode === 'full' && options.searchScales !== false && perChannel && bits >= 2 ? searchRowScales(m, stats, rounded.scales, bits) : rounded.scales;
  const rowScale = (row: number) => scales[perChannel ? row : 0];
  const roundedMatrix = m.transposed ? transposeCodes(rounded.codes, m) : rounded.codes;
  let codes = roundedMatrix;
  let rowsRounded = 0;
  if (mode === 'full') {
    codes = new Int8Array(roundedMatrix.length);
    for (let g = 0; g < m.groups; g++) {
      const rows = m.rows;
      const groupScales = Float32Array.from({ length: rows }, (_, r) => rowScale(g * rows + r));
      const w = m.data.subarray(g * rows * m.cols, (g + 1) * rows * m.cols);
      const factors = options.factors?.[g] ?? gptqFactors(stats.gram.subarray(g * m.cols * m.cols, (g + 1) * m.cols * m.cols), m.cols, { blockUnit: stats.unit, ...options.gptq });
      const res = gptqCodes(w, rows, m.cols, factors, groupScales, bits, { compare: false });
      // A row whose searched scale and codes are not better than plain rounding (on the same blocks of H) keeps rounding.
      for (let r = 0; r < rows; r++) {
        const row = g * rows + r;
        const better = recoveredNotWorse(
          factors,
          w.subarray(r * m.cols, (r + 1) * m.cols),
          res.codes.subarray(r * m.cols, (r + 1) * m.cols),
          groupScales[r],
          roundedMatrix.subarray(row * m.cols, (row + 1) * m.cols),
          rounded.scales[row],
        );
        if (better) codes.set(res.codes.subarray(r * m.cols, (r + 1) * m.cols), row * m.cols);
        else {
          rowsRounded++;
          codes.set(roundedMatrix.subarray(row * m.cols, (row + 1) * m.cols), row * m.cols);
          if (scales !== rounded.scales) scales[row] = rounded.scales[row];
        }
      }
    }
  }
  // W - Q per row, in float64, for the bias correction and the error report.
  const deltas = new Float64Array(codes.length);
  const roundedDeltas = new Float64Array(codes.length);
  for (let row = 0; row < m.groups * m.rows; row++) {
    const s = rowScale(row);
    for (let j = 0; j < m.cols; j++) {
      const k = row * m.cols + j;
      const q = Math.fround(codes[k] * s);
      deltas[k] = m.data[k] - q;
      roundedDeltas[k] = m.data[k] - Math.fround(roundedMatrix[k] * s);
    }
  }
  let biasDelta: Float32Array | null = null;
  if (mode !== 'none' && l.bias && stats.count > 0) {
    biasDelta = new Float32Array(m.groups * m.rows);
    for (let g = 0; g < m.groups; g++) {
      const mean = stats.sum.subarray(g * m.cols, (g + 1) * m.cols);
      for (let r = 0; r < m.rows; r++) {
        const row = g * m.rows + r;
        let shift = 0;
        for (let j = 0; j < m.cols; j++) shift += deltas[row * m.cols + j] * mean[j];
        biasDelta[row] = shift / stats.count;
      }
    }
  }
  const codesOut = codesToWeightLayout(m, codes);
  const values = new Float32Array(codesOut.length);
  for (let k = 0; k < codesOut.length; k++) {
    const row = m.transposed ? k % m.rows : Math.floor(k / m.cols);
    values[k] = codesOut[k] * rowScale(row);
  }
  const report: LayerRecoveryReport | null = options.report
    ? {
        name: stats.name,
        bits,
        errorRounded: outputError(m, roundedDeltas, stats.gram, stats.count),
        // With the bias corrected, the mean part of the error is gone: what is left is on the covariance.
        errorRecovered: outputError(m, deltas, biasDelta ? covariance(stats) : stats.gram, stats.count),
        rowsRounded,
      }
    : null;
  return { layer: { ...rounded, scales, codes: codesOut, values, biasDelta }, report };
}

/**
 * Whether one row's recovered codes (at scale s1) have at most the error of plain rounding (codes2
 * at s2) on the blocks of H: with d1, d2 the two differences w - q, E1 - E2 = (d1 - d2) H (d1 + d2),
 * one matrix-vector product per block instead of two.
 */
function recoveredNotWorse(f: GptqFactors, w: Float32Array, codes1: Int8Array, s1: number, codes2: Int8Array, s2: number): boolean {
  let diff = 0;
  for (const b of f.blocks) {
    const n = b.end - b.start;
    const minus = new Float64Array(n);
    const plus = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const q1 = Math.fround(codes1[b.start + i] * s1);
      const q2 = Math.fround(codes2[b.start + i] * s2);
      minus[i] = q2 - q1; // d1 - d2
      plus[i] = 2 * w[b.start + i] - q1 - q2; // d1 + d2
    }
    diff += bilinearForm(minus, b.h, plus, n);
  }
  return diff <= 0;
}

/**
 * Per row, the scale max|w| / qmax x r, r in [0.5, 1], minimising sum_j H_jj (w_j - q_j)^2 (the
 * output error with the inputs' correlations left out): r on a grid of 0.05, then of 0.01 around
 * the best (ties: the larger scale).
 */
function searchRowScales(m: WeightMatrix, stats: LayerStats, scales: Float32Array, bits: number): Float32Array {
  const out = Float32Array.from(scales);
  const qmax = weightQmax(bits);
  const diag = new Float64Array(m.cols);
  for (let row = 0; row < m.groups * m.rows; row++) {
    const g = Math.floor(row / m.rows);
    if (row % m.rows === 0) for (let j = 0; j < m.cols; j++) diag[j] = stats.gram[g * m.cols * m.cols + j * m.cols + j];
    const w = m.data.subarray(row * m.cols, (row + 1) * m.cols);
    const errorAt = (percent: number): number => {
      const s = Math.fround((scales[row] * percent) / 100);
      let err = 0;
      for (let j = 0; j < m.cols; j++) {
        const d = w[j] - Math.fround(codeOf(w[j], s, qmax, false) * s);
        err += diag[j] * d * d;
      }
      return err;
    };
    let bestPercent = 100;
    let best = errorAt(100);
    const consider = (percent: number) => {
      const e = errorAt(percent);
      if (e < best) [best, bestPercent] = [e, percent];
    };
    for (let p = 95; p >= 50; p -= 5) consider(p);
    const coarse = bestPercent;
    for (let p = Math.min(100, coarse + 4); p >= Math.max(50, coarse - 4); p--) if (p !== coarse) consider(p);
    out[row] = Math.fround((scales[row] * bestPercent) / 100);
  }
  return out;
}

function transposeCodes(codes: Int8Array, m: WeightMatrix): Int8Array {
  // codes in the weight layout [K, N] -> matrix order [N, K]
  const out = new Int8Array(codes.length);
  const [n, k] = [m.rows, m.cols];
  for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) out[j * k + i] = codes[i * n + j];
  return out;
}

/**
 * Recovery of every layer at every requested bitwidth from `calib` [N, ...input dims] (the
 * search's calibration samples). 'none' needs no data pass.
 */
export async function computeRecovery(modelBytes: Uint8Array, table: LayerTable, calib: FloatTensor, options: RecoveryOptions): Promise<RecoveryResult> {
  const { mode, bits = [1, 2, 3, 4, 5, 6, 7, 8], perChannel = true, layerBits } = options;
  const model = decodeModel(modelBytes);
  const weights = quantizableWeights(model, table);
  if (layerBits && layerBits.length !== weights.length) throw new InvalidInputError(`recovery: bitwidths given for ${layerBits.length} layers, the model has ${weights.length}`);
  const bitsOf = (i: number): readonly number[] => layerBits?.[i] ?? bits;
  const t0 = performance.now();
  // Statistics only for the layers that compute something (all of them unless `layerBits` skips some).
  const needed = weights.map((_, i) => i).filter((i) => bitsOf(i).length > 0);
  const subset = needed.length === weights.length ? table : { ...table, layers: needed.map((i) => table.layers[i]) };
  const neededStats = mode === 'none' || needed.length === 0 ? null : await layerStatistics(modelBytes, subset, calib, { batchSize: options.batchSize, threads: options.threads });
  const stats: Array<LayerStats | undefined> | null = neededStats && weights.map(() => undefined);
  if (stats && neededStats) needed.forEach((i, k) => (stats[i] = neededStats[k]));
  const t1 = performance.now();
  const layers: QuantizedLayer[][] = weights.map(() => []);
  const reports: LayerRecoveryReport[] = [];
  for (const [i, l] of weights.entries()) {
    // H's blocks are factored once per layer for every bitwidth (the costly part on wide layers).
    const s = stats?.[i];
    const layerBitsList = bitsOf(i);
    const factors =
      s && mode === 'full' && layerBitsList.length > 0
        ? Array.from({ length: s.groups }, (_, g) => gptqFactors(s.gram.subarray(g * s.cols ** 2, (g + 1) * s.cols ** 2), s.cols, { blockUnit: s.unit, ...options.gptq }))
        : undefined;
    for (const b of layerBitsList) {
      if (!s) {
        layers[i][b] = { ...quantizeWeightsLinear(l.weight, l.weightDims, b, { perChannel, axis: l.channelAxis }), biasDelta: null };
        continue;
      }
      const r = recoverLayer(l, s, b, mode, { perChannel, gptq: options.gptq, factors, report: options.reports, searchScales: options.searchScales });
      layers[i][b] = r.layer;
      if (r.report) reports.push(r.report);
    }
    if (options.onLayer) {
      await options.onLayer(i, layers[i]);
      layers[i] = [];
      if (stats) stats[i] = undefined;
    }
  }
  const computed = layerBits ? [...new Set(layerBits.flat())].sort((a, b) => a - b) : [...bits];
  return { mode, bits: computed, layers, reports, statsMs: t1 - t0, solveMs: performance.now() - t1 };
}

/** An in-memory source over a computed recovery (haq eval / export, tests). */
export function recoverySource(result: RecoveryResult): RecoverySource {
  return {
    layer: async (i, bits) => {
      const l = result.layers[i]?.[bits];
      if (!l) throw new InvalidInputError(`no recovered weights for layer ${i} at ${bits} bits (computed: ${result.bits.join(', ')})`);
      return l;
    },
  };
}

/** Each layer's recovered weights for a policy's wBits (what the export writes). */
export async function policyLayers(source: RecoverySource, layers: readonly LayerBits[]): Promise<QuantizedLayer[]> {
  return Promise.all(layers.map((l, i) => source.layer(i, l.wBits)));
}

// ---------------------------------------------------------------------------------------
// The stored form of one (layer, bits): magic "HQRL", u32 version, u32 header bytes, header JSON
// {name, bits, shape, axis, scales, biasDelta}, padded to 4, then the int8 codes.

const MAGIC = 'HQRL';
const VERSION = 1;

export function encodeQuantizedLayer(name: string, l: QuantizedLayer): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ name, bits: l.bits, shape: l.shape, axis: l.axis, scales: Array.from(l.scales), biasDelta: l.biasDelta ? Array.from(l.biasDelta) : null }),
  );
  const pad = (4 - (header.length % 4)) % 4;
  const out = new Uint8Array(12 + header.length + pad + l.codes.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = MAGIC.charCodeAt(i);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, 12);
  out.set(new Uint8Array(l.codes.buffer, l.codes.byteOffset, l.codes.length), 12 + header.length + pad);
  return out;
}

export function decodeQuantizedLayer(bytes: Uint8Array, what: string): QuantizedLayer & { name: string } {
  const fail = (reason: string): never => {
    throw new CorruptObjectError(`${what}: ${reason}; recompute the search's recovery (rerun the search)`, { what });
  };
  if (bytes.length < 12 || String.fromCharCode(...bytes.subarray(0, 4)) !== MAGIC) fail('not a recovered-layer object');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(4, true) !== VERSION) fail(`format version ${view.getUint32(4, true)} is not ${VERSION}`);
  const headerBytes = view.getUint32(8, true);
  if (12 + headerBytes > bytes.length) fail('header runs past the end');
  let h: { name: string; bits: number; shape: number[]; axis: number | null; scales: number[]; biasDelta: number[] | null };
  try {
    h = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerBytes)));
  } catch (err) {
    return fail(`header is not JSON (${(err as Error).message})`);
  }
  const start = 12 + headerBytes + ((4 - (headerBytes % 4)) % 4);
  const n = h.shape.reduce((a, b) => a * b, 1);
  if (bytes.length - start !== n) fail(`holds ${bytes.length - start} codes for shape [${h.shape.join(', ')}]`);
  const codes = new Int8Array(bytes.slice(start).buffer);
  const scales = Float32Array.from(h.scales);
  const values = new Float32Array(n);
  const inner = h.axis === null ? n : h.shape.slice(h.axis + 1).reduce((a, b) => a * b, 1);
  for (let k = 0; k < n; k++) values[k] = codes[k] * scales[h.axis === null ? 0 : Math.floor(k / inner) % scales.length];
  return { name: h.name, bits: h.bits, shape: h.shape, axis: h.axis, codes, scales, values, biasDelta: h.biasDelta ? Float32Array.from(h.biasDelta) : null };
}

/** Bumped whenever recovery computes different results for the same inputs (stored objects of an older version are recomputed). */
export const RECOVERY_VERSION = 2;

/** Where the recovered weights live: per (layer, bits), and a marker written once all are there. */
export interface RecoveryKeys {
  layer(layer: number, bits: number): string;
  complete: string;
}

/**
 * The work-store keys of the recovered weights of a model (by content hash) from calibration
 * samples (by hash) with a mode and weight granularity: every search of the same model and data
 * (a sweep over targets and budgets) shares them.
 */
export function recoveryKeys(modelHash: string, calibSha256: string, mode: RecoveryMode, perChannel: boolean): RecoveryKeys {
  const settings = `${mode}-${perChannel ? 'per-channel' : 'per-tensor'}-v${RECOVERY_VERSION}`;
  return {
    layer: (layer, bits) => cacheKeys.recoveryLayer(modelHash, calibSha256, settings, layer, bits),
    complete: cacheKeys.recoveryComplete(modelHash, calibSha256, settings),
  };
}

const RecoveryComplete = z.object({ layers: z.array(z.string()), bits: z.array(z.number().int()) });
export type RecoveryComplete = z.infer<typeof RecoveryComplete>;

/**
 * The weight bitwidths a search can give a layer: minBits..maxBits, and 8 (the pinned first and
 * last layers, and the uniform 8/8 reference of the final choice, whatever the range).
 */
export function searchRecoveryBits(range: { minBits: number; maxBits: number }): number[] {
  const bits = new Set<number>([8]);
  for (let b = range.minBits; b <= range.maxBits; b++) bits.add(b);
  return [...bits].sort((a, b) => a - b);
}

/**
 * Of the bitwidths `wanted`, those a completeness marker does not cover for these layers (all of
 * them without a marker, or with one written for other layers), and what the new marker lists
 * once they are stored: the marker's bits and the computed ones (nothing stored is forgotten).
 */
export function missingRecoveryBits(done: RecoveryComplete | null, layerNames: readonly string[], wanted: readonly number[]): { missing: number[]; complete: number[] } {
  const sameLayers = done !== null && done.layers.length === layerNames.length && done.layers.every((n, i) => n === layerNames[i]);
  const have = sameLayers ? done.bits : [];
  const missing = [...new Set(wanted)].filter((b) => !have.includes(b)).sort((a, b) => a - b);
  return { missing, complete: [...new Set([...have, ...missing])].sort((a, b) => a - b) };
}

/**
 * The recovered weights under `keys` at the bitwidths `bits`: those a complete set for the same
 * layers already holds are reused, the others computed (`compute` gets per layer the bitwidths to
 * compute, as computeRecovery's `layerBits`: none for a layer an interrupted earlier attempt
 * already stored at all of them) and written as each layer is done (every (layer, bits) object,
 * then the marker, which then lists the old and the new bitwidths): `compute` passes `onLayer` to
 * computeRecovery, so no more than one layer's results are held.
 * Idempotent: a retry, or two searches at once, write the same bytes (two searches adding
 * different bitwidths at once may leave a marker listing only one's: the other's are then
 * recomputed, never lost).
 */
export async function storeRecoveryOnce(
  store: ObjectStore,
  keys: RecoveryKeys,
  table: LayerTable,
  bits: readonly number[],
  compute: (layerBits: number[][], onLayer: NonNullable<RecoveryOptions['onLayer']>) => Promise<RecoveryResult>,
): Promise<{ cached: boolean; computedBits: number[]; resumedLayers: number; result: RecoveryResult | null }> {
  const names = table.layers.map((l) => l.name);
  const done = (await store.exists(keys.complete)) ? await getJson(store, keys.complete, RecoveryComplete).catch(() => null) : null;
  const { missing, complete } = missingRecoveryBits(done, names, bits);
  if (missing.length === 0) return { cached: true, computedBits: [], resumedLayers: 0, result: null };
  // An earlier attempt that stopped part way (a timeout) left whole layers behind: those are not recomputed.
  const stored = await Promise.all(names.map(async (_, i) => (await Promise.all(missing.map((b) => store.exists(keys.layer(i, b))))).every(Boolean)));
  const layerBits = stored.map((done) => (done ? [] : missing));
  const result = await compute(layerBits, async (i, perBits) => {
    for (const [b, l] of perBits.entries()) if (l) await store.put(keys.layer(i, b), encodeQuantizedLayer(names[i], l), { contentType: 'application/octet-stream' });
  });
  await putJson(store, keys.complete, { layers: names, bits: complete });
  return { cached: false, computedBits: missing, resumedLayers: stored.filter(Boolean).length, result };
}

/**
 * Reads recovered layers from the store on first use (Evaluate, Finalize), the recently used
 * ones kept within `cacheBytes` (least recently used dropped, read again when next used).
 */
export function storedRecovery(
  store: ObjectStore,
  key: (layer: number, bits: number) => string,
  table: LayerTable,
  cacheBytes = 256 * 2 ** 20,
): RecoverySource & { cachedBytes(): number } {
  const cache = boundedMemo<QuantizedLayer>(cacheBytes, linearWeightsBytes);
  return {
    layer: (i, bits) => {
      const k = key(i, bits);
      return cache.get(k, async () => {
        const l = decodeQuantizedLayer(await store.get(k), `${k} in ${store.location}`);
        if (l.name !== table.layers[i].name || l.bits !== bits) throw new CorruptObjectError(`${k} holds ${l.name} at ${l.bits} bits, not ${table.layers[i].name} at ${bits}`);
        return l;
      });
    },
    cachedBytes: () => cache.bytes,
  };
}
