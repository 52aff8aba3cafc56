/**
 * The bytes-bounded memo (shared/lru-cache.ts): the bound holds after every value, the least
 * recently used go first, a dropped value is made again with the same result, one key made
 * once at a time, failures forgotten.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LruCache } from '../../shared/lru-cache';

/** A cache of `n` -> n zero bytes that counts how often each key was made. */
function counted(maxBytes: number) {
  const made = new Map<string, number>();
  const cache = new LruCache<Uint8Array>(maxBytes, (v) => v.byteLength);
  const get = (key: string, bytes: number) =>
    cache.get(key, async () => {
      made.set(key, (made.get(key) ?? 0) + 1);
      return new Uint8Array(bytes);
    });
  return { cache, made, get };
}

describe('LruCache', () => {
  for (const { maxBytes, sizes } of [
    { maxBytes: 0, sizes: [1, 2, 3] },
    { maxBytes: 10, sizes: [4, 4, 4, 4, 1, 9, 2] },
    { maxBytes: 100, sizes: [30, 30, 30, 30, 30, 5, 60] },
  ]) {
    it(`holds at most ${maxBytes} bytes (or the newest value alone) after each of ${sizes.length} values`, async () => {
      const { cache, get } = counted(maxBytes);
      for (const [i, n] of sizes.entries()) {
        await get(`k${i}`, n);
        assert.ok(cache.bytes <= Math.max(maxBytes, n), `${cache.bytes} bytes held after k${i}`);
        assert.ok(cache.size >= 1, 'the newest value is kept');
      }
    });
  }

  it('drops the least recently used: a value used again survives one used less recently', async () => {
    const { cache, made, get } = counted(10);
    await get('a', 4);
    await get('b', 4);
    await get('a', 4); // a is now the most recently used
    await get('c', 4); // 12 bytes: b goes
    assert.equal(cache.bytes, 8);
    await get('a', 4);
    assert.equal(made.get('a'), 1, 'a was kept');
    await get('b', 4);
    assert.equal(made.get('b'), 2, 'b was dropped and made again');
  });

  it('a dropped value made again equals the first one', async () => {
    const cache = new LruCache<Float32Array>(8, (v) => v.byteLength);
    const make = (seed: number) => async () => Float32Array.from({ length: 2 }, (_, i) => Math.fround(Math.sin(seed + i)));
    const first = await cache.get('x', make(1));
    await cache.get('y', make(2)); // 16 bytes: x goes
    const again = await cache.get('x', make(1));
    assert.notEqual(again, first, 'made again');
    assert.deepEqual(again, first);
  });

  it('concurrent uses of one key share one make; values still being made are not dropped', async () => {
    const { cache, made } = counted(1);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = () =>
      cache.get('slow', async () => {
        made.set('slow', (made.get('slow') ?? 0) + 1);
        await gate;
        return new Uint8Array(1);
      });
    const [p1, p2] = [slow(), slow()];
    await cache.get('other', async () => new Uint8Array(5)); // over the bound while slow is pending
    assert.equal(cache.size, 2, 'the pending key is kept');
    release();
    assert.equal(await p1, await p2);
    assert.equal(made.get('slow'), 1);
    assert.equal(cache.bytes, 1, 'slow resolved last: other went');
  });

  it('forgets a failed make (also one that throws before it awaits): the next use tries again', async () => {
    const cache = new LruCache<Uint8Array>(100, (v) => v.byteLength);
    await assert.rejects(cache.get('k', async () => Promise.reject(new Error('transient'))), /transient/);
    await assert.rejects(
      cache.get('k', () => {
        throw new Error('sync');
      }),
      /sync/,
    );
    assert.equal(cache.size, 0);
    assert.equal((await cache.get('k', async () => new Uint8Array(3))).byteLength, 3);
    assert.equal(cache.bytes, 3);
  });

  it('refuses a bound that is not a number >= 0', () => {
    for (const bad of [-1, Number.NaN]) assert.throws(() => new LruCache<Uint8Array>(bad, (v) => v.byteLength), /cache bound .* must be a number >= 0/);
  });
});
