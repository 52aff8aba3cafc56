/**
 * A memo of asynchronous results bounded by bytes. Values are kept in order of last use; once a
 * value resolves and the resolved values together exceed `maxBytes`, the least recently used
 * ones are dropped until they fit again (the newest value is always kept, so a single value
 * larger than the bound is held alone). A dropped value is made again on its next use: over a
 * pure `make`, the bounded memo returns exactly what an unbounded one would.
 *
 * Concurrent uses of one key share one promise; a rejected promise is forgotten, so the next use
 * tries again. Values still being made count for nothing and are never dropped.
 */
import { InvalidInputError } from './errors';

interface Entry<V> {
  value: Promise<V>;
  /** Size of the resolved value (null while it is being made). */
  bytes: number | null;
}

export class LruCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private held = 0;

  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (value: V) => number,
  ) {
    if (!(maxBytes >= 0)) throw new InvalidInputError(`cache bound ${maxBytes} bytes must be a number >= 0`);
  }

  /** Bytes of the resolved values held now (at most maxBytes, or one value larger than it). */
  get bytes(): number {
    return this.held;
  }

  /** Keys held (resolved or being made). */
  get size(): number {
    return this.entries.size;
  }

  /** The value for `key`: the held one (now the most recently used), else `make()`'s, held. */
  get(key: string, make: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value;
    }
    const entry: Entry<V> = { value: (async () => make())(), bytes: null };
    this.entries.set(key, entry);
    entry.value.then(
      (value) => {
        if (this.entries.get(key) !== entry) return;
        entry.bytes = this.sizeOf(value);
        this.held += entry.bytes;
        this.evictBeyondBound(key);
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return entry.value;
  }

  /** Drops the least recently used resolved values other than `keep` until the rest fit. */
  private evictBeyondBound(keep: string): void {
    for (const [key, entry] of this.entries) {
      if (this.held <= this.maxBytes) return;
      if (key === keep || entry.bytes === null) continue;
      this.entries.delete(key);
      this.held -= entry.bytes;
    }
  }
}
