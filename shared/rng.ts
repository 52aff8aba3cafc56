/**
 * Seeded pseudo-random numbers: xoshiro128** (Blackman & Vigna) with a state of four
 * uint32 words that can be saved in a checkpoint and restored, so a resumed search draws
 * exactly the numbers an uninterrupted one would. The core never calls Math.random.
 */
export type RngState = [number, number, number, number];

/** splitmix32 step: spreads a 32-bit seed over the state words. */
function splitmix32(x: number): [number, number] {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [x, (z ^ (z >>> 16)) >>> 0];
}

/**
 * A 32-bit seed derived from several parts, e.g. deriveSeed(seed, 'round', 3, 'policy', 1):
 * independent, reproducible streams for work done in parallel.
 */
export function deriveSeed(...parts: Array<number | string>): number {
  let h = 0x811c9dc5; // FNV-1a offset basis
  for (const part of parts) {
    const text = `${typeof part}:${part}|`;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  return splitmix32(h)[1];
}

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState) {
    this.s = new Uint32Array(4);
    if (Array.isArray(seed)) {
      this.s.set(seed);
    } else {
      let x = seed >>> 0;
      for (let i = 0; i < 4; i++) {
        const [nx, out] = splitmix32(x);
        x = nx;
        this.s[i] = out;
      }
    }
    if (this.s.every((w) => w === 0)) this.s[0] = 1; // the all-zero state is a fixed point
  }

  /** Saves the state; `new Rng(state)` continues the same sequence. */
  getState(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  /** Next uniform uint32. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal by Box-Muller (no cached second value, so the state alone is the whole state). */
  normal(mean = 0, sigma = 1): number {
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    return mean + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /**
   * Normal(mean, sigma) truncated to [lo, hi] by rejection, as HAQ's exploration noise
   * (scipy.stats.truncnorm). Falls back to clamping after 1000 rejections (sigma ~ 0).
   */
  truncatedNormal(mean: number, sigma: number, lo: number, hi: number): number {
    if (sigma <= 0) return Math.min(hi, Math.max(lo, mean));
    for (let i = 0; i < 1000; i++) {
      const x = this.normal(mean, sigma);
      if (x >= lo && x <= hi) return x;
    }
    return Math.min(hi, Math.max(lo, mean));
  }

  /** Fisher-Yates shuffle, returning a new array. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
