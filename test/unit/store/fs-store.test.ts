import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { CorruptObjectError, InvalidInputError, ObjectNotFoundError } from '../../../shared/errors';
import { FsStore } from '../../../shared/store/fs-store';
import { getJson, putJson } from '../../../shared/store/object-store';
import { tempDir } from '../../helpers/tmp';

describe('FsStore', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const store = new FsStore(dir);

  it('round-trips bytes and JSON, lists by prefix in order, deletes', async () => {
    await store.put('a/b/2.bin', new Uint8Array([1, 2, 3]));
    await store.put('a/b/1.bin', 'x');
    await putJson(store, 'a/c.json', { n: 1 });
    assert.deepEqual(Array.from(await store.get('a/b/2.bin')), [1, 2, 3]);
    assert.deepEqual(await getJson(store, 'a/c.json', z.object({ n: z.number() })), { n: 1 });
    assert.deepEqual(await store.list('a/b/'), ['a/b/1.bin', 'a/b/2.bin']);
    assert.deepEqual(await store.list('a/'), ['a/b/1.bin', 'a/b/2.bin', 'a/c.json']);
    assert.ok(await store.exists('a/c.json'));
    await store.delete('a/c.json');
    assert.equal(await store.exists('a/c.json'), false);
  });

  it('names the key of a missing object', async () => {
    await assert.rejects(store.get('nope/x.json'), (e: unknown) => e instanceof ObjectNotFoundError && /nope\/x\.json/.test((e as Error).message));
  });

  it('rejects keys that escape the root', async () => {
    await assert.rejects(store.put('../evil', 'x'), InvalidInputError);
  });

  it('reports broken JSON and schema mismatches as CorruptObjectError', async () => {
    await store.put('bad.json', '{not json');
    await assert.rejects(getJson(store, 'bad.json', z.object({})), CorruptObjectError);
    await putJson(store, 'wrong.json', { n: 'x' });
    await assert.rejects(getJson(store, 'wrong.json', z.object({ n: z.number() })), /n: Expected number/);
  });
});

describe('size limits', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const store = new FsStore(dir);

  it('refuses an object over maxBytes before reading it, naming its size and the limit', async () => {
    await store.put('big.bin', new Uint8Array(3000));
    assert.equal((await store.get('big.bin', { maxBytes: 3000 })).length, 3000);
    await assert.rejects(store.get('big.bin', { maxBytes: 2999 }), (e: unknown) =>
      e instanceof InvalidInputError && /big\.bin .* is 2\.9 KiB, over haq's limit of 2\.9 KiB/.test((e as Error).message));
  });
});
