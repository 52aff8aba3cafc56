import type { LayerBits } from '../quant/policy';
import { Rng } from '../rng';
import { isPinned, minimalBits, repairBits, type BudgetModel } from './budget';

/**
 * The `greedy` baseline: measure each layer's sensitivity to lower bits with real
 * evaluations, then choose per-layer bits by a knapsack (dynamic programme) that minimises
 * the predicted accuracy drop within the budget.
 *
 * Probes (episodes 0..P-1): probe 0 is the reference, every free layer at maxBits; probe
 * (level, layer, kind) lowers one layer's weight or activation bits to `level` and keeps
 * the rest at the reference. Levels go minBits first, then halving the widest gap
 * (2, 5, 3, 6, 4, 7 for 2..8), so a short budget still spans the range. Probes are
 * measurements, not candidates: they are not budget-repaired and never the best policy.
 *
 * Prediction: drop(layer, kind, b) = max(0, reward(reference) - reward(probe)) at measured
 * levels, geometric in between, falling 4x per bit above the highest measured level (the
 * quantization noise power of a uniform quantizer), 0 at maxBits (the reference); a level
 * below the lowest measured one takes the lowest one's drop; a layer never measured takes
 * the mean over measured layers of that kind. The policy's predicted loss is the sum over
 * layers and kinds (an additive model).
 */
export interface Probe {
  /** null for the reference probe. */
  layer: number | null;
  kind: 'weight' | 'activation' | null;
  level: number | null;
  bits: LayerBits[];
}

/** minBits, then the midpoints of the widest gaps, up to maxBits - 1. */
export function levelOrder(minBits: number, maxBits: number): number[] {
  if (maxBits <= minBits) return [];
  const out = [minBits];
  const anchors = [minBits, maxBits];
  while (out.length < maxBits - minBits) {
    let best = -1;
    let width = 1;
    for (let i = 0; i + 1 < anchors.length; i++) {
      if (anchors[i + 1] - anchors[i] > width) {
        width = anchors[i + 1] - anchors[i];
        best = i;
      }
    }
    const mid = Math.floor((anchors[best] + anchors[best + 1]) / 2);
    out.push(mid);
    anchors.splice(best + 1, 0, mid);
  }
  return out;
}

function referenceBits(model: BudgetModel): LayerBits[] {
  return model.layerNames.map((name, i) => {
    const b = isPinned(model, i) ? 8 : model.maxBits;
    return { name, wBits: b, aBits: model.activations ? b : null };
  });
}

/** Every probe in measurement order (the first P of them are run), level by level in `levels` order. */
export function probePlan(model: BudgetModel, levels: readonly number[] = levelOrder(model.minBits, model.maxBits)): Probe[] {
  const ref = referenceBits(model);
  const probes: Probe[] = [{ layer: null, kind: null, level: null, bits: ref }];
  const kinds: Array<'weight' | 'activation'> = model.activations ? ['weight', 'activation'] : ['weight'];
  for (const level of levels) {
    for (let layer = 0; layer < ref.length; layer++) {
      if (isPinned(model, layer)) continue;
      for (const kind of kinds) {
        const bits = ref.map((b) => ({ ...b }));
        if (kind === 'weight') bits[layer].wBits = level;
        else bits[layer].aBits = level;
        probes.push({ layer, kind, level, bits });
      }
    }
  }
  return probes;
}

/** Probes run out of `episodes`: all of them if at most 3/4 of the budget, else 3/4 (the rest go to knapsack candidates). */
export function probeCount(model: BudgetModel, episodes: number): number {
  const all = probePlan(model).length;
  return Math.max(0, Math.min(all, episodes - Math.max(1, Math.ceil(episodes / 4))));
}

/** Predicted drop table [layer][kind 0 = weight, 1 = activation][bits - 1] from the probes run so far. */
export function predictDrops(model: BudgetModel, probes: Probe[], top1: number[]): number[][][] {
  const n = model.layerNames.length;
  const measured: Array<Array<Map<number, number>>> = Array.from({ length: n }, () => [new Map(), new Map()]);
  const ref = top1.length > 0 ? top1[0] : null;
  for (let p = 1; p < top1.length; p++) {
    const probe = probes[p];
    if (probe.layer === null || probe.level === null || ref === null) continue;
    measured[probe.layer][probe.kind === 'weight' ? 0 : 1].set(probe.level, Math.max(0, ref - top1[p]));
  }
  const curve = (points: Map<number, number>, b: number): number | null => {
    if (points.size === 0) return null;
    if (b >= model.maxBits) return 0;
    if (points.has(b)) return points.get(b)!;
    const known = [...points.entries()].sort((x, y) => x[0] - y[0]);
    if (b < known[0][0]) return known[0][1];
    for (let i = 0; i + 1 < known.length; i++) {
      const [b0, d0] = known[i];
      const [b1, d1] = known[i + 1];
      if (b > b0 && b < b1) {
        // Geometric between two positive drops, linear when one is 0.
        return d0 > 0 && d1 > 0 ? d0 * (d1 / d0) ** ((b - b0) / (b1 - b0)) : d0 + ((d1 - d0) * (b - b0)) / (b1 - b0);
      }
    }
    // Above the highest measured level: quantization noise power falls 4x per bit
    // (uniform quantizer, step 2^-b: noise variance step^2 / 12), and so, to first order, the drop.
    const [bh, dh] = known[known.length - 1];
    return dh * NOISE_PER_BIT ** (b - bh);
  };
  const table = measured.map((kinds) => kinds.map((points) => Array.from({ length: 8 }, (_, i) => curve(points, i + 1))));
  // Layers never measured: the mean of the measured ones, per kind and level.
  for (let k = 0; k < 2; k++) {
    for (let b = 0; b < 8; b++) {
      const vals = table.map((l) => l[k][b]).filter((v): v is number => v !== null);
      const mean = vals.length ? vals.reduce((s, v) => s + v, 0) / vals.length : 0;
      for (const l of table) if (l[k][b] === null) l[k][b] = mean;
    }
  }
  return table as number[][][];
}

