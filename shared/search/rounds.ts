import { createDdpg, updateInPlace, type DdpgAgent } from '../agent/ddpg';
import { createReplay, decodeReplay, encodeReplay, pushInPlace, type ReplayBuffer } from '../agent/replay';
import { SearchConfig } from '../config';
import { CorruptObjectError, InvalidInputError, ObjectNotFoundError } from '../errors';
import { CostTable } from '../hardware/types';
import { searchKeys } from '../keys';
import { LayerTable } from '../onnx/types';
import type { LayerBits } from '../quant/policy';
import { deriveSeed, Rng } from '../rng';
import { getJson, type ObjectStore } from '../store/object-store';
import { policyCost } from './budget';
import { configuredReward, rewardOf } from './reward';
import { createSearchContext, makePolicy, type SearchContext } from './context';
import {
  BestPolicy,
  EvaluationResult,
  RoundPolicies,
  RoundSummary,
  SearchHistory,
  SimulationResult,
  type HistoryEntry,
} from './results';
import { mergeShards } from './shards';
import { planSelection, type SelectionPlan } from './selection';
import { agentStateSize, evaluatedActions, plannedEpisodes, propose, roundSize, rolloutStates } from './strategies';
import { decodeSearchState, encodeSearchState, type SearchState } from './state';

/**
 * A search as rounds over the object store (DESIGN.md "Runtime shape"):
 *
 *   initSearch(store, id)          config.json, layers.json, cost-table.json -> agent/round-0 (+ replay/round-0)
 *   actRound(store, id, r)         agent/round-r -> rounds/r/policies.json (B policies)
 *   ... Simulate and Evaluate write rounds/r/sim/<i>.json and rounds/r/eval/<i>.json ...
 *   updateRound(store, id, r)      agent/round-r, replay/round-r, policies, sim, eval, baseline.json
 *                                  -> agent/round-(r+1), replay/round-(r+1), history.json, best.json,
 *                                     rounds/r/summary.json (written last: the round is done)
 *
 * Every step is a deterministic function of the objects it reads, so a retry rewrites the same
 * bytes, and a round whose summary exists is not redone. The pure cores (initialState,
 * proposeRound, applyRound) do the work; these wrappers only load and store.
 */

/** Reward = 0.1 x (top1 - top1_fp32), top-1 in percent (HAQ lib/env/linear_quantize_env.py `reward`). */
export function reward(top1: number, top1Fp32: number): number {
  return 0.1 * (top1 - top1Fp32);
}

const enc = new TextEncoder();

async function loadContext(store: ObjectStore, searchId: string): Promise<SearchContext> {
  const config = await getJson(store, searchKeys.config(searchId), SearchConfig);
  const layers = await getJson(store, searchKeys.layers(searchId), LayerTable);
  const costTable = config.constraint.kind === 'size' && !(await store.exists(searchKeys.costTable(searchId)))
    ? null
    : await getJson(store, searchKeys.costTable(searchId), CostTable);
  return createSearchContext(searchId, config, layers, costTable);
}

async function loadState(store: ObjectStore, searchId: string, round: number): Promise<SearchState> {
  const key = searchKeys.agent(searchId, round);
  if (!(await store.exists(key))) {
    throw new ObjectNotFoundError(key, `${store.location} (round ${round} has no checkpoint: run initSearch, or update round ${round - 1} first)`);
  }
  const state = decodeSearchState(await store.get(key), `${key} in ${store.location}`);
  if (state.round !== round) throw new CorruptObjectError(`${key} holds the state of round ${state.round}, not ${round}`);
  return state;
}

async function loadReplay(store: ObjectStore, searchId: string, round: number): Promise<ReplayBuffer> {
  const key = searchKeys.replay(searchId, round);
  return decodeReplay(await store.get(key), `${key} in ${store.location}`);
}

// ---------------------------------------------------------------- pure cores

