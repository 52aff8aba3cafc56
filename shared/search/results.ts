import { z } from 'zod';
import { Policy } from '../quant/policy';

/**
 * Objects that pass between the workflow's steps (all stored under searches/<id>/, see
 * shared/keys.ts). Simulate writes a SimulationResult per policy, Evaluate an
 * EvaluationResult, Update reads both and writes a RoundSummary.
 */

/** Accuracy of one model (FP32 baseline or one policy) on the validation split. */
export const EvaluationResult = z.object({
  /** Top-1 in percent; in fidelity mode (no labels) agreement with the FP32 top-1. */
  top1: z.number().min(0).max(100),
  top5: z.number().min(0).max(100).nullable(),
  /** 'labels' when the data has labels, 'fidelity' when scored against the FP32 model. */
  mode: z.enum(['labels', 'fidelity']),
  samples: z.number().int().positive(),
  seconds: z.number().nonnegative(),
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
  /** 0.1 x (top1 - top1_fp32), HAQ's reward. */
  reward: z.number(),
  top1: z.number(),
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
  top1: z.number(),
  top1Fp32: z.number(),
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
  bestEpisode: z.number().int().nonnegative().nullable(),
  /** Cost of this round's best in-budget policy / budget (<= 1), null when the round had only probes. */
  budgetUse: z.number().nullable(),
  /** DDPG gradient steps taken in this round. */
  updates: z.number().int().nonnegative(),
});
export type RoundSummary = z.infer<typeof RoundSummary>;
