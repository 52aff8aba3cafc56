/**
 * Classification metrics over a logits matrix [samples, classes] (row-major). Pure.
 * Ties go to the lower class index (as numpy.argmax does).
 */
import { InvalidDataError } from '../errors';

/** Index of the largest of logits[offset .. offset + classes). NaN never wins. */
export function argmax(logits: ArrayLike<number>, offset: number, classes: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let c = 0; c < classes; c++) {
    const v = logits[offset + c];
    if (v > bestValue) {
      bestValue = v;
      best = c;
    }
  }
  return best;
}

/** The k classes with the largest logits of one row, best first (ties: lower index first). */
export function topK(logits: ArrayLike<number>, offset: number, classes: number, k: number): number[] {
  const idx = Array.from({ length: classes }, (_, c) => c);
  const value = (c: number) => (Number.isNaN(logits[offset + c]) ? -Infinity : logits[offset + c]);
  idx.sort((a, b) => value(b) - value(a) || a - b);
  return idx.slice(0, Math.min(k, classes));
}

/** Top-1 class of every row. */
export function top1Predictions(logits: ArrayLike<number>, classes: number): Int32Array {
  const rows = Math.floor(logits.length / classes);
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = argmax(logits, r * classes, classes);
  return out;
}

/** Whether `target` is among the k largest logits of the row (rank counts strictly larger values, ties to lower index). */
function inTopK(logits: ArrayLike<number>, offset: number, classes: number, target: number, k: number): boolean {
  const t = Number.isNaN(logits[offset + target]) ? -Infinity : logits[offset + target];
  let rank = 0;
  for (let c = 0; c < classes; c++) {
    const v = Number.isNaN(logits[offset + c]) ? -Infinity : logits[offset + c];
    if (v > t || (v === t && c < target)) rank++;
    if (rank >= k) return false;
  }
  return true;
}

/** Percent (0..100) of rows whose target class is in the row's top-k. */
export function topKAccuracy(logits: ArrayLike<number>, classes: number, targets: Int32Array, k: number): number {
  if (targets.length === 0) return 0;
  let hits = 0;
  for (let r = 0; r < targets.length; r++) if (inTopK(logits, r * classes, classes, targets[r], k)) hits++;
  return (100 * hits) / targets.length;
}

/** Throws InvalidDataError when a label is not a class of the model's output. */
export function checkLabels(labels: Int32Array, classes: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= classes) {
      throw new InvalidDataError(
        `${what}[${i}] = ${labels[i]} is out of range: the model outputs ${classes} classes (0..${classes - 1}); fix the labels or use the matching model`,
        { index: i, label: labels[i], classes },
      );
    }
  }
}

export interface Scores {
  /** Percent. */
  top1: number;
  /** Percent; null when the model has 5 classes or fewer (top-5 would be trivially 100). */
  top5: number | null;
  mode: 'labels' | 'fidelity';
}

/**
 * Top-1/top-5 against labels, or, without labels, against `reference` (the FP32 model's top-1
 * predictions: fidelity mode). One of the two must be given.
 */
export function scoreLogits(
  logits: ArrayLike<number>,
  classes: number,
  targets: { labels: Int32Array } | { reference: Int32Array },
): Scores {
  const mode = 'labels' in targets ? 'labels' : 'fidelity';
  const t = 'labels' in targets ? targets.labels : targets.reference;
  return {
    top1: topKAccuracy(logits, classes, t, 1),
    top5: classes > 5 ? topKAccuracy(logits, classes, t, 5) : null,
    mode,
  };
}

// ---------------------------------------------------------------- accuracy signals

/**
 * What a search scores a policy by (`--metric`): top-1 (accuracy against labels, or agreement
 * with the FP32 model's top-1 without labels), output SQNR in dB, or output cosine similarity
 * against the FP32 model's outputs. `auto` resolves per model and data (resolveMetric).
 */