/** The round-0 state: a fresh agent for ddpg (weights from the seed), counters at zero. */
export function initialState(ctx: SearchContext): { state: SearchState; replay: ReplayBuffer | null } {
  const ddpg = ctx.config.strategy === 'ddpg';
  const agent = ddpg ? createDdpg(agentStateSize(ctx), ctx.hyper, new Rng(deriveSeed(ctx.config.seed, 'agent'))) : null;
  const replay = ddpg ? createReplay(ctx.hyper.replayPerLayer * ctx.layers.layers.length, agentStateSize(ctx)) : null;
  return {
    state: { strategy: ctx.config.strategy, round: 0, episodesDone: 0, best: null, probeTop1: [], evaluated: [], ddpg: agent },
    replay,
  };
}

/** The policies of round `state.round` (throws when the search has nothing left to evaluate). */
export function proposeRound(ctx: SearchContext, state: SearchState): RoundPolicies {
  const count = roundSize(ctx, state);
  if (count <= 0) {
    throw new InvalidInputError(
      `search ${ctx.searchId} is done: ${state.episodesDone} of ${plannedEpisodes(ctx)} episodes evaluated, round ${state.round} has nothing to act on`,
    );
  }
  const policies = [];
  const episodes: number[] = [];
  const actions: number[][] = [];
  const probe: boolean[] = [];
  for (let index = 0; index < count; index++) {
    const episode = state.episodesDone + index;
    const p = propose(ctx, state, episode);
    policies.push(makePolicy(ctx, p.bits, { episode, round: state.round, index, probe: p.probe, strategy: ctx.config.strategy }));
    episodes.push(episode);
    actions.push(p.actions);
    probe.push(p.probe);
  }
  return { round: state.round, policies, episodes, actions, probe };
}

/** What Simulate and Evaluate produced for one policy of the round. */
export interface Outcome {
  evaluation: EvaluationResult;
  simulation: SimulationResult | null;
}

export interface AppliedRound {
  state: SearchState;
  replay: ReplayBuffer | null;
  summary: RoundSummary;
  entries: HistoryEntry[];
}

/**
 * Folds a round's results into the state, returning a new state (the input is not changed):
 * rewards, best policy, greedy's probe memory, and for ddpg the episode's transitions
 * (every step gets the episode's reward, the last step is terminal) each followed by
 * `updatesPerStep` DDPG steps once the episode is past the warm-up (HAQ rl_quantize.py).
 */
