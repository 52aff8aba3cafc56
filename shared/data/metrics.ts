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
