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
