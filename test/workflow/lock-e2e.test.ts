/**
 * The per-model concurrency guard through the real state machine: while another search of
 * the same model, target and constraint holds the lock, Prepare fails with SearchBusyError
 * and is retried with backoff; it goes ahead once the lock is released, or, when retries run
 * out, RecordFailure records the failure without touching the other search's lock.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { localStores } from '../../cli/embedded/handlers';
import { runLocalSearch } from '../../cli/embedded/local';
import type { HandlerMap } from '../../cli/embedded/runner';
import { lockKeys, searchKeys } from '../../shared/keys';
import { getJson, putJson } from '../../shared/store/object-store';
import { SearchStatus } from '../../shared/search/results';
import { LockRecord } from '../../functions/lib/lock';
import { tempDir } from '../helpers/tmp';

const root = join(import.meta.dirname, '..', '..');
const model = join(root, 'models', 'zoo', 'fmnist-cnn', 'model.onnx');
const data = join(root, 'models', 'zoo', 'data');
const config = { hardware: 'bismo-edge', constraint: { kind: 'latency' as const, ratio: 0.5 }, episodes: 2, warmupEpisodes: 2, evalSamples: 100, calibSamples: 64 };
const lockKey = lockKeys.search('fmnist-cnn', 'bismo-edge', 'latency-0.5');

describe('per-model lock in the search state machine', () => {
  const tmp = tempDir('haq-lock-e2e');
  after(() => tmp.cleanup());

  /** Plants a live holder's lock just before the first Prepare; `releaseAfter` Prepare attempts later it ends. */
  const holder = (out: string, releaseAfter: number | null) => {
    const { work } = localStores(join(out, '.haq'));
    let attempts = 0;
    return (handlers: HandlerMap): HandlerMap => ({
      ...handlers,
      prepare: async (event) => {
        if (attempts === 0) {
          await putJson(work, searchKeys.status('other-search'), { searchId: 'other-search', state: 'running' });
          await work.put(lockKey, JSON.stringify({ searchId: 'other-search', acquiredAt: new Date().toISOString() }));
        }
        attempts++;
        if (releaseAfter !== null && attempts > releaseAfter) await work.delete(lockKey);
        return handlers.prepare(event);
      },
    });
  };

  it('waits while the lock is held and runs when it is released', async () => {
    const out = join(tmp.dir, 'waits');
    const r = await runLocalSearch({ modelPath: model, dataDir: data, outDir: out, config, retryDelayMs: 0, wrapHandlers: holder(out, 3) });
    assert.equal(r.outcome.status, 'SUCCEEDED', JSON.stringify(r.outcome.error));
    assert.ok(!(await r.stores.work.exists(lockKey)), 'released by Finalize');
  });

  it('fails with SearchBusyError when retries run out, leaving the holder its lock', async () => {
    const out = join(tmp.dir, 'busy');
    const r = await runLocalSearch({ modelPath: model, dataDir: data, outDir: out, config, retryDelayMs: 0, wrapHandlers: holder(out, null) });
    assert.equal(r.outcome.status, 'FAILED');
    assert.equal(r.outcome.error?.name, 'SearchBusyError');
    const status = await getJson(r.stores.work, searchKeys.status(r.searchId), SearchStatus);
    assert.equal(status.state, 'failed');
    assert.equal(status.error?.name, 'SearchBusyError');
    assert.match(status.error!.message, /other-search/);
    assert.equal((await getJson(r.stores.work, lockKey, LockRecord)).searchId, 'other-search');
  });
});
