/**
 * Clip-range selection for activation quantization, from a histogram of |x| over the
 * calibration set. Three methods (per layer AND per bitwidth):
 *   max        alpha = max |x| seen;
 *   percentile alpha = the p-th percentile of |x| (default 99.99);
 *   mse        alpha minimising the expected squared quantization error (clipping plus
 *              rounding) over the histogram, searched on a grid of candidates (the default;
 *              the "MSE-optimal clipping" of e.g. Banner et al., ACIQ, 2019, found numerically).
 * A histogram of |x| is enough: the signed quantizer is symmetric (round-half-even is odd),
 * and the unsigned one only ever sees x >= 0.
 */
import { z } from 'zod';
import { InvalidInputError } from '../errors';
import { activationQuant, roundHalfEven } from './linear';

export const ClipMethod = z.enum(['max', 'percentile', 'mse']);
export type ClipMethod = z.infer<typeof ClipMethod>;

export interface AbsHistogram {
  /** Upper edge of the last bin (the largest |x| seen). */
  maxAbs: number;
  /** counts[i] = number of |x| in [i, i+1) * maxAbs / counts.length (the last bin includes maxAbs). */
  counts: Float64Array;
}

export function emptyHistogram(maxAbs: number, bins = 2048): AbsHistogram {
  if (!(maxAbs >= 0) || !Number.isFinite(maxAbs)) throw new InvalidInputError(`histogram range must be finite and >= 0, got ${maxAbs}`);
  return { maxAbs, counts: new Float64Array(bins) };
}

/** Adds |x| of every value to the histogram (in place); values beyond maxAbs land in the last bin. */
export function addToHistogramInPlace(h: AbsHistogram, values: ArrayLike<number>): void {
  const bins = h.counts.length;
  if (h.maxAbs === 0) {
    h.counts[0] += values.length;
    return;
  }
  const k = bins / h.maxAbs;
  for (let i = 0; i < values.length; i++) {
    const b = Math.floor(Math.abs(values[i]) * k);
    h.counts[b >= bins ? bins - 1 : b] += 1;
  }
}

export function clipMax(h: AbsHistogram): number {
  return h.maxAbs;
}

/** The p-th percentile of |x| (0 < p <= 100), the upper edge of the bin where it falls. */
export function clipPercentile(h: AbsHistogram, percentile = 99.99): number {
  if (!(percentile > 0 && percentile <= 100)) throw new InvalidInputError(`percentile must be in (0, 100], got ${percentile}`);
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0 || h.maxAbs === 0) return h.maxAbs;
  const target = (total * percentile) / 100;
  const width = h.maxAbs / h.counts.length;
  let cumulative = 0;
  for (let i = 0; i < h.counts.length; i++) {
    cumulative += h.counts[i];
    if (cumulative >= target) return Math.min(h.maxAbs, (i + 1) * width);
  }
  return h.maxAbs;
}

/**
 * Expected squared error of quantizing the histogram's values with clip alpha at b bits
 * (bin centres stand for their bin), summed over all values.
 */
export function histogramQuantError(h: AbsHistogram, alpha: number, bits: number, signed: boolean): number {
  const q = activationQuant(alpha, bits, signed);
  const width = h.maxAbs / h.counts.length;
  let err = 0;
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i];
    if (c === 0) continue;
    const v = (i + 0.5) * width;
    // |x| >= 0, so the code is in [0, qmax] (signed b >= 2 is symmetric; signed 1 bit is +-alpha).
    const code = Math.max(q.qmin, Math.min(q.qmax, roundHalfEven(v / q.divisor)));
    const d = v - code * q.scale;
    err += c * d * d;
  }
  return err;
}

/** alpha on a grid of `candidates` values in (0, maxAbs] minimising histogramQuantError (ties: the larger alpha). */
export function clipMse(h: AbsHistogram, bits: number, signed: boolean, candidates = 200): number {
  if (h.maxAbs === 0) return 0;
  let best = h.maxAbs;
  let bestErr = Infinity;
  for (let j = candidates; j >= 1; j--) {
    const alpha = (h.maxAbs * j) / candidates;
    const err = histogramQuantError(h, alpha, bits, signed);
    if (err < bestErr) {
      bestErr = err;
      best = alpha;
    }
  }
  return best;
}

export interface ClipOptions {
  percentile?: number;
  mseCandidates?: number;
}

/** The clip value for one method and bitwidth. */
export function clipRange(h: AbsHistogram, method: ClipMethod, bits: number, signed: boolean, options: ClipOptions = {}): number {
  if (method === 'max') return clipMax(h);
  if (method === 'percentile') return clipPercentile(h, options.percentile);
  return clipMse(h, bits, signed, options.mseCandidates);
}