export const METRIC_NAMES = ['top1', 'sqnr', 'cosine'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** An estimate with its standard error (same unit). */
export interface Estimate {
  value: number;
  se: number;
}

/** SQNR of an output equal to the reference (no noise), and the floor for a noisier-than-signal one: float32 resolution is ~144 dB. */
export const SQNR_CAP_DB = 150;
/** Per-sample cross-entropy or KL divergence of a non-finite output (nats): counts as this, not as NaN. */
export const LOSS_CAP_NATS = 100;

/** Standard error of a percentage p (0..100) estimated from n samples: 100 * sqrt(q(1-q)/n), q = p/100. */
export function proportionSe(percent: number, n: number): number {
  if (!(n > 0)) return 0;
  const q = percent / 100;
  return 100 * Math.sqrt(Math.max(0, q * (1 - q)) / n);
}

/** Mean of per-sample values and the standard error of that mean, sd / sqrt(n) (sd with n - 1). */
export function meanEstimate(values: ArrayLike<number>): Estimate {
  const n = values.length;
  if (n === 0) return { value: 0, se: 0 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i];
  const mean = sum / n;
  if (n < 2) return { value: mean, se: 0 };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  return { value: mean, se: Math.sqrt(ss / (n - 1) / n) };
}

/**
 * Signal-to-quantization-noise ratio in dB from per-sample signal powers s_i and noise powers
 * n_i: 10 log10(mean(s) / mean(n)) (a ratio of totals, as for one tensor), clamped to
 * +-SQNR_CAP_DB. Standard error by the delta method on log(mean(s)) - log(mean(n)):
 * var = (var(s)/S^2 + var(n)/N^2 - 2 cov(s, n)/(S N)) / n, times (10 / ln 10)^2.
 */
export function sqnrEstimate(signal: ArrayLike<number>, noise: ArrayLike<number>): Estimate {
  const n = signal.length;
  let s = 0;
  let q = 0;
  for (let i = 0; i < n; i++) {
    s += signal[i];
    q += noise[i];
  }
  const S = s / n;
  const N = q / n;
  if (!(N > 0) || !Number.isFinite(N)) return { value: N > 0 ? -SQNR_CAP_DB : SQNR_CAP_DB, se: 0 };
  if (!(S > 0)) return { value: -SQNR_CAP_DB, se: 0 };
  const value = 10 * Math.log10(S / N);
  if (value >= SQNR_CAP_DB || value <= -SQNR_CAP_DB) return { value: Math.max(-SQNR_CAP_DB, Math.min(SQNR_CAP_DB, value)), se: 0 };
  let vs = 0;
  let vn = 0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    vs += (signal[i] - S) ** 2;
    vn += (noise[i] - N) ** 2;
    c += (signal[i] - S) * (noise[i] - N);
  }
  const d = Math.max(1, n - 1);
  const varLog = (vs / d / (S * S) + vn / d / (N * N) - (2 * c) / d / (S * N)) / n;
  return { value, se: (10 / Math.LN10) * Math.sqrt(Math.max(0, varLog)) };
}

/** log(sum(exp(z))) over one row, stable. */
function logSumExp(z: ArrayLike<number>, offset: number, classes: number): number {
  let max = -Infinity;
  for (let c = 0; c < classes; c++) max = Math.max(max, z[offset + c]);
  if (!Number.isFinite(max)) return max;
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += Math.exp(z[offset + c] - max);
  return max + Math.log(sum);
}

const capLoss = (v: number): number => (Number.isFinite(v) ? Math.min(LOSS_CAP_NATS, Math.max(0, v)) : LOSS_CAP_NATS);

/** Cross-entropy of one row against a label, nats: logsumexp(z) - z[label]. */
export function crossEntropy(logits: ArrayLike<number>, offset: number, classes: number, label: number): number {
  return capLoss(logSumExp(logits, offset, classes) - logits[offset + label]);
}

/** KL(P || Q) of the softmaxes of two rows, nats: sum_c p_c (log p_c - log q_c); P is the reference. */
export function klDivergence(reference: ArrayLike<number>, refOffset: number, logits: ArrayLike<number>, offset: number, classes: number): number {
  const lp = logSumExp(reference, refOffset, classes);
  const lq = logSumExp(logits, offset, classes);
  let kl = 0;
  for (let c = 0; c < classes; c++) {
    const logP = reference[refOffset + c] - lp;
    const p = Math.exp(logP);
    if (p > 0) kl += p * (logP - (logits[offset + c] - lq));
  }
  return capLoss(kl);
}

