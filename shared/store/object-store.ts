import type { z } from 'zod';
import { CorruptObjectError, InvalidInputError } from '../errors';
import { formatBytes } from '../limits';
import { describeIssues } from '../validate';

/**
 * Where searches keep their objects: an S3 bucket in the cloud, a folder on one machine.
 * Keys are built in shared/keys.ts only. Writes of one key are whole-object (readers never
 * see half an object); `get` of a missing key throws ObjectNotFoundError.
 */
export interface ObjectStore {
  /** Human-readable location for messages, e.g. `s3://bucket` or `/tmp/haq`. */
  readonly location: string;
  /** With `maxBytes`, a larger object is refused (InvalidInputError naming its size) before it is read. */
  get(key: string, options?: GetOptions): Promise<Uint8Array>;
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Every key under the prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
}

export interface GetOptions {
  maxBytes?: number;
}

export interface PutOptions {
  contentType?: string;
  /** Write only if the key does not exist yet (atomic: S3 If-None-Match, O_EXCL on disk); else throw ObjectExistsError. */
  ifAbsent?: boolean;
}

/** Reads a JSON object and checks it with a schema; names the key on failure. */
export async function getJson<T extends z.ZodTypeAny>(store: ObjectStore, key: string, schema: T): Promise<z.infer<T>> {
  const bytes = await store.get(key);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new CorruptObjectError(`${key} in ${store.location} is not valid JSON: ${(err as Error).message}`, { key });
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = describeIssues(result.error.issues);
    throw new CorruptObjectError(`${key} in ${store.location} does not match its schema: ${issues}`, { key });
  }
  return result.data;
}

/** Writes a value as pretty JSON. */
export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, JSON.stringify(value, null, 1), { contentType: 'application/json' });
}

/** The error for an object over a size limit: its size, the limit and what to do. */
export function tooLarge(key: string, location: string, sizeBytes: number, maxBytes: number): InvalidInputError {
  return new InvalidInputError(
    `${key} in ${location} is ${formatBytes(sizeBytes)}, over haq's limit of ${formatBytes(maxBytes)} for this input; ` +
      'use a smaller file (fewer samples, a smaller model)',
    { key, sizeBytes, maxBytes },
  );
}
