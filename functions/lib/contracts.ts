/**
 * What each handler takes and returns (docs/workflow.md, "Handler contracts"). Only
 * references and small numbers: every piece of data lives in the stores.
 */
import { z } from 'zod';

const SearchId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a search id is 1-64 letters, digits, "-" or "_"');
const Round = z.number().int().nonnegative();
const Index = z.number().int().nonnegative();

export const PrepareInput = z.object({
  /** The execution input: an EventBridge "Object Created" event or a direct search request. */
  event: z.unknown(),
  executionId: z.string().optional(),
});
export const PrepareOutput = z.object({
  searchId: SearchId,
  round: Round,
  executionStartRound: Round,
  /** Shard indices of the validation set, [0..evalShards-1]: the Evaluate Map's items. */
  shards: z.array(z.number().int().nonnegative()).min(1),
  /** False when a retried Prepare finds the agent already initialised. */
  initAgent: z.boolean(),
});
export type PrepareOutput = z.infer<typeof PrepareOutput>;

export const SimulateInput = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('table'), searchId: SearchId }),
  z.object({ mode: z.literal('policy'), searchId: SearchId, round: Round, index: Index }),
]);
export type SimulateInput = z.infer<typeof SimulateInput>;

export const EvaluateInput = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('baseline'), searchId: SearchId }),
  /** One candidate of the final choice on the selection and test splits (selection/<index>.json). */
  z.object({ mode: z.literal('candidate'), searchId: SearchId, index: Index }),
  z.object({
    mode: z.literal('policy'),
    searchId: SearchId,
    round: Round,
    index: Index,
    shard: z.number().int().nonnegative().default(0),
    shardCount: z.number().int().positive().default(1),
  }),
]);
export type EvaluateInput = z.infer<typeof EvaluateInput>;

export const ActInput = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('init'), searchId: SearchId }),
  z.object({ mode: z.literal('act'), searchId: SearchId, round: Round }),
  /** After the last round: plan the final choice's candidates (selection/plan.json). */
  z.object({ mode: z.literal('select'), searchId: SearchId }),
]);
export type ActInput = z.infer<typeof ActInput>;
export const ActOutput = z.object({ round: Round, indices: z.array(Index) });
export type ActOutput = z.infer<typeof ActOutput>;

export const UpdateInput = z.object({ searchId: SearchId, round: Round, executionStartRound: Round });
export type UpdateInput = z.infer<typeof UpdateInput>;
export const UpdateOutput = z.object({
  nextRound: Round,
  done: z.boolean(),
  /** This execution has run config.roundsPerExecution rounds: start a fresh one (history limit). */
  continueAsNew: z.boolean(),
  episodesDone: z.number().int().nonnegative(),
  episodesTotal: z.number().int().nonnegative(),
  bestReward: z.number().nullable(),
  bestTop1: z.number().nullable(),
  /** The best policy's score in the search's metric (top1 %, sqnr dB or cosine). */
  bestScore: z.number().nullable(),
  metric: z.string(),
  /** Cost of the round's best policy / budget (<= 1 when in budget). */
  budgetUse: z.number().nullable(),
});
export type UpdateOutput = z.infer<typeof UpdateOutput>;

export const FinalizeInput = z.object({ searchId: SearchId });
export const FinalizeOutput = z.object({
  searchId: SearchId,
  model: z.string(),
  target: z.string(),
  constraint: z.string(),
  keys: z.object({ policy: z.string(), report: z.string(), quantModel: z.string(), latest: z.string() }),
  top1: z.number().nullable(),
  top1Fp32: z.number().nullable(),
  metric: z.string(),
  score: z.number(),
  /** The policy's score on the selection and test splits (null: no test split). */
  selectScore: z.number(),
  testScore: z.number().nullable(),
  reward: z.number(),
});
export type FinalizeOutput = z.infer<typeof FinalizeOutput>;

export const RecordFailureInput = z.object({
  /** The state at the failing step, with the Catch's { Error, Cause } under `error`. */
  state: z
    .object({
      searchId: z.string().optional(),
      error: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
    })
    .passthrough(),
  /** The execution's original input ($$.Execution.Input): the search id is derived from it when Prepare failed. */
  execution: z.unknown(),
  executionId: z.string().optional(),
});

export const CompareInput = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('plan'), sweep: z.unknown(), executionId: z.string().optional() }),
  z.object({ mode: z.literal('item'), sweepId: SearchId, index: Index }),
  z.object({ mode: z.literal('status'), searchId: SearchId }),
  z.object({ mode: z.literal('compare'), sweepId: SearchId }),
]);
export type CompareInput = z.infer<typeof CompareInput>;