/** Cosine similarity of two equal-length slices (1 when both are zero, 0 when one is). */
export function cosineSimilarity(a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, length: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let j = 0; j < length; j++) {
    const x = a[aOffset + j];
    const y = b[bOffset + j];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  if (aa === 0 && bb === 0) return 1;
  if (aa === 0 || bb === 0) return 0;
  const cos = ab / Math.sqrt(aa * bb);
  return Number.isFinite(cos) ? Math.max(-1, Math.min(1, cos)) : 0;
}

/** A model's classifier output: rank 2, [N, classes] with at least 2 classes (null dims unknown). */
export function isClassifierShape(dims: ReadonlyArray<number | null>): boolean {
  return dims.length === 2 && (dims[1] === null || dims[1] >= 2);
}

/**
 * The metric a search or evaluation scores by: the requested one, or for `auto` top-1 when the
 * data has labels, else top-1 agreement with FP32 when the first output is classifier-shaped
 * ([N, classes]), else SQNR. Top-1 without labels needs a classifier-shaped output.
 */
export function resolveMetric(requested: MetricName | 'auto', data: { hasLabels: boolean; firstOutputDims: ReadonlyArray<number | null> }): MetricName {
  const classifier = isClassifierShape(data.firstOutputDims);
  if (requested === 'auto') return data.hasLabels || classifier ? 'top1' : 'sqnr';
  if (requested === 'top1' && !data.hasLabels && !classifier) {
    throw new InvalidDataError(
      `--metric top1 needs labels or a classifier output [N, classes]; this model's first output is [${data.firstOutputDims.map((d) => d ?? '?').join(', ')}] and the data has no labels: use --metric sqnr or --metric cosine`,
      { dims: data.firstOutputDims },
    );
  }
  return requested;
}

/** Every signal of one model (or policy) on one split; null where the inputs for it are missing. */
export interface Signals {
  samples: number;
  /** 'labels': top-1 and cross-entropy against labels; 'fidelity': top-1 agreement with the FP32 model. */
  mode: 'labels' | 'fidelity';
  /** Percent (standard error in points); null when the first output is not [N, classes] and there are no labels. */
  top1: Estimate | null;
  top5: number | null;
  /** Mean cross-entropy against the labels, nats (labels only). */
  crossEntropy: Estimate | null;
  /** Mean KL(FP32 || model) of the first output's softmax, nats (needs the FP32 outputs and a classifier output). */
  kl: Estimate | null;
  /** SQNR of the outputs against the FP32 outputs, dB (see signalAccumulator). */
  sqnrDb: Estimate | null;
  /** Mean cosine similarity of the outputs with the FP32 outputs. */
  cosine: Estimate | null;
}

/** One batch of a model's outputs, in output order, each [count, ...]. */
export type OutputBatch = ReadonlyArray<{ data: Float32Array; dims: readonly number[] }>;

export interface SignalAccumulator {
  /**
   * Adds the samples of one batch: the model's outputs, and for the same samples their labels,
   * the FP32 model's outputs, and the FP32 top-1 when only that is known (null: none).
   */
  add(outputs: OutputBatch, against: { labels: Int32Array | null; reference: OutputBatch | null; referenceTop1?: Int32Array | null }): void;
  finish(): Signals;
}

/**
 * Per-sample signals over batches, then their means and standard errors.
 *
 * Top-1/top-5 and cross-entropy use the first output as logits [N, classes]; top-1 is against
 * the labels, or without labels against the FP32 model's top-1 (fidelity). KL compares the
 * first output's softmax with the FP32 one's. SQNR and cosine use every output: the SQNR is
 * that of all outputs concatenated after each output is scaled to unit mean signal power (so
 * no output dominates by its scale; it equals -10 log10 of the mean over outputs of each
 * output's noise-to-signal ratio, so the noisiest output dominates), and the cosine is the
 * mean over samples of the mean over outputs of each output's cosine with the FP32 output.
 */