/** Drop ratio per extra bit above the highest measured level: noise variance ~ 2^(-2b). */
const NOISE_PER_BIT = 0.25;

/** Knapsack resolution: the free budget is split into this many cost units. */
const DP_UNITS = 4000;
/** Loss tie-break per bit below maxBits: among equal predicted drops, keep more bits. */
const TIE_BREAK = 1e-6;

/**
 * Per-layer (wBits, aBits) minimising the summed predicted drop subject to cost <= budget:
 * a 0/1 multiple-choice knapsack over layers. Only the part of the cost that bits can change
 * is divided into DP_UNITS units: each free layer's cheapest option and the pinned layers are
 * taken off the budget first, and each option costs its excess over its layer's cheapest,
 * rounded up (so the result always fits). Where most of the cost does not depend on bits
 * (BitFusion energy on a depthwise MobileNet: 98.6 % of the 8/8 energy is spent at 2/2 too),
 * units of the whole budget would be coarser than the choices themselves. Then the common
 * repair (a no-op unless rounding slack was zero). `noise` > 0 multiplies every drop by a log-normal factor
 * (sigma = noise) from `rng`: the alternative candidates greedy evaluates after the first.
 */
export function knapsackBits(model: BudgetModel, drops: number[][][], noise = 0, rng: Rng | null = null): LayerBits[] {
  const n = model.layerNames.length;
  const free: number[] = [];
  let pinnedCost = 0;
  const minimal = minimalBits(model);
  for (let i = 0; i < n; i++) {
    if (isPinned(model, i)) pinnedCost += model.costs[i][7][model.activations ? 7 : 0];
    else free.push(i);
  }
  const aLevels = model.activations ? range(model.minBits, model.maxBits) : [null];
  const wLevels = range(model.minBits, model.maxBits);
  const optionCost = (i: number, w: number, a: number | null): number => model.costs[i][w - 1][a === null ? 0 : a - 1];
  // Each free layer's cheapest option: what any policy spends on it, off the budget before the units are cut.
  const floor = free.map((i) => Math.min(...wLevels.flatMap((w) => aLevels.map((a) => optionCost(i, w, a)))));
  const room = model.budget - pinnedCost - floor.reduce((s, c) => s + c, 0);
  if (room < 0) return repairBits(model, minimal); // not even the cheapest policy fits
  const unit = room / DP_UNITS;
  const jitter = (): number => (noise > 0 && rng ? Math.exp(noise * rng.normal()) : 1);
  interface Option {
    w: number;
    a: number | null;
    units: number;
    loss: number;
  }
  const options: Option[][] = free.map((i, f) => {
    const wd = drops[i][0].map((d) => d * jitter());
    const ad = drops[i][1].map((d) => d * jitter());
    const opts: Option[] = [];
    for (const w of wLevels) {
      for (const a of aLevels) {
        const cost = optionCost(i, w, a) - floor[f];
        const units = unit > 0 ? Math.ceil(cost / unit - 1e-9) : cost > 0 ? Infinity : 0;
        const loss = wd[w - 1] + (a === null ? 0 : ad[a - 1]) + TIE_BREAK * (2 * model.maxBits - w - (a ?? model.maxBits));
        opts.push({ w, a, units, loss });
      }
    }
    return opts;
  });
  // dp[u] = least loss using at most u units over the layers so far.
  let dp = new Float64Array(DP_UNITS + 1);
  const choice: Int16Array[] = [];
  for (let f = 0; f < free.length; f++) {
    const next = new Float64Array(DP_UNITS + 1).fill(Infinity);
    const pick = new Int16Array(DP_UNITS + 1).fill(-1);
    const opts = options[f];
    for (let u = 0; u <= DP_UNITS; u++) {
      for (let o = 0; o < opts.length; o++) {
        const c = opts[o].units;
        if (c > u) continue;
        const v = dp[u - c] + opts[o].loss;
        if (v < next[u]) {
          next[u] = v;
          pick[u] = o;
        }
      }
    }
    choice.push(pick);
    dp = next;
  }
  if (!Number.isFinite(dp[DP_UNITS])) return repairBits(model, minimal); // rounding left no room
  const bits = minimal.map((b) => ({ ...b }));
  let u = DP_UNITS;
  for (let f = free.length - 1; f >= 0; f--) {
    const o = options[f][choice[f][u]];
    bits[free[f]].wBits = o.w;
    bits[free[f]].aBits = o.a;
    u -= o.units;
  }
  return repairBits(model, bits);
}

function range(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}
