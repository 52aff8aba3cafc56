import type { LayerBits } from '../quant/policy';
import { isPinned, policyCost, repairBits, withinBudget, type BudgetModel } from './budget';
import { knapsackBits, predictDrops, probePlan, type Probe } from './greedy';

/**
 * The `hybrid` strategy: sensitivity probes, a knapsack over the predicted drops, then local
 * refinement of the best policy found with real evaluations.
 *
 * 1. Probes (as greedy's, shared/search/greedy.ts), at the levels that decide a policy at
 *    this budget: minBits first (where a layer breaks), then the widest uniform level that
 *    fits the budget and the levels next to it. At most PROBE_SHARE of the episodes.
 * 2. The knapsack answer over the predicted drops (the additive model).
 * 3. Refinement: the additive model is only a model (drops of layers quantized together do
 *    not add up exactly), so every further episode evaluates a neighbour of the incumbent
 *    (the best evaluated policy): one (layer, kind) one bit up with the cheapest predicted
 *    cuts elsewhere to stay in budget, or one bit down with the freed budget spent where the
 *    model predicts the largest gain. Neighbours are tried in order of predicted loss; the
 *    incumbent moves whenever a neighbour scores a higher reward.
 */

/** Share of the episodes spent on sensitivity probes at most. */
export const PROBE_SHARE = 0.4;

/** A term of a policy: one free layer's weight (kind 0) or activation (kind 1) bits. */
interface Term {
  layer: number;
  kind: 0 | 1;
}

/** The widest b such that every free layer at (b, b) fits (minBits when none does). */
export function uniformFitBits(model: BudgetModel): number {
  for (let b = model.maxBits; b > model.minBits; b--) {
    const bits = model.layerNames.map((name, i) => (isPinned(model, i) ? { name, wBits: 8, aBits: model.activations ? 8 : null } : { name, wBits: b, aBits: model.activations ? b : null }));
    if (withinBudget(model, policyCost(model, bits))) return b;
  }
  return model.minBits;
}

/** Probe levels by how much they matter at this budget: minBits, the uniform fit, then outwards from it. */
export function hybridLevels(model: BudgetModel): number[] {
  const fit = uniformFitBits(model);
  const out = [model.minBits];
  for (let d = 0; d <= model.maxBits - model.minBits; d++) {
    for (const b of d === 0 ? [fit] : [fit + d, fit - d]) {
      if (b > model.minBits && b < model.maxBits && !out.includes(b)) out.push(b);
    }
  }
  return out;
}

/** The hybrid's probes, in measurement order. */
export function hybridProbePlan(model: BudgetModel): Probe[] {
  return probePlan(model, hybridLevels(model));
}

/** Probes run out of `episodes`: up to PROBE_SHARE of them (at least the reference and one level's worth when it fits). */
export function hybridProbeCount(model: BudgetModel, episodes: number): number {
  const all = hybridProbePlan(model).length;
  return Math.max(0, Math.min(all, Math.floor(episodes * PROBE_SHARE)));
}

function terms(model: BudgetModel): Term[] {
  const out: Term[] = [];
  model.layerNames.forEach((_, i) => {
    if (isPinned(model, i)) return;
    out.push({ layer: i, kind: 0 });
    if (model.activations) out.push({ layer: i, kind: 1 });
  });
  return out;
}

const get = (bits: LayerBits[], t: Term): number => (t.kind === 0 ? bits[t.layer].wBits : (bits[t.layer].aBits as number));
function set(bits: LayerBits[], t: Term, b: number): void {
  if (t.kind === 0) bits[t.layer].wBits = b;
  else bits[t.layer].aBits = b;
}

/** Predicted loss of a policy under the additive model (sum of the drops of its free terms). */
export function predictedLoss(model: BudgetModel, drops: number[][][], bits: readonly LayerBits[]): number {
  let s = 0;
  for (const t of terms(model)) s += drops[t.layer][t.kind][get(bits as LayerBits[], t) - 1];
  return s;
}

/**
 * Changes one term by `step` bits, then restores the budget (step > 0: lower the other terms
 * with the least predicted drop per unit of cost saved) or spends the slack (step < 0: raise
 * the other terms with the most predicted gain per unit of cost). Null when the move is not
 * possible (out of range, or no cut brings it back into budget).
 */