export function signalAccumulator(): SignalAccumulator {
  let samples = 0;
  let labelled: boolean | null = null;
  let classifier = true;
  let referenced: boolean | null = null;
  let outputCount = -1;
  const hit1: number[] = [];
  const hit5: number[] = [];
  const ce: number[] = [];
  const kl: number[] = [];
  const cos: number[] = [];
  // Per output: per-sample signal and noise powers.
  let signal: number[][] = [];
  let noise: number[][] = [];
  let classes = 0;
  return {
    add(outputs, { labels, reference, referenceTop1 = null }) {
      const count = outputs[0]?.dims[0] ?? 0;
      if (outputCount < 0) {
        outputCount = outputs.length;
        signal = outputs.map(() => []);
        noise = outputs.map(() => []);
        classes = outputs[0].data.length / Math.max(1, count);
        classifier = outputs[0].dims.length === 2 && classes >= 2;
      }
      if (labelled === null) labelled = labels !== null;
      if (referenced === null) referenced = reference !== null;
      if (labelled !== (labels !== null) || referenced !== (reference !== null) || outputs.length !== outputCount) {
        throw new InvalidDataError('every batch of an evaluation must have the same outputs, labels and reference');
      }
      const logits = outputs[0].data;
      const ref = reference?.[0].data ?? null;
      for (let r = 0; r < count; r++) {
        const off = r * classes;
        if (classifier) {
          const target = labels ? labels[r] : referenceTop1 ? referenceTop1[r] : ref ? argmax(ref, off, classes) : -1;
          if (target >= 0) {
            hit1.push(inTopK(logits, off, classes, target, 1) ? 1 : 0);
            if (classes > 5) hit5.push(inTopK(logits, off, classes, target, 5) ? 1 : 0);
          }
          if (labels) ce.push(crossEntropy(logits, off, classes, labels[r]));
          if (ref) kl.push(klDivergence(ref, off, logits, off, classes));
        }
        if (reference) {
          let c = 0;
          outputs.forEach((o, k) => {
            const per = o.data.length / count;
            const a = o.data;
            const b = reference[k].data;
            let s = 0;
            let q = 0;
            for (let j = r * per; j < (r + 1) * per; j++) {
              s += b[j] * b[j];
              q += (a[j] - b[j]) ** 2;
            }
            signal[k].push(s);
            noise[k].push(Number.isFinite(q) ? q : Number.MAX_VALUE);
            c += cosineSimilarity(a, r * per, b, r * per, per);
          });
          cos.push(c / outputs.length);
        }
      }
      samples += count;
    },
    finish() {
      const pct = (hits: number[]): number => (100 * hits.reduce((s, h) => s + h, 0)) / hits.length;
      const top1 = hit1.length > 0 ? pct(hit1) : null;
      let sqnrDb: Estimate | null = null;
      if (referenced && samples > 0) {
        // Each output scaled to unit mean signal power; outputs that are identically zero carry no signal and are left out.
        const s = new Float64Array(samples);
        const q = new Float64Array(samples);
        let used = 0;
        signal.forEach((sig, k) => {
          const power = sig.reduce((a, v) => a + v, 0) / samples;
          if (!(power > 0)) return;
          used += 1;
          for (let i = 0; i < samples; i++) {
            s[i] += sig[i] / power;
            q[i] += noise[k][i] / power;
          }
        });
        if (used > 0) sqnrDb = sqnrEstimate(s, q);
      }
      return {
        samples,
        mode: labelled ? 'labels' : 'fidelity',
        top1: top1 === null ? null : { value: top1, se: proportionSe(top1, hit1.length) },
        top5: hit5.length > 0 ? pct(hit5) : null,
        crossEntropy: ce.length > 0 ? meanEstimate(ce) : null,
        kl: kl.length > 0 ? meanEstimate(kl) : null,
        sqnrDb,
        cosine: cos.length > 0 ? meanEstimate(cos) : null,
      };
    },
  };
}

/** The score of a metric from the signals (null when the signals lack it). */
export function metricScore(metric: MetricName, s: Signals): Estimate | null {
  return metric === 'top1' ? s.top1 : metric === 'sqnr' ? s.sqnrDb : s.cosine;
}

/** Spearman rank correlation of two equal-length series (ties get their mean rank); null for fewer than 3 points or a constant series. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  const n = x.length;
  if (n !== y.length) throw new InvalidDataError(`spearman: ${n} x values but ${y.length} y values`);
  if (n < 3) return null;
  const rx = ranks(x);
  const ry = ranks(y);
  const mx = (n + 1) / 2;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i] - mx) * (ry[i] - mx);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - mx) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : null;
}

/** 1-based ranks, ties averaged. */
function ranks(v: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[a] - v[b]);
  const out = new Float64Array(v.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && v[order[j + 1]] === v[order[i]]) j++;
    for (let k = i; k <= j; k++) out[order[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}
