import { z } from 'zod';
import { METRIC_NAMES } from '../data/metrics';
import { Policy } from '../quant/policy';

/**
 * Objects that pass between the workflow's steps (all stored under searches/<id>/, see
 * shared/keys.ts). Simulate writes a SimulationResult per policy, Evaluate an
 * EvaluationResult, Update reads both and writes a RoundSummary.
 */

/** A mean (or ratio) and its standard error, in the same unit. */
export const Estimate = z.object({ value: z.number(), se: z.number().nonnegative() });

/**
 * Accuracy of one model (FP32 baseline or one policy) on one split: the metric the search
 * scores by (`metric`, `score` +- `scoreSe`) and every signal the data allows (null where it
 * does not), each with its standard error (shared/data/metrics.ts).
 */
export const EvaluationResult = z.object({
  /** Top-1 in percent; in fidelity mode (no labels) agreement with the FP32 top-1; null when the first output is not [N, classes]. */
  top1: z.number().min(0).max(100).nullable(),
  /** Standard error of top1 in points, 100 x sqrt(p(1-p)/n). */
  top1Se: z.number().nonnegative().nullable().default(null),
  top5: z.number().min(0).max(100).nullable(),
  /** 'labels' when the data has labels, 'fidelity' when scored against the FP32 model. */
  mode: z.enum(['labels', 'fidelity']),
  samples: z.number().int().positive(),
  seconds: z.number().nonnegative(),
  /** The metric of `score`: top1 (percent), sqnr (dB) or cosine. */
  metric: z.enum(METRIC_NAMES).default('top1'),
  score: z.number(),
  scoreSe: z.number().nonnegative().default(0),
  /** Mean cross-entropy against the labels, nats (labels only). */
  crossEntropy: Estimate.nullable().default(null),
  /** Mean KL divergence of the first output's softmax from the FP32 one, nats. */
  kl: Estimate.nullable().default(null),
  /** Output SQNR against the FP32 outputs, dB. */
  sqnrDb: Estimate.nullable().default(null),
  /** Mean output cosine similarity with the FP32 outputs. */
  cosine: Estimate.nullable().default(null),
});
export type EvaluationResult = z.infer<typeof EvaluationResult>;

/** Hardware cost of one policy, from the search's cost table. */
export const SimulationResult = z.object({
  latencyMs: z.number().nonnegative(),
  latencyCycles: z.number().nonnegative().nullable(),
  energyUj: z.number().nonnegative().nullable(),
  sizeBytes: z.number().nonnegative(),
  layers: z.array(
    z.object({
      name: z.string(),
      latencyMs: z.number().nonnegative(),
      energyUj: z.number().nonnegative().nullable(),
      sizeBytes: z.number().nonnegative(),
    }),
  ),
});
export type SimulationResult = z.infer<typeof SimulationResult>;

/** The policies one round proposes (Act's output). */
export const RoundPolicies = z.object({
  round: z.number().int().nonnegative(),
  policies: z.array(Policy).min(1),
  /** Episode number of each policy (0-based, over the whole search). */
  episodes: z.array(z.number().int().nonnegative()),
  /**
   * The agent's raw actions per policy (one per episode step, in [0, 1]; empty for
   * strategies that pick bits directly), and which policies are measurement probes
   * (greedy's sensitivity runs: not budget-repaired, never the best policy).
   */
  actions: z.array(z.array(z.number().min(0).max(1))).optional(),
  probe: z.array(z.boolean()).optional(),
});
export type RoundPolicies = z.infer<typeof RoundPolicies>;

export const SearchState = z.enum(['running', 'succeeded', 'failed']);

/** searches/<id>/status.json: what a user (or `haq search`) polls. */
export const SearchStatus = z.object({
  searchId: z.string(),
  state: SearchState,
  model: z.string().optional(),
  round: z.number().int().nonnegative().optional(),
  episodesDone: z.number().int().nonnegative().optional(),
  episodesTotal: z.number().int().nonnegative().optional(),
  bestReward: z.number().nullable().optional(),
  error: z.object({ name: z.string(), message: z.string() }).optional(),
  updatedAt: z.string().optional(),
});
export type SearchStatus = z.infer<typeof SearchStatus>;

/** One evaluated episode in searches/<id>/history.json. */
export const HistoryEntry = z.object({
  episode: z.number().int().nonnegative(),
  round: z.number().int().nonnegative(),
  index: z.number().int().nonnegative(),
  /** The search's reward (shared/search/reward.ts; HAQ's is 0.1 x (top1 - top1_fp32)). */
  reward: z.number(),
  /** Validation top-1 (null: no classifier output) and the metric's score. */
  top1: z.number().nullable(),
  score: z.number(),
  /** Cost / all-8-bit cost in the constraint's metric. */
  costRatio: z.number(),
  latencyMs: z.number().nullable(),
  energyUj: z.number().nullable(),
  sizeBytes: z.number().nullable(),
  probe: z.boolean(),
  /** [wBits, aBits] per layer, aBits null for a float activation. */
  bits: z.array(z.tuple([z.number().int(), z.number().int().nullable()])),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;
export const SearchHistory = z.object({ episodes: z.array(HistoryEntry) });
export type SearchHistory = z.infer<typeof SearchHistory>;

/** searches/<id>/best.json: the highest-reward in-budget policy so far. */
export const BestPolicy = z.object({
  episode: z.number().int().nonnegative(),
  round: z.number().int().nonnegative(),
  index: z.number().int().nonnegative(),
  reward: z.number(),
  top1: z.number().nullable(),
  top1Fp32: z.number().nullable(),
  /** The metric's score of the policy and of FP32 on the validation split. */
  score: z.number(),
  scoreFp32: z.number(),
  costRatio: z.number(),
  policy: Policy,
});
export type BestPolicy = z.infer<typeof BestPolicy>;

/** searches/<id>/rounds/<r>/summary.json: Update's result for round r (its presence means the round is done). */
export const RoundSummary = z.object({
  round: z.number().int().nonnegative(),
  nextRound: z.number().int().nonnegative(),
  done: z.boolean(),
  episodesDone: z.number().int().nonnegative(),
  episodesTotal: z.number().int().nonnegative(),
  rewards: z.array(z.number()),
  bestReward: z.number().nullable(),
  bestTop1: z.number().nullable(),
  bestScore: z.number().nullable(),
  bestEpisode: z.number().int().nonnegative().nullable(),
  /** Cost of this round's best in-budget policy / budget (<= 1), null when the round had only probes. */
  budgetUse: z.number().nullable(),
  /** DDPG gradient steps taken in this round. */
  updates: z.number().int().nonnegative(),
});
export type RoundSummary = z.infer<typeof RoundSummary>;
