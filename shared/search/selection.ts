/**
 * Honest selection and honest baselines (docs/search.md "Honest selection").
 *
 * The search's best reward is the maximum of many noisy validation scores, and so biased
 * upwards; the policy it belongs to is not necessarily the best one. After the last round:
 *
 *   planSelection(ctx, history)   the top-k distinct policies by validation reward, the uniform
 *                                 references in budget (pinned as the search pins, and not),
 *                                 uniform 8/8 and FP32: selection/plan.json
 *   (Evaluate, one per candidate) each candidate on the selection split and the test split
 *                                 (uniform ones also on validation): selection/<i>.json
 *   chooseFinal(plan, results)    the search candidate with the best reward on the selection
 *                                 split; each uniform reference likewise; the gain over the
 *                                 better reference on test
 *
 * The selection split never reaches the reward (the rounds evaluate the validation split
 * only), so picking among k candidates on it leaves the test split untouched, and the
 * selection figure of the chosen policy is biased only by a choice among k, not among all
 * episodes. Uniform references are chosen by the same rule as the policy (the best on the
 * selection split among the uniform policies in budget), never by their width.
 */
import { z } from 'zod';
import { InvalidInputError } from '../errors';
import type { LayerBits } from '../quant/policy';
import { isPinned, policyCost, withinBudget, type BudgetModel } from './budget';
import type { SearchContext } from './context';
import { rewardOf, type RewardName } from './reward';
import { EvaluationResult, type HistoryEntry } from './results';

const Bits = z.array(z.object({ name: z.string(), wBits: z.number().int(), aBits: z.number().int().nullable() }));

export const CandidateKind = z.enum(['search', 'uniform-pinned', 'uniform-unpinned', 'uniform8', 'fp32']);
export type CandidateKind = z.infer<typeof CandidateKind>;

export const SelectionCandidate = z.object({
  kind: CandidateKind,
  /** Per-layer bits (null: the FP32 model). */
  bits: Bits.nullable(),
  /** Where a search candidate was evaluated (its validation evaluation is the round's). */
  episode: z.number().int().nonnegative().nullable(),
  round: z.number().int().nonnegative().nullable(),
  index: z.number().int().nonnegative().nullable(),
  /** Validation reward (search candidates). */
  reward: z.number().nullable(),
  /** Cost / all-8-bit cost. */
  costRatio: z.number(),
  /** Also evaluate on the validation split (candidates the rounds did not evaluate). */
  evaluateVal: z.boolean(),
});
export type SelectionCandidate = z.infer<typeof SelectionCandidate>;

export const SelectionPlan = z.object({
  /** How many search candidates were asked for (config.selectTopK). */
  topK: z.number().int().positive(),
  candidates: z.array(SelectionCandidate),
});
export type SelectionPlan = z.infer<typeof SelectionPlan>;

/** searches/<id>/selection/<i>.json: one candidate's evaluations. */
export const CandidateResult = z.object({
  index: z.number().int().nonnegative(),
  /** The selection split: the data folder's select-inputs.npy, or carved out of val. */
  selectSource: z.enum(['file', 'carved']),
  val: EvaluationResult.nullable(),
  select: EvaluationResult,
  test: EvaluationResult.nullable(),
});
export type CandidateResult = z.infer<typeof CandidateResult>;

const key = (bits: readonly LayerBits[]): string => bits.map((b) => `${b.wBits}/${b.aBits}`).join(',');

/**
 * Uniform policies in budget on the (wBits, aBits) frontier: for each weight width from
 * maxBits down, the widest activation width that fits (more activation bits at the same
 * weight bits cost more and are, to first order, more accurate). Pinned: the first and last
 * layer at 8/8 as the search pins them; unpinned: every layer at (w, a). Size mode: every w
 * that fits (activations float).
 */
export function uniformFrontier(budget: BudgetModel, pinned: boolean): LayerBits[][] {
  const make = (w: number, a: number | null): LayerBits[] =>
    budget.layerNames.map((name, i) => (pinned && isPinned(budget, i) ? { name, wBits: 8, aBits: budget.activations ? 8 : null } : { name, wBits: w, aBits: a }));
  const out: LayerBits[][] = [];
  for (let w = budget.maxBits; w >= budget.minBits; w--) {
    const widths = budget.activations ? Array.from({ length: budget.maxBits - budget.minBits + 1 }, (_, i) => budget.maxBits - i) : [null];
    for (const a of widths) {
      const bits = make(w, a);
      if (withinBudget(budget, policyCost(budget, bits))) {
        out.push(bits);
        break;
      }
    }
  }
  return out;
}