export function neighbour(model: BudgetModel, drops: number[][][], bits: readonly LayerBits[], moved: Term, step: 1 | -1): LayerBits[] | null {
  const next = bits.map((b) => ({ ...b }));
  const b0 = get(next, moved) + step;
  if (b0 < model.minBits || b0 > model.maxBits) return null;
  set(next, moved, b0);
  const others = terms(model).filter((t) => !(t.layer === moved.layer && t.kind === moved.kind));
  const cost = (): number => policyCost(model, next);
  const deltaCost = (t: Term, d: number): number => {
    const before = cost();
    set(next, t, get(next, t) + d);
    const after = cost();
    set(next, t, get(next, t) - d);
    return after - before;
  };
  const deltaLoss = (t: Term, d: number): number => drops[t.layer][t.kind][get(next, t) + d - 1] - drops[t.layer][t.kind][get(next, t) - 1];
  if (step > 0) {
    // Cut the cheapest predicted drop per unit of cost until the policy fits.
    while (!withinBudget(model, cost())) {
      let best: Term | null = null;
      let bestRate = Infinity;
      for (const t of others) {
        if (get(next, t) <= model.minBits) continue;
        const saved = -deltaCost(t, -1);
        if (!(saved > 0)) continue;
        const rate = deltaLoss(t, -1) / saved;
        if (rate < bestRate) {
          bestRate = rate;
          best = t;
        }
      }
      if (!best) return null;
      set(next, best, get(next, best) - 1);
    }
  } else {
    // Spend the freed budget on the largest predicted gain per unit of cost that still fits.
    for (;;) {
      let best: Term | null = null;
      let bestRate = 0;
      for (const t of others) {
        if (get(next, t) >= model.maxBits) continue;
        const extra = deltaCost(t, 1);
        if (!withinBudget(model, cost() + extra)) continue;
        const gain = -deltaLoss(t, 1);
        const rate = extra > 0 ? gain / extra : gain > 0 ? Infinity : 0;
        if (gain > 0 && rate > bestRate) {
          bestRate = rate;
          best = t;
        }
      }
      if (!best) break;
      set(next, best, get(next, best) + 1);
    }
  }
  return repairBits(model, next);
}

export const bitsKey = (bits: readonly LayerBits[]): string => bits.map((b) => `${b.wBits}/${b.aBits ?? '-'}`).join(',');

/** What the hybrid remembers of the policies it evaluated (non-probe), in episode order. */
export interface Evaluated {
  bits: LayerBits[];
  reward: number;
}

/**
 * The k-th (0-based) policy the hybrid proposes after its probes, given what it evaluated so
 * far: the knapsack answer first, then the unevaluated neighbours of the incumbent in order of
 * predicted loss (ties: term order, up before down). When every neighbour of the incumbent
 * has been evaluated, the neighbours of the next best evaluated policy are used.
 */
export function hybridCandidate(model: BudgetModel, probes: Probe[], probeRewards: number[], evaluated: readonly Evaluated[], k: number): LayerBits[] {
  const drops = predictDrops(model, probes, probeRewards);
  const seen = new Set(evaluated.map((e) => bitsKey(e.bits)));
  const start = knapsackBits(model, drops);
  const pending: LayerBits[][] = [];
  if (!seen.has(bitsKey(start))) pending.push(start);
  // Incumbents: evaluated policies by reward (ties: the earlier), best first.
  const ranked = evaluated.map((e, i) => ({ e, i })).sort((x, y) => y.e.reward - x.e.reward || x.i - y.i);
  for (const { e } of ranked) {
    if (pending.length > k) break;
    const moves: Array<{ bits: LayerBits[]; loss: number; order: number }> = [];
    terms(model).forEach((t, ti) => {
      for (const step of [1, -1] as const) {
        const n = neighbour(model, drops, e.bits, t, step);
        if (!n) continue;
        const key = bitsKey(n);
        if (seen.has(key) || pending.some((p) => bitsKey(p) === key) || moves.some((m) => bitsKey(m.bits) === key)) continue;
        moves.push({ bits: n, loss: predictedLoss(model, drops, n), order: 2 * ti + (step > 0 ? 0 : 1) });
      }
    });
    moves.sort((x, y) => x.loss - y.loss || x.order - y.order);
    for (const m of moves) pending.push(m.bits);
  }
  if (pending.length > k) return pending[k];
  // Every neighbour of every evaluated policy has been evaluated: fall back to the knapsack.
  return start;
}
