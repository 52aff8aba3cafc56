import { z } from 'zod';
import { METRIC_NAMES } from './data/metrics';
import { ConstraintSpec, RecoveryMode } from './quant/policy';
import { REWARD_NAMES } from './search/reward';

/**
 * The configuration of one search: CLI flags, or `models/<name>/search.json` beside an
 * uploaded model, merged over these defaults. Stored as searches/<id>/config.json.
 */
export const Strategy = z.enum(['ddpg', 'random', 'uniform', 'greedy', 'hybrid']);
export type Strategy = z.infer<typeof Strategy>;

export const SearchConfig = z
  .object({
    /** Model name (the folder under models/ or the file's base name). */
    model: z.string().min(1),
    /** Store key of the ONNX model. */
    modelKey: z.string().min(1),
    /** Store key prefix of the data folder (calib-inputs.npy, val-inputs.npy, val-labels.npy, ...). */
    dataPrefix: z.string().min(1),
    /** A built-in target name, or a custom target's JSON inline. */
    hardware: z.union([z.string().min(1), z.record(z.unknown())]).default('bismo-edge'),
    /** `{ "kind": "latency", "ratio": 0.5 }` or `"latency:0.5"`. */
    constraint: ConstraintSpec.default({ kind: 'latency', ratio: 0.5 }),
    strategy: Strategy.default('hybrid'),
    /** Episodes (evaluated policies) in all, warm-up included. */
    episodes: z.number().int().positive().max(100000).default(100),
    /** Random warm-up episodes before DDPG learns (HAQ: 20). */
    warmupEpisodes: z.number().int().nonnegative().default(20),
    /** Policies proposed and evaluated in parallel per round (B). */
    parallel: z.number().int().positive().max(64).default(1),
    seed: z.number().int().nonnegative().default(0),
    minBits: z.number().int().min(1).max(8).default(2),
    maxBits: z.number().int().min(1).max(8).default(8),
    /** HAQ pins the first and last layer to 8 bits. */
    pinFirstLast: z.boolean().default(true),
    /** Batch size for the hardware model (a target may fix its own). */
    batch: z.number().int().positive().optional(),
    /** Input shape when the model's is dynamic, e.g. [1, 1, 28, 28]. */
    inputShape: z.array(z.number().int().positive()).optional(),
    /**
     * What a policy's accuracy is measured by (shared/data/metrics.ts): top1 (accuracy, or
     * agreement with FP32 without labels), sqnr (output SQNR, dB) or cosine (output cosine
     * similarity); auto: top1 for labels or a classifier output [N, classes], else sqnr.
     * Prepare writes the resolved name into config.json.
     */
    metric: z.enum(['auto', ...METRIC_NAMES]).default('auto'),
    /**
     * The reward the agent learns from (shared/search/reward.ts): blend, top1 (HAQ's), ce, kl,
     * sqnr or cosine; auto: blend (half top1, half ce) for a labelled classifier, kl without
     * labels, the metric's own otherwise
     * (defaultReward). Prepare writes the resolved name into config.json.
     */
    reward: z.enum(['auto', ...REWARD_NAMES]).default('auto'),
    /**
     * Honest selection: the final policy is the best of this many distinct top-reward policies
     * on the selection split (select-inputs.npy, or a part carved out of val), not the top reward.
     */
    selectTopK: z.number().int().positive().max(64).default(8),
    /** Validation samples used per evaluation (0 = all). */
    evalSamples: z.number().int().nonnegative().default(0),
    /**
     * Calibration samples (the first N of calib-inputs.npy; 0 = all) for the activation ranges and
     * the accuracy recovery. policy.json records the count, so haq eval/export use the same ones.
     */
    calibSamples: z.number().int().nonnegative().default(0),
    quant: z
      .object({
        weightGranularity: z.enum(['per-channel', 'per-tensor']).default('per-channel'),
        activationCalibration: z.enum(['mse', 'max', 'percentile']).default('mse'),
        percentile: z.number().gt(50).max(100).default(99.99),
        /** Accuracy recovery without training (shared/quant/recovery.ts); 'none' = round to nearest. */
        recovery: RecoveryMode.default('full'),
      })
      .default({}),
    /** Evaluate each policy as this many parallel shards of the validation set (a Map in the state machine). */
    evalShards: z.number().int().positive().max(64).default(1),
    /**
     * DDPG hyper-parameter overrides over HAQ's (shared/agent/ddpg.ts defaultDdpgHyper):
     * tests and benchmarks shrink the networks; leave unset for the paper's values.
     */
    ddpg: z
      .object({
        hidden: z.array(z.number().int().positive().max(4096)).min(1).max(4),
        actorLr: z.number().nonnegative(),
        criticLr: z.number().nonnegative(),
        tau: z.number().min(0).max(1),
        discount: z.number().min(0).max(1),
        batchSize: z.number().int().positive().max(4096),
        replayPerLayer: z.number().int().positive(),
        sigma0: z.number().nonnegative(),
        sigmaDecay: z.number().positive().max(1),
        sigmaFinal: z.number().nonnegative(),
        replayRepaired: z.boolean(),
        budgetState: z.boolean(),
        baselineAlpha: z.number().min(0).max(1),
        updatesPerStep: z.number().nonnegative(),
      })
      .partial()
      .strict()
      .optional(),
    /** Step Functions history guard: continue as new after this many rounds in one execution. */
    roundsPerExecution: z.number().int().positive().default(200),
  })
  .refine((c) => c.minBits <= c.maxBits, { message: 'minBits must be <= maxBits', path: ['minBits'] });
export type SearchConfig = z.infer<typeof SearchConfig>;
export type SearchConfigInput = z.input<typeof SearchConfig>;
