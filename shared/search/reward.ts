/**
 * The reward a search gives every step of an episode, from the policy's evaluation on the
 * validation split and the FP32 model's (docs/search.md "Reward"). Every reward is "higher is
 * better" and in units of about a tenth of a top-1 point, like HAQ's:
 *   top1    0.1 x (top1 - top1_fp32)            HAQ (lib/env/linear_quantize_env.py); percent points
 *   ce      -KL_SCALE x (CE - CE_fp32)          mean cross-entropy against the labels, nats
 *   kl      -KL_SCALE x KL(FP32 || policy)      mean KL divergence from the FP32 softmax, nats
 *   sqnr    0.1 x SQNR                          output SQNR against FP32, dB
 *   cosine  COSINE_SCALE x (cosine - 1)         mean output cosine similarity with FP32
 *   blend   (top1 + ce) / 2                     with labels; without labels (top1 + kl) / 2
 * The same function picks the final policy on the selection split (selection.ts).
 */
import { InvalidInputError } from '../errors';
import type { MetricName } from '../data/metrics';
import type { EvaluationResult } from './results';

export const REWARD_NAMES = ['blend', 'top1', 'ce', 'kl', 'sqnr', 'cosine'] as const;
export type RewardName = (typeof REWARD_NAMES)[number];

/** Nats of cross-entropy or KL worth one reward unit's tenth: 0.01 nat ~ 0.1 reward. */
export const KL_SCALE = 10;
/** 1 - cosine of 0.01 ~ 1 reward unit. */
export const COSINE_SCALE = 100;

/**
 * The reward a search uses when none is asked for (docs/search.md says why, with the
 * measurement): for a labelled classifier the blend of HAQ's top-1 and the cross-entropy,
 * without labels the KL divergence from the FP32 softmax (the fidelity mode's only loss);
 * otherwise the metric's own (sqnr, cosine). HAQ's top-1 reward stays selectable as
 * `--reward top1`.
 */
export function defaultReward(metric: MetricName, data: { hasLabels: boolean }): RewardName {
  if (metric !== 'top1') return metric;
  return data.hasLabels ? 'blend' : 'kl';
}

/**
 * The reward a stored config names. Prepare resolves `auto` from the model and data
 * (defaultReward); a config that did not pass through Prepare (written by hand, an older
 * search) and still says `auto` means HAQ's top-1.
 */
export function configuredReward(reward: 'auto' | RewardName): RewardName {
  return reward === 'auto' ? 'top1' : reward;
}

/** The signal a reward needs from an evaluation, or an InvalidInputError naming what is missing. */
function signal(name: RewardName, e: EvaluationResult, what: string): number {
  const need = (v: number | null | undefined, why: string): number => {
    if (v === null || v === undefined) throw new InvalidInputError(`reward ${name} needs ${why}, which ${what} lacks; choose another --reward`, { reward: name });
    return v;
  };
  switch (name) {
    case 'blend':
      throw new Error('blend is the mean of two rewards and has no signal of its own');
    case 'top1':
      return need(e.top1, 'top-1 (labels or a classifier output)');
    case 'ce':
      return need(e.crossEntropy?.value, 'the cross-entropy against labels (val-labels.npy)');
    case 'kl':
      return need(e.kl?.value, "the KL divergence from the FP32 model's softmax (a classifier output [N, classes])");
    case 'sqnr':
      return need(e.sqnrDb?.value, "the output SQNR against the FP32 model's outputs");
    case 'cosine':
      return need(e.cosine?.value, "the output cosine similarity with the FP32 model's outputs");
  }
}

/** The reward of an evaluation against the FP32 model's evaluation on the same split. */
export function rewardOf(name: RewardName, e: EvaluationResult, fp32: EvaluationResult): number {
  // Half HAQ's top-1 (what the user is scored on, but a step function of the policy) and half
  // a loss (continuous, low noise): against the labels, or in fidelity mode the FP32 softmax.
  if (name === 'blend') return 0.5 * rewardOf('top1', e, fp32) + 0.5 * rewardOf(e.mode === 'labels' ? 'ce' : 'kl', e, fp32);
  const v = signal(name, e, 'the evaluation');
  switch (name) {
    case 'top1':
      return 0.1 * (v - signal(name, fp32, 'the FP32 evaluation'));
    case 'ce':
      return -KL_SCALE * (v - signal(name, fp32, 'the FP32 evaluation'));
    case 'kl':
      return -KL_SCALE * v;
    case 'sqnr':
      return 0.1 * v;
    case 'cosine':
      return COSINE_SCALE * (v - 1);
  }
}

/** Checks before the search starts that the model and data give what the reward needs. */
export function checkRewardFits(name: RewardName, data: { hasLabels: boolean; classifier: boolean }): void {
  const fix = 'choose another --reward (sqnr and cosine work for any model)';
  if (name === 'ce' && !data.hasLabels) throw new InvalidInputError(`--reward ce needs labels (val-labels.npy) and the data has none; ${fix}`, { reward: name });
  const topOne = name === 'top1' || name === 'blend';
  if ((name === 'kl' || (topOne && !data.hasLabels)) && !data.classifier) {
    throw new InvalidInputError(`--reward ${name} needs a classifier output [N, classes]${topOne ? ' or labels' : ''}; ${fix}`, { reward: name });
  }
}
