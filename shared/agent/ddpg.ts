import { CorruptObjectError } from '../errors';
import { Rng, type RngState } from '../rng';
import { adamStepInPlace, createAdam, type AdamState } from './adam';
import { decodeContainer, encodeContainer, takeTensor, type Container } from './binary';
import {
  backward,
  cloneMlp,
  createMlp,
  forward,
  gradientTensors,
  parameterTensors,
  predict,
  softUpdateInPlace,
  type Mlp,
} from './mlp';
import { sampleBatch, type ReplayBuffer } from './replay';

/**
 * DDPG (Lillicrap et al., 2016) as HAQ uses it (mit-han-lab/haq lib/rl/ddpg.py): a
 * deterministic actor mu(s) in [0, 1], a critic Q(s, a), target copies of both updated
 * by Polyak averaging, Adam, and a moving-average reward baseline subtracted from the
 * rewards of each minibatch before the critic target is formed.
 */
export interface DdpgHyper {
  /** Hidden layer widths of actor and critic (HAQ: 300, 300). */
  hidden: number[];
  /** Adam learning rates (HAQ: lr_a 1e-4, lr_c 1e-3). */
  actorLr: number;
  criticLr: number;
  /** Soft target update rate (HAQ: 0.01). */
  tau: number;
  /** Discount (HAQ: 1, the reward is the episode's final accuracy). */
  discount: number;
  /** Minibatch size (HAQ: 64). */
  batchSize: number;
  /** Replay capacity per quantizable layer (HAQ: rmsize 128 x L). */
  replayPerLayer: number;
  /** Truncated-normal exploration: sigma = sigma0 * sigmaDecay^(episode - warmup) (HAQ: 0.5, 0.99). */
  sigma0: number;
  sigmaDecay: number;
  /**
   * When > 0, the decay is scaled to the search's episode budget instead: sigma falls
   * geometrically from sigma0 after the warm-up to sigmaFinal at the last episode
   * (HAQ's 0.99 per episode assumes 600 episodes; 0 = HAQ's fixed sigmaDecay).
   */
  sigmaFinal: number;
  /**
   * Store the actions of the policy that was evaluated (after the budget repair), not the
   * actor's raw ones (HAQ stores the raw actions, so the cuts the repair made are invisible to the critic).
   */
  replayRepaired: boolean;
  /**
   * Two more state features per step (AMC's "reduced"/"rest", which HAQ's state lacks): the
   * cost of the layers already decided and the cost of the rest at minBits, both as fractions
   * of the budget, so the actor sees how much of the budget its earlier actions left.
   */
  budgetState: boolean;
  /** Moving-average baseline step (HAQ: moving_alpha 0.5). */
  baselineAlpha: number;
  /** Output-layer init range (HAQ: init_w 3e-3). */
  finalInit: number;
  /** Gradient steps per stored transition after warm-up (HAQ: n_update 1). */
  updatesPerStep: number;
}

export function defaultDdpgHyper(): DdpgHyper {
  return {
    hidden: [300, 300],
    actorLr: 1e-4,
    criticLr: 1e-3,
    tau: 0.01,
    discount: 1,
    batchSize: 64,
    replayPerLayer: 128,
    sigma0: 0.5,
    sigmaDecay: 0.99,
    sigmaFinal: 0,
    replayRepaired: false,
    budgetState: false,
    baselineAlpha: 0.5,
    finalInit: 3e-3,
    updatesPerStep: 1,
  };
}

export interface DdpgAgent {
  hyper: DdpgHyper;
  stateSize: number;
  actor: Mlp;
  critic: Mlp;
  actorTarget: Mlp;
  criticTarget: Mlp;
  actorAdam: AdamState;
  criticAdam: AdamState;
  /** Moving average of minibatch mean rewards; null before the first update. */
  baseline: number | null;
  /** Gradient steps taken. */
  updates: number;
  /** Minibatch sampling stream, saved with the agent. */
  rng: RngState;
}

/** A fresh agent; targets start as exact copies (HAQ hard_update). */
export function createDdpg(stateSize: number, hyper: DdpgHyper, rng: Rng): DdpgAgent {
  const actor = createMlp([stateSize, ...hyper.hidden, 1], 'sigmoid', rng, hyper.finalInit);
  const critic = createMlp([stateSize + 1, ...hyper.hidden, 1], 'linear', rng, hyper.finalInit);
  return {
    hyper: { ...hyper, hidden: hyper.hidden.slice() },
    stateSize,
    actor,
    critic,
    actorTarget: cloneMlp(actor),
    criticTarget: cloneMlp(critic),
    actorAdam: createAdam(parameterTensors(actor), hyper.actorLr),
    criticAdam: createAdam(parameterTensors(critic), hyper.criticLr),
    baseline: null,
    updates: 0,
    rng: new Rng(rng.nextUint32()).getState(),
  };
}

