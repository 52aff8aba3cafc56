/**
 * One evaluation from the evaluations of contiguous shards of a split (config.evalShards > 1):
 * every mean is sample-weighted and its standard error recomputed from the pooled variance,
 * so the merge equals an evaluation of the whole split up to float rounding. The SQNR merges
 * the shards' noise-to-signal ratios (exact when the shards have the same mean signal power,
 * as contiguous shards of one split do up to sampling noise).
 */
import { proportionSe, type Estimate } from '../data/metrics';
import { InvalidInputError } from '../errors';
import type { EvaluationResult } from './results';

/** Pooled mean and standard error of per-shard (mean, se, n). */
function pool(parts: Array<{ e: Estimate; n: number }>): Estimate {
  const total = parts.reduce((s, p) => s + p.n, 0);
  const mean = parts.reduce((s, p) => s + p.e.value * p.n, 0) / total;
  // (n_k - 1) sd_k^2 + n_k (m_k - m)^2 with sd_k^2 = se_k^2 n_k.
  const ss = parts.reduce((s, p) => s + (p.n - 1) * p.e.se * p.e.se * p.n + p.n * (p.e.value - mean) ** 2, 0);
  return { value: mean, se: total > 1 ? Math.sqrt(ss / (total - 1) / total) : 0 };
}

function pooled(parts: EvaluationResult[], pick: (e: EvaluationResult) => Estimate | null): Estimate | null {
  const xs = parts.map((p) => ({ e: pick(p), n: p.samples }));
  return xs.every((x) => x.e !== null) ? pool(xs as Array<{ e: Estimate; n: number }>) : null;
}

function pooledSqnr(parts: EvaluationResult[]): Estimate | null {
  if (!parts.every((p) => p.sqnrDb !== null)) return null;
  const total = parts.reduce((s, p) => s + p.samples, 0);
  const nsr = parts.reduce((s, p) => s + p.samples * 10 ** (-p.sqnrDb!.value / 10), 0) / total;
  const se = Math.sqrt(parts.reduce((s, p) => s + (p.samples / total) ** 2 * p.sqnrDb!.se ** 2, 0));
  return { value: -10 * Math.log10(nsr), se };
}

export function mergeShards(parts: EvaluationResult[]): EvaluationResult {
  if (parts.length === 0) throw new InvalidInputError('no shard evaluations to merge');
  if (parts.length === 1) return parts[0];
  const samples = parts.reduce((n, p) => n + p.samples, 0);
  const weighted = (f: (p: EvaluationResult) => number): number => parts.reduce((s, p) => s + f(p) * p.samples, 0) / samples;
  const top1 = parts.every((p) => p.top1 !== null) ? weighted((p) => p.top1!) : null;
  const merged: Omit<EvaluationResult, 'score' | 'scoreSe'> = {
    top1,
    top1Se: top1 === null ? null : proportionSe(top1, samples),
    top5: parts.every((p) => p.top5 !== null) ? weighted((p) => p.top5 as number) : null,
    mode: parts[0].mode,
    samples,
    seconds: parts.reduce((s, p) => s + p.seconds, 0),
    metric: parts[0].metric,
    crossEntropy: pooled(parts, (p) => p.crossEntropy),
    kl: pooled(parts, (p) => p.kl),
    sqnrDb: pooledSqnr(parts),
    cosine: pooled(parts, (p) => p.cosine),
  };
  const score =
    merged.metric === 'top1'
      ? top1 === null
        ? null
        : { value: top1, se: merged.top1Se! }
      : merged.metric === 'sqnr'
        ? merged.sqnrDb
        : merged.cosine;
  if (!score) throw new InvalidInputError(`the shard evaluations lack their metric ${merged.metric}`);
  return { ...merged, score: score.value, scoreSe: score.se };
}
