/**
 * One running search per (model, target, constraint): a lock object in the work bucket,
 * created with a conditional write (S3 If-None-Match: *, O_EXCL on disk), so two Prepares
 * racing for it cannot both win. Taken in Prepare, released in Finalize and RecordFailure by
 * its owner only. A lock whose search has ended, or that is older than `staleAfterMs`, is
 * taken over (a search killed without RecordFailure must not block the model forever).
 */
import { z } from 'zod';
import { ObjectExistsError, ObjectNotFoundError, SearchBusyError } from '../../shared/errors';
import { lockKeys, searchKeys } from '../../shared/keys';
import { getJson, type ObjectStore } from '../../shared/store/object-store';
import { SearchStatus } from '../../shared/search/results';

export const LockRecord = z.object({ searchId: z.string(), acquiredAt: z.string() });
export type LockRecord = z.infer<typeof LockRecord>;

export interface LockScope {
  model: string;
  target: string;
  constraint: string;
}

const lockKey = (s: LockScope) => lockKeys.search(s.model, s.target, s.constraint);

/** Six hours: longer than any search's Prepare-to-Finalize gap on a lively lock. */
export const defaultStaleAfterMs = 6 * 3600 * 1000;

export async function acquireLock(
  store: ObjectStore,
  scope: LockScope,
  searchId: string,
  now: Date,
  staleAfterMs = defaultStaleAfterMs,
): Promise<void> {
  const key = lockKey(scope);
  const record: LockRecord = { searchId, acquiredAt: now.toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await store.put(key, JSON.stringify(record), { ifAbsent: true, contentType: 'application/json' });
      return;
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
    }
    let held: LockRecord;
    try {
      held = await getJson(store, key, LockRecord);
    } catch (err) {
      if (err instanceof ObjectNotFoundError) continue; // released in between: try again
      throw err;
    }
    if (held.searchId === searchId) return; // a retried Prepare of the same search
    const ended = await holderEnded(store, held.searchId);
    const ageMs = now.getTime() - Date.parse(held.acquiredAt);
    if (ended || !(ageMs < staleAfterMs)) {
      await store.delete(key);
      continue;
    }
    throw new SearchBusyError(
      `search ${held.searchId} is running for ${scope.model} on ${scope.target} (${scope.constraint}) since ${held.acquiredAt}; ` +
        `search ${searchId} waits for it (Prepare is retried with backoff)`,
      { holder: held.searchId, searchId, ...scope },
    );
  }
  throw new SearchBusyError(`another search took the lock ${key} at the same moment; search ${searchId} retries`, { searchId, ...scope });
}

async function holderEnded(store: ObjectStore, holder: string): Promise<boolean> {
  try {
    const status = await getJson(store, searchKeys.status(holder), SearchStatus);
    return status.state !== 'running';
  } catch {
    return false;
  }
}

/** Deletes the lock if `searchId` holds it; someone else's lock is left alone. */
export async function releaseLock(store: ObjectStore, scope: LockScope, searchId: string): Promise<boolean> {
  const key = lockKey(scope);
  try {
    const held = await getJson(store, key, LockRecord);
    if (held.searchId !== searchId) return false;
  } catch {
    return false;
  }
  await store.delete(key);
  return true;
}
