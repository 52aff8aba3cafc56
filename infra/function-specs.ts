/**
 * The Lambda functions of the two state machines: one per file in functions/, its size
 * (memory, timeout), whether it loads onnxruntime-node, and the object prefixes it may
 * touch in each bucket. Pure data: the CDK constructs, the tests and the bundle benchmark
 * all read it, so the deployed functions and the measured bundles are the same list.
 */
export type BucketRole = 'models' | 'work' | 'results';

/** Object key prefixes (no wildcards: `searches/` means every key that starts with it). */
export interface PrefixAccess {
  /** s3:GetObject (and s3:ListBucket restricted to these prefixes). */
  read?: string[];
  /** s3:PutObject. */
  write?: string[];
  /** s3:DeleteObject. */
  delete?: string[];
}

export interface FunctionSpec {
  /** PascalCase id; the ASL placeholder is `${<id>FunctionArn}`. */
  id: string;
  /** Entry file relative to the repository root. */
  entry: string;
  memorySizeMb: number;
  timeoutSeconds: number;
  /** Loads onnxruntime-node (kept external and copied with only one platform's binary). */
  onnxruntime: boolean;
  /** Buckets whose names go into the environment, and the prefixes allowed in each. */
  access: Partial<Record<BucketRole, PrefixAccess>>;
  description: string;
}

const searches = 'searches/';
const locks = 'locks/';
const models = 'models/';
/** The recovered weights per (model, calibration data, layer, bits), shared by every search of them (shared/keys.ts cacheKeys). */
const recovery = 'cache/recovery/';

/**
 * Sizes per role, from the peak memory measured per function on a real-size search (bench
 * section real-size: ResNet-50 at 224x224, 200 validation and 64 calibration samples, each
 * function replayed in a fresh process): memory >= 1.2 x the peak, rounded up to 64 MB.
 * Prepare (calibration and the accuracy recovery) peaked at 4,718 MiB (4,026 MiB with 32
 * calibration samples) but keeps Lambda's maximum for CPU: the recovery takes over 300 s of its
 * 900 s on ResNet-50; Evaluate 3,477 MiB -> 4,416 MB; Finalize 3,892 MiB -> 4,928 MB (docs/deploy.md).
 * Measured again with PP-OCR det at 640x640 beside ResNet-50 (the evaluator's batch bounded by
 * its layer inputs): Prepare 5,364 MiB, Evaluate 2,501 MiB, Finalize 614 MiB, all within these.
 * Simulate, Act and Update peaked near 160 MiB: their sizes are for CPU (Lambda gives CPU in
 * proportion to memory, 1,769 MB = one vCPU; Update trains the DDPG networks). The state
 * machines time every task out at 900 s (Lambda's maximum).
 */
export const functionSpecs: FunctionSpec[] = [
  {
    id: 'Prepare',
    entry: 'functions/prepare.ts',
    memorySizeMb: 10240,
    timeoutSeconds: 900,
    onnxruntime: true,
    description: 'Parses the ONNX model, builds the layer table, calibrates activations, computes the accuracy recovery, takes the per-model lock',
    access: {
      models: { read: [models] },
      work: { read: [searches, locks, recovery], write: [searches, locks, recovery], delete: [locks] },
    },
  },
  {
    id: 'Simulate',
    entry: 'functions/simulate.ts',
    memorySizeMb: 1024,
    timeoutSeconds: 300,
    onnxruntime: false,
    description: 'Builds the hardware cost table and costs one policy (latency, energy, size)',
    access: { work: { read: [searches], write: [searches] } },
  },
  {
    id: 'Evaluate',
    entry: 'functions/evaluate.ts',
    memorySizeMb: 4416,
    timeoutSeconds: 900,
    onnxruntime: true,
    description: 'Accuracy of the FP32 model or one quantized policy on a validation shard (onnxruntime)',
    access: {
      models: { read: [models] },
      work: { read: [searches, recovery], write: [searches] },
    },
  },
  {
    id: 'Act',
    entry: 'functions/act.ts',
    memorySizeMb: 1024,
    timeoutSeconds: 300,
    onnxruntime: false,
    description: 'DDPG agent: proposes the round\'s policies, repaired to the budget',
    access: { work: { read: [searches], write: [searches] } },
  },
  {
    id: 'Update',
    entry: 'functions/update.ts',
    memorySizeMb: 2048,
    timeoutSeconds: 900,
    onnxruntime: false,
    description: 'Rewards, replay buffer, DDPG training steps, checkpoint, done/continue decision',
    // delete: Update prunes agent/replay checkpoints two rounds old (1-3 MB each for DDPG).
    access: { work: { read: [searches], write: [searches], delete: [searches] } },
  },
  {
    id: 'Finalize',
    entry: 'functions/finalize.ts',
    memorySizeMb: 4928,
    timeoutSeconds: 900,
    // The final choice was evaluated by SelectCandidates: Finalize only reads evaluations and exports.
    onnxruntime: false,
    description: 'Writes the best policy, report and quantized model to the results bucket; releases the lock',
    access: {
      models: { read: [models] },
      work: { read: [searches, locks, recovery], write: [searches], delete: [locks] },
      results: { read: ['policies/'], write: ['policies/'] },
    },
  },
  {
    id: 'RecordFailure',
    entry: 'functions/record-failure.ts',
    memorySizeMb: 256,
    timeoutSeconds: 120,
    onnxruntime: false,
    description: 'Writes status.json with the error and releases the lock',
    access: {
      work: { read: [searches, locks], write: [searches], delete: [locks] },
    },
  },
  {
    id: 'Compare',
    entry: 'functions/compare.ts',
    memorySizeMb: 1024,
    timeoutSeconds: 900,
    onnxruntime: false,
    description: 'Plans a sweep, builds each search input, polls search status, writes the cross-target comparison',
    access: {
      models: { read: [models, 'sweeps/'] },
      work: { read: [searches, 'sweeps/'], write: [searches, 'sweeps/'] },
      results: { read: ['policies/', 'sweeps/'], write: ['sweeps/'] },
    },
  },
];

/** The DefinitionSubstitutions placeholder a function's ARN fills. */
export const substitutionName = (spec: FunctionSpec): string => `${spec.id}FunctionArn`;

/** Environment variable naming each bucket (docs/workflow.md "Environment of the functions"). */
export const bucketEnvNames: Record<BucketRole, string> = {
  models: 'MODELS_BUCKET',
  work: 'WORK_BUCKET',
  results: 'RESULTS_BUCKET',
};