/** The candidates to re-score: top-k search policies by validation reward, uniform references, 8/8 and FP32. */
export function planSelection(ctx: SearchContext, history: readonly HistoryEntry[], topK: number): SelectionPlan {
  const { budget } = ctx;
  const ratio = (bits: readonly LayerBits[]) => policyCost(budget, bits) / budget.fullCost;
  const seen = new Set<string>();
  const ranked = history
    .filter((e) => !e.probe)
    .map((e) => ({ e, bits: e.bits.map(([w, a], i) => ({ name: budget.layerNames[i], wBits: w, aBits: a })) }))
    .filter(({ bits }) => withinBudget(budget, policyCost(budget, bits)))
    .sort((x, y) => y.e.reward - x.e.reward || x.e.episode - y.e.episode);
  const candidates: SelectionCandidate[] = [];
  for (const { e, bits } of ranked) {
    if (candidates.length >= topK) break;
    if (seen.has(key(bits))) continue;
    seen.add(key(bits));
    candidates.push({ kind: 'search', bits, episode: e.episode, round: e.round, index: e.index, reward: e.reward, costRatio: e.costRatio, evaluateVal: false });
  }
  if (candidates.length === 0) {
    throw new InvalidInputError(`search ${ctx.searchId} evaluated ${history.length} policies and none was within the ${budget.kind} budget ${budget.ratio}`);
  }
  const uniform = (kind: CandidateKind, bits: LayerBits[]): SelectionCandidate => ({
    kind,
    bits,
    episode: null,
    round: null,
    index: null,
    reward: null,
    costRatio: ratio(bits),
    evaluateVal: true,
  });
  for (const bits of uniformFrontier(budget, true)) candidates.push(uniform('uniform-pinned', bits));
  if (budget.pinFirstLast) for (const bits of uniformFrontier(budget, false)) candidates.push(uniform('uniform-unpinned', bits));
  candidates.push(uniform('uniform8', budget.layerNames.map((name) => ({ name, wBits: 8, aBits: budget.activations ? 8 : null }))));
  candidates.push({ ...uniform('fp32', []), bits: null, costRatio: 1 });
  return { topK, candidates };
}

/** A candidate with its evaluations on every split. */
export interface ScoredCandidate {
  index: number;
  candidate: SelectionCandidate;
  val: EvaluationResult;
  select: EvaluationResult;
  test: EvaluationResult | null;
  /** The reward's function on the selection split (the choice criterion). */
  selectReward: number;
}

export interface FinalChoice {
  best: ScoredCandidate;
  /** The search candidates in plan order (top-k by validation reward). */
  searchCandidates: ScoredCandidate[];
  /** The most accurate uniform policy in budget pinned as the search pins (null: none fits). */
  uniformPinned: ScoredCandidate | null;
  /** The same without pinning (null: none fits, or pinning is off so it is uniformPinned). */
  uniformUnpinned: ScoredCandidate | null;
  uniform8: ScoredCandidate;
  fp32: ScoredCandidate;
  /** The better of the two references on the test split (on selection without one). */
  reference: ScoredCandidate | null;
  /** The policy's score minus the reference's, on `gainSplit`, and its standard error (unpaired). */
  gain: { split: 'test' | 'select'; value: number; se: number; withinNoise: boolean } | null;
}

/** Two figures differ by less than the noise when |a - b| < NOISE_Z x sqrt(se_a^2 + se_b^2) (unpaired, about 95 %). */
export const NOISE_Z = 2;

export function withinNoise(a: { value: number; se: number }, b: { value: number; se: number }): boolean {
  return Math.abs(a.value - b.value) < NOISE_Z * Math.hypot(a.se, b.se);
}

/**
 * The final choice from the plan and the candidates' evaluations (`val` of search candidates
 * from their rounds). Ties on the selection split go to the earlier candidate (the higher
 * validation reward).
 */
export function chooseFinal(plan: SelectionPlan, results: ReadonlyArray<{ val: EvaluationResult; select: EvaluationResult; test: EvaluationResult | null }>, reward: RewardName): FinalChoice {
  if (results.length !== plan.candidates.length) throw new InvalidInputError(`selection plan has ${plan.candidates.length} candidates but ${results.length} results`);
  const fp32Index = plan.candidates.findIndex((c) => c.kind === 'fp32');
  const fp32Select = results[fp32Index].select;
  const scored: ScoredCandidate[] = plan.candidates.map((candidate, index) => ({
    index,
    candidate,
    ...results[index],
    selectReward: rewardOf(reward, results[index].select, fp32Select),
  }));
  const bestOf = (kind: CandidateKind, by: (s: ScoredCandidate) => number): ScoredCandidate | null =>
    scored.filter((s) => s.candidate.kind === kind).reduce<ScoredCandidate | null>((b, s) => (b === null || by(s) > by(b) ? s : b), null);
  // The policy by the search's reward; the uniform references by accuracy (the metric's score), whatever the reward.
  const best = bestOf('search', (s) => s.selectReward)!;
  const uniformPinned = bestOf('uniform-pinned', (s) => s.select.score);
  const uniformUnpinned = bestOf('uniform-unpinned', (s) => s.select.score);
  const refs = [uniformPinned, uniformUnpinned].filter((r): r is ScoredCandidate => r !== null);
  const split = best.test ? 'test' : 'select';
  const score = (s: ScoredCandidate) => {
    const e = split === 'test' ? s.test! : s.select;
    return { value: e.score, se: e.scoreSe };
  };
  const reference = refs.reduce<ScoredCandidate | null>((b, r) => (b === null || score(r).value > score(b).value ? r : b), null);
  let gain: FinalChoice['gain'] = null;
  if (reference) {
    const [p, r] = [score(best), score(reference)];
    gain = { split, value: p.value - r.value, se: Math.hypot(p.se, r.se), withinNoise: withinNoise(p, r) };
  }
  return {
    best,
    searchCandidates: scored.filter((s) => s.candidate.kind === 'search'),
    uniformPinned,
    uniformUnpinned,
    uniform8: scored.find((s) => s.candidate.kind === 'uniform8')!,
    fp32: scored[fp32Index],
    reference,
    gain,
  };
}
