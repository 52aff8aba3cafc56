import { exploreAction, explorationSigma, type DdpgAgent } from '../agent/ddpg';
import type { LayerBits } from '../quant/policy';
import { deriveSeed, Rng } from '../rng';
import { actionToBits, bitsToAction, bitsToFeature } from './bits';
import { isPinned, layerCost, policyCost, repairBits, withinBudget } from './budget';
import type { SearchContext } from './context';
import { INITIAL_PREVIOUS_ACTION, STATE_SIZE, stepState } from './embedding';
import { knapsackBits, predictDrops, probeCount, probePlan } from './greedy';
import { hybridCandidate, hybridProbeCount, hybridProbePlan } from './hybrid';
import type { SearchState } from './state';

/**
 * The strategies behind one interface. Each proposes the policy of one episode from the
 * round's input state; every non-probe policy goes through the same budget repair, and all
 * spend at most config.episodes evaluations.
 *   ddpg     HAQ: random actions for the warm-up episodes, then the actor plus truncated-normal noise
 *   random   a uniform random action at every step (HAQ's warm-up, for the whole budget)
 *   uniform  the same bits on every free layer: the largest uniform (b, b) that fits first,
 *            then the other fitting (wBits, aBits) pairs, most bits first
 *   greedy   per-layer sensitivity probes, then knapsack candidates (shared/search/greedy.ts)
 *   hybrid   budget-aware sensitivity probes, the knapsack answer, then local refinement of the
 *            best policy with real evaluations (shared/search/hybrid.ts)
 */
export interface Proposal {
  bits: LayerBits[];
  /** Raw actions per step (ddpg, random); empty otherwise. */
  actions: number[];
  probe: boolean;
}

/** Episodes the strategy spends in all (uniform stops when it runs out of fitting pairs). */
export function plannedEpisodes(ctx: SearchContext): number {
  const episodes = ctx.config.episodes;
  if (ctx.config.strategy === 'uniform') return Math.min(episodes, uniformCandidates(ctx).length);
  return episodes;
}

/** Policies round `state.round` proposes: B, fewer at the end, and greedy never mixes probes with knapsack candidates. */
export function roundSize(ctx: SearchContext, state: SearchState): number {
  const left = plannedEpisodes(ctx) - state.episodesDone;
  let size = Math.min(ctx.config.parallel, left);
  const probes = probesOf(ctx);
  if (state.episodesDone < probes) size = Math.min(size, probes - state.episodesDone);
  return Math.max(0, size);
}

/** Sensitivity probes the strategy runs first (greedy, hybrid); a round never mixes probes with candidates. */
function probesOf(ctx: SearchContext): number {
  if (ctx.config.strategy === 'greedy') return probeCount(ctx.budget, ctx.config.episodes);
  if (ctx.config.strategy === 'hybrid') return hybridProbeCount(ctx.budget, ctx.config.episodes);
  return 0;
}

/** Features of the agent's state: HAQ's 10, plus the two budget features with `budgetState`. */
export function agentStateSize(ctx: SearchContext): number {
  return STATE_SIZE + (ctx.hyper.budgetState ? 2 : 0);
}

/**
 * The agent's state at step t of an episode whose bits so far are `bits` (layers before
 * step t's layer decided): HAQ's embedding row with the previous action, and with
 * `budgetState` the decided layers' cost and the rest's cost at minBits (pinned layers at
 * 8/8), each over the budget.
 */
function agentState(ctx: SearchContext, t: number, previous: number, bits: readonly LayerBits[]): Float32Array {
  const base = stepState(ctx.embedding, t, previous);
  if (!ctx.hyper.budgetState) return base;
  const { budget } = ctx;
  const layer = ctx.embedding.steps[t].layer;
  let spent = 0;
  let rest = 0;
  bits.forEach((b, i) => {
    const pinned = isPinned(budget, i);
    if (i < layer) spent += pinned ? layerCost(budget, i, 8, 8) : layerCost(budget, i, b.wBits, b.aBits);
    else rest += pinned ? layerCost(budget, i, 8, 8) : layerCost(budget, i, budget.minBits, budget.minBits);
  });
  const out = new Float32Array(STATE_SIZE + 2);
  out.set(base);
  out[STATE_SIZE] = spent / budget.budget;
  out[STATE_SIZE + 1] = rest / budget.budget;
  return out;
}

/** Stream for one episode's draws: depends on (seed, episode) only, not on how episodes are grouped into rounds. */
export function episodeRng(ctx: SearchContext, episode: number): Rng {
  return new Rng(deriveSeed(ctx.config.seed, 'episode', episode));
}

/**
 * One episode of the agent over the 2L steps (L in size mode): the state of step t carries
 * the previous step's bits as a feature, so actions are chosen in order. `agent` null or a
 * warm-up episode: uniform actions.
 */
