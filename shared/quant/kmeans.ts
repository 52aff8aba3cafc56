/**
 * K-means weight quantization for the model-size constraint (HAQ section 3.3, after Deep
 * Compression, Han et al. 2016): 2^b shared float centroids per layer, each weight stored as
 * a b-bit index. 1-D k-means: the weights are sorted once, so each Lloyd iteration only
 * finds the cluster boundaries (midpoints between sorted centroids) by binary search and
 * takes segment means from prefix sums, O(k log n) per iteration instead of O(n k).
 * Initialisation is k-means++ (Arthur & Vassilvitskii 2007) with the seeded Rng: the same
 * seed gives the same centroids.
 */
import { InvalidInputError } from '../errors';
import type { Rng } from '../rng';
import { assertBits } from './linear';

export interface KmeansWeights {
  bits: number;
  /** Sorted ascending, at most 2^b entries (fewer when the layer has fewer distinct weights). */
  centroids: Float32Array;
  /** Index into `centroids` for every weight. */
  indices: Uint8Array;
  /** centroids[indices[i]]: the quantized weights. */
  values: Float32Array;
}

export interface KmeansOptions {
  maxIterations?: number;
}

/** First index in sorted `a` with a[i] >= x (a.length when none). */
function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function kmeansQuantize(weights: Float32Array, bits: number, rng: Rng, { maxIterations = 50 }: KmeansOptions = {}): KmeansWeights {
  assertBits(bits, 'weight bits');
  const n = weights.length;
  if (n === 0) throw new InvalidInputError('cannot k-means quantize an empty weight tensor');
  const k = 2 ** bits;
  const sorted = Float64Array.from(weights).sort();
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + sorted[i];

  let centroids: number[];
  const distinct: number[] = [];
  for (let i = 0; i < n && distinct.length <= k; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) distinct.push(sorted[i]);
  if (distinct.length <= k) {
    centroids = distinct;
  } else {
    // k-means++: each next centroid drawn with probability proportional to D(x)^2.
    centroids = [sorted[rng.int(n)]];
    const d2 = new Float64Array(n);
    for (let i = 0; i < n; i++) d2[i] = (sorted[i] - centroids[0]) ** 2;
    while (centroids.length < k) {
      let total = 0;
      for (let i = 0; i < n; i++) total += d2[i];
      if (total === 0) break;
      let r = rng.next() * total;
      let pick = n - 1;
      for (let i = 0; i < n; i++) {
        r -= d2[i];
        if (r < 0) {
          pick = i;
          break;
        }
      }
      const c = sorted[pick];
      centroids.push(c);
      for (let i = 0; i < n; i++) {
        const d = (sorted[i] - c) ** 2;
        if (d < d2[i]) d2[i] = d;
      }
    }
    centroids.sort((a, b) => a - b);
    // Lloyd iterations on the sorted values.
    for (let it = 0; it < maxIterations; it++) {
      const next = centroids.slice();
      let start = 0;
      for (let j = 0; j < centroids.length; j++) {
        const end = j === centroids.length - 1 ? n : lowerBound(sorted, (centroids[j] + centroids[j + 1]) / 2);
        if (end > start) next[j] = (prefix[end] - prefix[start]) / (end - start); // empty cluster: keep its centroid
        start = Math.max(start, end);
      }
      next.sort((a, b) => a - b);
      const moved = next.some((c, j) => c !== centroids[j]);
      centroids = next;
      if (!moved) break;
    }
  }

  const c32 = Float32Array.from(centroids);
  const indices = new Uint8Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const w = weights[i];
    // nearest centroid by binary search over the sorted centroids
    let lo = 0;
    let hi = c32.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (w > (c32[mid] + c32[mid + 1]) / 2) lo = mid + 1;
      else hi = mid;
    }
    indices[i] = lo;
    values[i] = c32[lo];
  }
  return { bits, centroids: c32, indices, values };
}