export function applyRound(
  ctx: SearchContext,
  input: SearchState,
  inputReplay: ReplayBuffer | null,
  round: RoundPolicies,
  outcomes: Outcome[],
  fp32: EvaluationResult,
): AppliedRound {
  if (round.round !== input.round) throw new InvalidInputError(`policies are for round ${round.round}, the state for round ${input.round}`);
  if (outcomes.length !== round.policies.length) {
    throw new InvalidInputError(`round ${round.round} has ${round.policies.length} policies but ${outcomes.length} results`);
  }
  // Work on copies: the caller's objects stay as they were (retries re-apply the same input).
  const state: SearchState = structuredClone(input);
  const replay = inputReplay ? structuredClone(inputReplay) : null;
  const agent: DdpgAgent | null = state.ddpg;
  const rewards: number[] = [];
  const entries: HistoryEntry[] = [];
  let roundBest: { reward: number; cost: number } | null = null;
  let updates = 0;
  round.policies.forEach((policy, index) => {
    const episode = round.episodes[index];
    const probe = round.probe?.[index] ?? false;
    const { evaluation, simulation } = outcomes[index];
    const r = rewardOf(configuredReward(ctx.config.reward), evaluation, fp32);
    rewards.push(r);
    const bits = policy.layers as LayerBits[];
    const cost = policyCost(ctx.budget, bits);
    entries.push({
      episode,
      round: round.round,
      index,
      reward: r,
      top1: evaluation.top1,
      score: evaluation.score,
      costRatio: cost / ctx.budget.fullCost,
      latencyMs: simulation?.latencyMs ?? null,
      energyUj: simulation?.energyUj ?? null,
      sizeBytes: simulation?.sizeBytes ?? null,
      probe,
      bits: bits.map((b) => [b.wBits, b.aBits] as [number, number | null]),
    });
    if (probe) {
      // Greedy's sensitivity memory: the probe's reward (its drops are differences of these).
      state.probeTop1.push(r);
    } else {
      if (ctx.config.strategy === 'hybrid') state.evaluated.push({ bits: bits.map((b) => [b.wBits, b.aBits]), reward: r });
      if (state.best === null || r > state.best.reward) {
        state.best = {
          episode,
          round: round.round,
          index,
          reward: r,
          top1: evaluation.top1,
          top1Fp32: fp32.top1,
          score: evaluation.score,
          scoreFp32: fp32.score,
          costRatio: cost / ctx.budget.fullCost,
          policy: { ...policy, metrics: { ...(policy.metrics ?? {}), top1: evaluation.top1, top1Fp32: fp32.top1, score: evaluation.score, reward: r } },
        };
      }
      if (roundBest === null || r > roundBest.reward) roundBest = { reward: r, cost };
    }
    if (agent && replay) {
      const proposed = round.actions?.[index] ?? [];
      if (proposed.length !== ctx.embedding.steps.length) {
        throw new InvalidInputError(`round ${round.round} policy ${index} has ${proposed.length} actions, an episode has ${ctx.embedding.steps.length} steps`);
      }
      const actions = agent.hyper.replayRepaired ? evaluatedActions(ctx, bits) : proposed;
      const states = rolloutStates(ctx, actions);
      const learn = episode >= ctx.config.warmupEpisodes;
      let credit = 0;
      actions.forEach((a, t) => {
        const last = t === actions.length - 1;
        pushInPlace(replay, { state: states[t], action: a, reward: r, nextState: last ? states[t] : states[t + 1], terminal: last });
        if (!learn) return;
        credit += agent.hyper.updatesPerStep;
        while (credit >= 1 - 1e-12) {
          updateInPlace(agent, replay);
          updates += 1;
          credit -= 1;
        }
      });
    }
  });
  state.episodesDone += round.policies.length;
  state.round += 1;
  const total = plannedEpisodes(ctx);
  const rb = roundBest as { reward: number; cost: number } | null;
  const summary: RoundSummary = {
    round: round.round,
    nextRound: state.round,
    done: state.episodesDone >= total,
    episodesDone: state.episodesDone,
    episodesTotal: total,
    rewards,
    bestReward: state.best?.reward ?? null,
    bestTop1: state.best?.top1 ?? null,
    bestScore: state.best?.score ?? null,
    bestEpisode: state.best?.episode ?? null,
    budgetUse: rb ? rb.cost / ctx.budget.budget : null,
    updates,
  };
  return { state, replay, summary, entries };
}

// ---------------------------------------------------------------- store wrappers

export interface InitResult {
  searchId: string;
  strategy: string;
  round: 0;
  episodesTotal: number;
  layers: number;
  /** Steps per episode: 2L, or L in model-size mode. */
  steps: number;
  budget: { kind: string; ratio: number; unit: string; fullCost: number; budget: number; minCost: number; minRatio: number };
}

/**
 * Creates the round-0 checkpoint from config.json, layers.json and cost-table.json (not
 * needed for a size constraint). Checks the budget: BudgetInfeasibleError names the
 * smallest feasible ratio. Deterministic, so a retry rewrites the same bytes.
 */
export async function initSearch(store: ObjectStore, searchId: string): Promise<InitResult> {
  const ctx = await loadContext(store, searchId);
  const { state, replay } = initialState(ctx);
  if (replay) await store.put(searchKeys.replay(searchId, 0), encodeReplay(replay));
  await store.put(searchKeys.agent(searchId, 0), encodeSearchState(state));
  const b = ctx.budget;
  return {
    searchId,
    strategy: ctx.config.strategy,
    round: 0,
    episodesTotal: plannedEpisodes(ctx),
    layers: ctx.layers.layers.length,
    steps: ctx.embedding.steps.length,
    budget: { kind: b.kind, ratio: b.ratio, unit: b.unit, fullCost: b.fullCost, budget: b.budget, minCost: b.minCost, minRatio: b.minCost / b.fullCost },
  };
}

