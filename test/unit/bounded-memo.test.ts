/**
 * The bytes-bounded memo (shared/bounded-memo.ts, over lru-cache): the bound holds after every
 * value (a value larger than it is returned, not held), the least recently used go first, one key
 * made once at a time even when newer values push it out, failures forgotten.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { boundedMemo } from '../../shared/bounded-memo';

/** A memo of `key` -> `bytes` zero bytes that counts how often each key was made. */
function counted(maxBytes: number) {
  const made = new Map<string, number>();
  const memo = boundedMemo<Uint8Array>(maxBytes, (v) => v.byteLength);
  const get = (key: string, bytes: number) =>
    memo.get(key, async () => {
      made.set(key, (made.get(key) ?? 0) + 1);
      return new Uint8Array(bytes);
    });
  return { memo, made, get };
}

describe('boundedMemo', () => {
  for (const { maxBytes, sizes } of [
    { maxBytes: 0, sizes: [1, 2, 0, 3] },
    { maxBytes: 10, sizes: [4, 4, 4, 4, 1, 11, 2] },
    { maxBytes: 100, sizes: [30, 30, 30, 30, 30, 5, 160, 60] },
  ]) {
    it(`holds at most ${maxBytes} bytes after each of ${sizes.length} values; each value returned whole`, async () => {
      const { memo, get } = counted(maxBytes);
      for (const [i, n] of sizes.entries()) {
        assert.equal((await get(`k${i}`, n)).byteLength, n);
        assert.ok(memo.bytes <= maxBytes, `${memo.bytes} bytes held after k${i}`);
      }
    });
  }

  it('drops the least recently used; a value larger than the bound is made on every use', async () => {
    const { memo, made, get } = counted(10);
    await get('a', 4);
    await get('b', 4);
    await get('a', 4); // a is now the most recently used
    await get('c', 4); // 12 bytes: b goes
    assert.equal(memo.bytes, 8);
    await get('a', 4);
    assert.equal(made.get('a'), 1, 'a was kept');
    await get('b', 4);
    assert.equal(made.get('b'), 2, 'b was dropped and made again');
    await get('huge', 11);
    await get('huge', 11);
    assert.equal(made.get('huge'), 2, 'not held');
    assert.equal(memo.bytes, 8, 'and it dropped nothing');
  });

  it('concurrent uses of one key share one make, also when newer values push it out meanwhile', async () => {
    const { memo, made } = counted(4);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = () =>
      memo.get('slow', async () => {
        made.set('slow', (made.get('slow') ?? 0) + 1);
        await gate;
        return new Uint8Array(2);
      });
    const [p1, p2] = [slow(), slow()];
    await memo.get('other', async () => new Uint8Array(4)); // fills the bound while slow is pending
    release();
    const [v1, v2] = [await p1, await p2];
    assert.equal(v1, v2);
    assert.equal(v1.byteLength, 2);
    assert.equal(made.get('slow'), 1);
    assert.ok(memo.bytes <= 4, `${memo.bytes} bytes held`);
  });

  it('forgets a failed make (also one that throws before it awaits): the next use tries again', async () => {
    const memo = boundedMemo<Uint8Array>(100, (v) => v.byteLength);
    await assert.rejects(memo.get('k', async () => Promise.reject(new Error('transient'))), /transient/);
    await assert.rejects(
      memo.get('k', () => {
        throw new Error('sync');
      }),
      /sync/,
    );
    assert.equal(memo.bytes, 0);
    assert.equal((await memo.get('k', async () => new Uint8Array(3))).byteLength, 3);
    assert.equal(memo.bytes, 3);
  });

  it('refuses a bound that is not a finite number >= 0', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => boundedMemo<Uint8Array>(bad, (v) => v.byteLength), /cache bound .* must be a finite number >= 0/);
    }
  });
});