export function rollout(ctx: SearchContext, agent: DdpgAgent | null, episode: number): { actions: number[]; bits: LayerBits[] } {
  const { embedding, config } = ctx;
  const rng = episodeRng(ctx, episode);
  const random = agent === null || episode < config.warmupEpisodes;
  const sigma = agent ? explorationSigma(agent.hyper, episode, config.warmupEpisodes, config.episodes) : 0;
  const bits = startBits(ctx);
  const actions: number[] = [];
  let previous = INITIAL_PREVIOUS_ACTION;
  embedding.steps.forEach((step, t) => {
    const state = agentState(ctx, t, previous, bits);
    const a = random ? rng.next() : exploreAction(agent!, state, sigma, rng);
    const b = actionToBits(a, config);
    if (step.kind === 'weight') bits[step.layer].wBits = b;
    else bits[step.layer].aBits = b;
    actions.push(a);
    previous = bitsToFeature(b, config);
  });
  return { actions, bits };
}

/** The states an episode's actions visited (for the replay buffer): states[t] for t in 0..T-1. */
export function rolloutStates(ctx: SearchContext, actions: readonly number[]): Float32Array[] {
  const states: Float32Array[] = [];
  const bits = startBits(ctx);
  let previous = INITIAL_PREVIOUS_ACTION;
  actions.forEach((a, t) => {
    states.push(agentState(ctx, t, previous, bits));
    const b = actionToBits(a, ctx.config);
    const step = ctx.embedding.steps[t];
    if (step.kind === 'weight') bits[step.layer].wBits = b;
    else bits[step.layer].aBits = b;
    previous = bitsToFeature(b, ctx.config);
  });
  return states;
}

/** An episode's bits before its first step: every layer at maxBits. */
function startBits(ctx: SearchContext): LayerBits[] {
  const { config } = ctx;
  return ctx.layers.layers.map((l) => ({ name: l.name, wBits: config.maxBits, aBits: ctx.budget.activations ? config.maxBits : null }));
}

/** The action at the centre of each step's bin for the bits a policy ended with (after the repair). */
export function evaluatedActions(ctx: SearchContext, bits: readonly LayerBits[]): number[] {
  return ctx.embedding.steps.map((step) => bitsToAction(step.kind === 'weight' ? bits[step.layer].wBits : (bits[step.layer].aBits as number), ctx.config));
}

/** Uniform policies that fit without repair: (b, b) for the largest such b first, then by total bits. */
export function uniformCandidates(ctx: SearchContext): LayerBits[][] {
  const { budget, config } = ctx;
  const pairs: Array<[number, number | null]> = [];
  for (let w = config.maxBits; w >= config.minBits; w--) {
    if (!budget.activations) pairs.push([w, null]);
    else for (let a = config.maxBits; a >= config.minBits; a--) pairs.push([w, a]);
  }
  const make = ([w, a]: [number, number | null]): LayerBits[] =>
    budget.layerNames.map((name, i) => (isPinned(budget, i) ? { name, wBits: 8, aBits: budget.activations ? 8 : null } : { name, wBits: w, aBits: a }));
  const fitting = pairs.filter((p) => withinBudget(budget, policyCost(budget, make(p))));
  const firstEqual = fitting.find(([w, a]) => a === null || a === w);
  const total = ([w, a]: [number, number | null]): number => w + (a ?? 0);
  const rest = fitting.filter((p) => p !== firstEqual).sort((x, y) => total(y) - total(x) || y[0] - x[0]);
  return (firstEqual ? [firstEqual, ...rest] : rest).map(make);
}

/** The policy of `episode` for the state's strategy. */
export function propose(ctx: SearchContext, state: SearchState, episode: number): Proposal {
  switch (ctx.config.strategy) {
    case 'ddpg':
    case 'random': {
      const { actions, bits } = rollout(ctx, ctx.config.strategy === 'ddpg' ? state.ddpg : null, episode);
      return { bits: repairBits(ctx.budget, bits), actions, probe: false };
    }
    case 'uniform':
      return { bits: repairBits(ctx.budget, uniformCandidates(ctx)[episode]), actions: [], probe: false };
    case 'greedy': {
      const probes = probePlan(ctx.budget);
      const count = probeCount(ctx.budget, ctx.config.episodes);
      if (episode < count) return { bits: probes[episode].bits, actions: [], probe: true };
      const drops = predictDrops(ctx.budget, probes, state.probeTop1);
      const k = episode - count;
      const bits = k === 0 ? knapsackBits(ctx.budget, drops) : knapsackBits(ctx.budget, drops, 0.5, episodeRng(ctx, episode));
      return { bits, actions: [], probe: false };
    }
    case 'hybrid': {
      const probes = hybridProbePlan(ctx.budget);
      const count = hybridProbeCount(ctx.budget, ctx.config.episodes);
      if (episode < count) return { bits: probes[episode].bits, actions: [], probe: true };
      const evaluated = state.evaluated.map((e) => ({ bits: toLayerBits(ctx, e.bits), reward: e.reward }));
      return { bits: hybridCandidate(ctx.budget, probes, state.probeTop1, evaluated, episode - state.episodesDone), actions: [], probe: false };
    }
  }
}

function toLayerBits(ctx: SearchContext, bits: Array<[number, number | null]>): LayerBits[] {
  return bits.map(([wBits, aBits], i) => ({ name: ctx.budget.layerNames[i], wBits, aBits }));
}
