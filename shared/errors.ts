/**
 * Every error the product raises on purpose. `name` is a string literal on each class:
 * Lambda reports it as `errorType`, the state machines match on it in Catch/Retry, and
 * minifiers would otherwise rename the classes. Messages carry the offending values and,
 * where there is one, the fix.
 */
export class HaqError extends Error {
  override name = 'HaqError';
  /** Machine-readable details for status.json and `--json` output. */
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.details = details;
  }
}

/** Input that does not match its schema: CLI flags, Lambda events, JSON files. */
export class InvalidInputError extends HaqError {
  override name = 'InvalidInputError';
}

/** A model file that is not ONNX, is truncated, or uses something haq cannot handle. */
export class UnsupportedModelError extends HaqError {
  override name = 'UnsupportedModelError';
}

/** A dataset whose dtype, shape or labels do not fit the model. */
export class InvalidDataError extends HaqError {
  override name = 'InvalidDataError';
}

/** A policy that does not fit the model (unknown/missing layers, bits outside 1..8). */
export class InvalidPolicyError extends HaqError {
  override name = 'InvalidPolicyError';
}

/** A hardware target name that is not registered, or a custom target file that is invalid. */
export class UnknownTargetError extends HaqError {
  override name = 'UnknownTargetError';
}

/** The budget cannot be met even with every layer at the smallest allowed bitwidth. */
export class BudgetInfeasibleError extends HaqError {
  override name = 'BudgetInfeasibleError';
  constructor(
    readonly ratio: number,
    readonly minRatio: number,
    readonly costKind: string,
    readonly target: string,
    readonly minBits: number,
    /** The first and last layer held at 8/8 (pinFirstLast): unpinning them lowers the smallest ratio. */
    readonly pinned = false,
  ) {
    super(
      `budget ${ratio} is below the smallest feasible ${costKind} ratio ${minRatio.toFixed(4)} for ${target} ` +
        `(${pinned ? `the free layers at ${minBits} bits, the first and last pinned at 8/8` : `all layers at ${minBits} bits`}); ` +
        `use a ratio of at least ${Math.ceil(minRatio * 1000) / 1000}` +
        (pinned ? ', or unpin the first and last layer (haq search --no-pin-first-last, "pinFirstLast": false in search.json)' : ''),
      { ratio, minRatio, costKind, target, minBits, pinned },
    );
  }
}

/** A search (or some searches of a sweep) ended failed; the message says which and why. */
export class SearchFailedError extends HaqError {
  override name = 'SearchFailedError';
}

/** An object key that is not in the store. */
export class ObjectNotFoundError extends HaqError {
  override name = 'ObjectNotFoundError';
  constructor(readonly key: string, where = '') {
    super(`object not found: ${key}${where ? ` in ${where}` : ''}`, { key });
  }
}

/** A stored object that exists but cannot be read (broken JSON, wrong schema, wrong binary version). */
export class CorruptObjectError extends HaqError {
  override name = 'CorruptObjectError';
}

/**
 * A failure worth retrying unchanged (a throttled dependency, an injected test fault).
 * The state machines retry it with backoff like Lambda's own transient errors.
 */
export class TransientError extends HaqError {
  override name = 'TransientError';
}

/** Another search of the same model holds the per-model lock; Prepare is retried with backoff. */
export class SearchBusyError extends HaqError {
  override name = 'SearchBusyError';
}

/** A conditional write (`put(..., { ifAbsent: true })`) found the key already present. */
export class ObjectExistsError extends HaqError {
  override name = 'ObjectExistsError';
  constructor(readonly key: string, where = '') {
    super(`object already exists: ${key}${where ? ` in ${where}` : ''}`, { key });
  }
}

/** Names the state machines match on; test/workflow checks every custom ErrorEquals is one of these. */
export const domainErrorNames = [
  'HaqError',
  'InvalidInputError',
  'UnsupportedModelError',
  'InvalidDataError',
  'InvalidPolicyError',
  'UnknownTargetError',
  'BudgetInfeasibleError',
  'ObjectNotFoundError',
  'CorruptObjectError',
  'TransientError',
  'SearchBusyError',
] as const;

/** One line for a person: the error's message, with its class name when it is one of ours. */
export function describeError(err: unknown): string {
  if (err instanceof HaqError) return `${err.name}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