/** mu(s) for one state. */
export function actorAction(agent: DdpgAgent, state: Float32Array): number {
  return predict(agent.actor, state, 1)[0];
}

/**
 * Exploration noise scale for an episode (HAQ: delta = init_delta * delta_decay^(episode - warmup)),
 * or with sigmaFinal > 0 the decay that reaches sigmaFinal at episode `episodes - 1`.
 */
export function explorationSigma(hyper: DdpgHyper, episode: number, warmup: number, episodes: number): number {
  const after = Math.max(0, episode - warmup);
  if (!(hyper.sigmaFinal > 0)) return hyper.sigma0 * hyper.sigmaDecay ** after;
  const span = Math.max(1, episodes - 1 - warmup);
  return hyper.sigma0 * (hyper.sigmaFinal / hyper.sigma0) ** Math.min(1, after / span);
}

/** HAQ select_action: a ~ TruncatedNormal(mu(s), sigma) on [0, 1]. */
export function exploreAction(agent: DdpgAgent, state: Float32Array, sigma: number, rng: Rng): number {
  return rng.truncatedNormal(actorAction(agent, state), sigma, 0, 1);
}

function concatStateAction(states: Float32Array, actions: Float32Array, batch: number, d: number): Float32Array {
  const out = new Float32Array(batch * (d + 1));
  for (let i = 0; i < batch; i++) {
    out.set(states.subarray(i * d, (i + 1) * d), i * (d + 1));
    out[i * (d + 1) + d] = actions[i];
  }
  return out;
}

export interface UpdateStats {
  criticLoss: number;
  policyLoss: number;
}

/**
 * One DDPG step, in place on the agent (HAQ update_policy):
 *   r' = r - baseline, baseline <- baseline + alpha (mean(r) - baseline)
 *   y  = r' + discount (1 - terminal) Q'(s', mu'(s'))
 *   critic: minimise mean (Q(s, a) - y)^2; actor: minimise -mean Q(s, mu(s)) (after the critic step)
 *   targets <- (1 - tau) targets + tau nets
 */
export function updateInPlace(agent: DdpgAgent, replay: ReplayBuffer): UpdateStats {
  const h = agent.hyper;
  const d = agent.stateSize;
  const rng = new Rng(agent.rng);
  const batch = sampleBatch(replay, h.batchSize, rng);
  agent.rng = rng.getState();
  const n = batch.size;

  let mean = 0;
  for (let i = 0; i < n; i++) mean += batch.rewards[i];
  mean /= n;
  agent.baseline = agent.baseline === null ? mean : agent.baseline + h.baselineAlpha * (mean - agent.baseline);

  const nextActions = predict(agent.actorTarget, batch.nextStates, n);
  const nextQ = predict(agent.criticTarget, concatStateAction(batch.nextStates, nextActions, n, d), n);
  const target = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    target[i] = batch.rewards[i] - agent.baseline + h.discount * (1 - batch.terminals[i]) * nextQ[i];
  }

  // Critic step.
  const criticCache = forward(agent.critic, concatStateAction(batch.states, batch.actions, n, d), n);
  const q = criticCache.acts[criticCache.acts.length - 1];
  const dQ = new Float32Array(n);
  let criticLoss = 0;
  for (let i = 0; i < n; i++) {
    const e = q[i] - target[i];
    criticLoss += e * e;
    dQ[i] = (2 * e) / n;
  }
  criticLoss /= n;
  const cg = backward(agent.critic, criticCache, dQ, { input: false });
  adamStepInPlace(agent.criticAdam, parameterTensors(agent.critic), gradientTensors(cg));

  // Actor step through the updated critic.
  const actorCache = forward(agent.actor, batch.states, n);
  const mu = actorCache.acts[actorCache.acts.length - 1];
  const qCache = forward(agent.critic, concatStateAction(batch.states, mu, n, d), n);
  const qMu = qCache.acts[qCache.acts.length - 1];
  let policyLoss = 0;
  for (let i = 0; i < n; i++) policyLoss -= qMu[i];
  policyLoss /= n;
  const dOut = new Float32Array(n).fill(-1 / n);
  const qg = backward(agent.critic, qCache, dOut, { params: false });
  const dMu = new Float32Array(n);
  for (let i = 0; i < n; i++) dMu[i] = qg.input[i * (d + 1) + d];
  const ag = backward(agent.actor, actorCache, dMu, { input: false });
  adamStepInPlace(agent.actorAdam, parameterTensors(agent.actor), gradientTensors(ag));

  softUpdateInPlace(agent.actorTarget, agent.actor, h.tau);
  softUpdateInPlace(agent.criticTarget, agent.critic, h.tau);
  agent.updates += 1;
  return { criticLoss, policyLoss };
}