/** Proposes round r's policies from agent/round-r and writes rounds/r/policies.json. */
export async function actRound(store: ObjectStore, searchId: string, round: number): Promise<RoundPolicies> {
  const ctx = await loadContext(store, searchId);
  const state = await loadState(store, searchId, round);
  const policies = proposeRound(ctx, state);
  await store.put(searchKeys.policies(searchId, round), JSON.stringify(policies), { contentType: 'application/json' });
  return policies;
}

/** Reads a policy's evaluation; with config.evalShards > 1 and no merged object, merges the shards (sample-weighted). */
export async function loadEvaluation(store: ObjectStore, ctx: Pick<SearchContext, 'searchId' | 'config'>, round: number, index: number): Promise<EvaluationResult> {
  const key = searchKeys.evaluation(ctx.searchId, round, index);
  const shards = ctx.config.evalShards;
  if (shards <= 1 || (await store.exists(key))) return getJson(store, key, EvaluationResult);
  const parts: EvaluationResult[] = [];
  for (let s = 0; s < shards; s++) parts.push(await getJson(store, searchKeys.evaluationShard(ctx.searchId, round, index, s), EvaluationResult));
  return mergeShards(parts);
}

/**
 * Folds round r's results into the search: writes agent/round-(r+1), replay/round-(r+1)
 * (ddpg), history.json, best.json and, last, rounds/r/summary.json. When that summary
 * already exists the round is not redone and the stored summary is returned.
 */
export async function updateRound(store: ObjectStore, searchId: string, round: number): Promise<RoundSummary> {
  const summaryKey = searchKeys.roundSummary(searchId, round);
  if (await store.exists(summaryKey)) return getJson(store, summaryKey, RoundSummary);
  const ctx = await loadContext(store, searchId);
  const state = await loadState(store, searchId, round);
  const replay = state.ddpg ? await loadReplay(store, searchId, round) : null;
  const policies = await getJson(store, searchKeys.policies(searchId, round), RoundPolicies);
  const baseline = await getJson(store, searchKeys.baseline(searchId), EvaluationResult);
  const outcomes: Outcome[] = [];
  for (let i = 0; i < policies.policies.length; i++) {
    const simKey = searchKeys.simulation(searchId, round, i);
    outcomes.push({
      evaluation: await loadEvaluation(store, ctx, round, i),
      simulation: (await store.exists(simKey)) ? await getJson(store, simKey, SimulationResult) : null,
    });
  }
  const applied = applyRound(ctx, state, replay, policies, outcomes, baseline);

  if (applied.replay) await store.put(searchKeys.replay(searchId, round + 1), encodeReplay(applied.replay));
  await store.put(searchKeys.agent(searchId, round + 1), encodeSearchState(applied.state));
  const historyKey = searchKeys.history(searchId);
  const previous = (await store.exists(historyKey)) ? (await getJson(store, historyKey, SearchHistory)).episodes : [];
  const history: SearchHistory = { episodes: [...previous.filter((e) => e.round < round), ...applied.entries] };
  await store.put(historyKey, enc.encode(JSON.stringify(history)), { contentType: 'application/json' });
  if (applied.state.best) {
    await store.put(searchKeys.best(searchId), JSON.stringify(BestPolicy.parse(applied.state.best), null, 1), { contentType: 'application/json' });
  }
  await store.put(summaryKey, JSON.stringify(applied.summary, null, 1), { contentType: 'application/json' });
  return applied.summary;
}

/**
 * After the last round: the candidates of the final choice (selection.ts) from history.json,
 * written to selection/plan.json. Deterministic, so a retry rewrites the same bytes.
 */
export async function planSelectionStep(store: ObjectStore, searchId: string): Promise<SelectionPlan> {
  const ctx = await loadContext(store, searchId);
  const history = await getJson(store, searchKeys.history(searchId), SearchHistory);
  const plan = planSelection(ctx, history.episodes, ctx.config.selectTopK);
  await store.put(searchKeys.selectionPlan(searchId), JSON.stringify(plan), { contentType: 'application/json' });
  return plan;
}
