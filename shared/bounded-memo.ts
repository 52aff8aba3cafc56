/**
 * A memo of asynchronous results bounded by bytes, over lru-cache (its `maxSize` with a
 * `sizeCalculation` in bytes): once the resolved values together exceed `maxBytes`, the least
 * recently used are dropped until they fit again. A value larger than the whole bound is returned
 * but not held (lru-cache's `maxEntrySize`, here the bound), so the bound always holds. A dropped
 * value is made again on its next use: over a pure `make`, the bounded memo returns exactly what
 * an unbounded one would.
 *
 * Concurrent uses of one key share one `make` (lru-cache's fetch); a rejected one is forgotten, so
 * the next use tries again. Values still being made count for nothing.
 */
import { LRUCache } from 'lru-cache';
import { InvalidInputError } from './errors';

export interface BoundedMemo<V> {
  /** The value for `key`: the held one (now the most recently used), else `make()`'s, held if it fits. */
  get(key: string, make: () => Promise<V>): Promise<V>;
  /** Bytes of the values held now (at most the bound). */
  readonly bytes: number;
}

export function boundedMemo<V extends object>(maxBytes: number, sizeBytes: (value: V) => number): BoundedMemo<V> {
  if (!(maxBytes >= 0) || !Number.isFinite(maxBytes)) throw new InvalidInputError(`cache bound ${maxBytes} bytes must be a finite number >= 0`);
  // lru-cache wants sizes >= 1: each entry counts one unit more than its bytes (a pending one 0 + 1)
  // and the bound one more than maxBytes, so the values held never exceed maxBytes (0 holds none).
  const cache = new LRUCache<string, V, () => Promise<V>>({
    maxSize: Math.floor(maxBytes) + 1,
    sizeCalculation: (value) => Math.ceil(sizeBytes(value)) + 1,
    fetchMethod: (_key, _stale, { context: make }) => make(),
    // A pending make pushed out by newer values still delivers its value (not held).
    ignoreFetchAbort: true,
  });
  return {
    get: (key, make) => cache.forceFetch(key, { context: make }),
    get bytes() {
      return cache.calculatedSize - cache.size;
    },
  };
}