const MAGIC = 'HAQD';
const VERSION = 1;

/** The agent as a JSON header plus named tensors (for embedding in a larger checkpoint). */
export function ddpgToParts(agent: DdpgAgent, prefix = ''): { header: DdpgHeader; tensors: Array<[string, Float32Array]> } {
  const header: DdpgHeader = {
    hyper: agent.hyper,
    stateSize: agent.stateSize,
    baseline: agent.baseline,
    updates: agent.updates,
    rng: agent.rng,
    actorAdamStep: agent.actorAdam.step,
    criticAdamStep: agent.criticAdam.step,
  };
  const named = (name: string, list: Float32Array[]): Array<[string, Float32Array]> => list.map((t, i) => [`${prefix}${name}.${i}`, t]);
  return {
    header,
    tensors: [
      ...named('actor', parameterTensors(agent.actor)),
      ...named('critic', parameterTensors(agent.critic)),
      ...named('actorTarget', parameterTensors(agent.actorTarget)),
      ...named('criticTarget', parameterTensors(agent.criticTarget)),
      ...named('actorAdam.m', agent.actorAdam.m),
      ...named('actorAdam.v', agent.actorAdam.v),
      ...named('criticAdam.m', agent.criticAdam.m),
      ...named('criticAdam.v', agent.criticAdam.v),
    ],
  };
}

export interface DdpgHeader {
  hyper: DdpgHyper;
  stateSize: number;
  baseline: number | null;
  updates: number;
  rng: RngState;
  actorAdamStep: number;
  criticAdamStep: number;
}

/** Rebuilds an agent from ddpgToParts' header and a decoded container holding its tensors. */
export function ddpgFromParts(header: unknown, c: Container, what: string, prefix = ''): DdpgAgent {
  const h = header as DdpgHeader;
  if (!h || !h.hyper || !Array.isArray(h.hyper.hidden) || !Number.isInteger(h.stateSize) || !Array.isArray(h.rng) || h.rng.length !== 4) {
    throw new CorruptObjectError(`${what}: header lacks hyper/stateSize/rng`);
  }
  // Shapes come from the header; every tensor is checked against them.
  const skeleton = (sizes: number[], output: 'sigmoid' | 'linear', name: string): Mlp => {
    const net: Mlp = { sizes, output, weights: [], biases: [] };
    for (let l = 0; l + 1 < sizes.length; l++) {
      net.weights.push(takeTensor(c, `${prefix}${name}.${2 * l}`, sizes[l] * sizes[l + 1], what));
      net.biases.push(takeTensor(c, `${prefix}${name}.${2 * l + 1}`, sizes[l + 1], what));
    }
    return net;
  };
  const actorSizes = [h.stateSize, ...h.hyper.hidden, 1];
  const criticSizes = [h.stateSize + 1, ...h.hyper.hidden, 1];
  const actor = skeleton(actorSizes, 'sigmoid', 'actor');
  const critic = skeleton(criticSizes, 'linear', 'critic');
  const adam = (name: string, net: Mlp, lr: number, step: number): AdamState => {
    const params = parameterTensors(net);
    const state = createAdam(params, lr);
    state.step = step;
    state.m = params.map((p, i) => takeTensor(c, `${prefix}${name}.m.${i}`, p.length, what));
    state.v = params.map((p, i) => takeTensor(c, `${prefix}${name}.v.${i}`, p.length, what));
    return state;
  };
  return {
    hyper: h.hyper,
    stateSize: h.stateSize,
    actor,
    critic,
    actorTarget: skeleton(actorSizes, 'sigmoid', 'actorTarget'),
    criticTarget: skeleton(criticSizes, 'linear', 'criticTarget'),
    actorAdam: adam('actorAdam', actor, h.hyper.actorLr, h.actorAdamStep),
    criticAdam: adam('criticAdam', critic, h.hyper.criticLr, h.criticAdamStep),
    baseline: h.baseline,
    updates: h.updates,
    rng: h.rng,
  };
}

/** Agent weights, target nets, Adam moments, baseline and RNG state as one binary object. */
export function encodeDdpg(agent: DdpgAgent): Uint8Array {
  const { header, tensors } = ddpgToParts(agent);
  return encodeContainer(MAGIC, VERSION, header, tensors);
}

export function decodeDdpg(bytes: Uint8Array, what = 'agent checkpoint'): DdpgAgent {
  const c = decodeContainer(bytes, MAGIC, VERSION, what);
  return ddpgFromParts(c.header, c, what);
}
