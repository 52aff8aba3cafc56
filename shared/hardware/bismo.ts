import type { ConvGeometry } from './geometry';
import type { BismoTarget } from './targets';

/**
 * BISMO bit-serial matrix multiplication (Umuroglu, Rasnayake, Sjalander, FPL 2018) as HAQ's
 * latency tables cost it. A layer is one or more matrix products L (M x K weights, w bits) times
 * R (K x N activations, a bits) on a Dm x Dn array of Dk-bit binary dot-product units, run by
 * three decoupled stages: fetch (DRAM -> on-chip buffers), execute (binary tile products) and
 * result (accumulators -> DRAM). docs/hardware.md derives every term; the constants below are
 * what the fit to HAQ's own BISMO cloud table (test/fixtures/reference/haq-bismo-cloud) found.
 *
 * Units: one Dk-bit word per row/column and bit plane is the unit of storage; `kWords` =
 * ceil(K/Dk) words per row or column. Executing one Dm x Dn tile for one (weight plane,
 * activation plane) pair takes kWords cycles. Fetching one word takes Dk / fetchBitsPerCycle
 * cycles on that operand's own read channel (weights and activations are read in parallel).
 *
 * Schedules (the cheaper one is used, as the reference table does):
 * - stream: weights stream in while the first column tile executes and stay on chip; each
 *   activation column tile (one plane) is loaded into a single buffer, overlapping only the
 *   first weight tile's execution.
 * - preload: all weights are loaded first; activation column tiles are double-buffered, so
 *   loading the next tile overlaps the whole execution of the current one.
 * Weights whose planes do not fit the weight buffers are split into blocks of rows that do,
 * one after another (the activations are read once per block; docs/hardware.md).
 */
export type BismoStage = 'fetch' | 'execute' | 'result';
export type BismoSchedule = 'stream' | 'preload';

export interface BismoStages {
  /** Busy cycles of each stage: the busier of the two read channels, the array, the write channel. */
  fetchCycles: number;
  executeCycles: number;
  resultCycles: number;
  /** Cycles of the layer (or product): the chosen schedule, never below any stage's busy time. */
  cycles: number;
  /** The stage busy for the largest share of the cycles: the one that bounds the layer. */
  bound: BismoStage;
  schedule: BismoSchedule;
}

/** One matrix product shape, run `count` times one after another. */
export interface MatmulShape {
  count: number;
  m: number;
  k: number;
  n: number;
}

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

/**
 * The matrix products of a layer on a Dm-row array:
 * - convolution by im2col, one image after another (batching "image": the reference costs
 *   batch 16 as exactly 16 single-image products): M = output channels, K = kh*kw*input
 *   channels, N = output pixels (batching "batch": all images' pixels in one product);
 * - grouped/depthwise convolution: floor(Dm / out-channels-per-group) groups share one product
 *   with a block-diagonal weight matrix (depthwise on a 16-row array: 16 channels, K = 9*16),
 *   so ceil(groups / that) products per image;
 * - linear layers: one product with the batch's rows as the N columns.
 */
export function bismoMatmulShape(target: Pick<BismoTarget, 'dm' | 'batching'>, g: ConvGeometry): MatmulShape {
  const pack = g.groups > 1 && g.ocPerGroup < target.dm ? Math.min(g.groups, Math.floor(target.dm / g.ocPerGroup)) : 1;
  const products = ceilDiv(g.groups, pack);
  const m = g.ocPerGroup * pack;
  const k = g.kh * g.kw * g.icPerGroup * pack;
  if (g.linear) return { count: products, m, k, n: g.batch };
  if (target.batching === 'batch') return { count: products, m, k, n: g.oh * g.ow * g.batch };
  return { count: products * g.batch, m, k, n: g.oh * g.ow };
}

/** Stage busy times and cycles of one product (kWords given: the caller may split K). */
function productStages(t: BismoTarget, m: number, kWords: number, n: number, w: number, a: number): BismoStages | null {
  const { dm, dn, dk } = t;
  const lhsWordCycles = dk / t.lhsFetchBitsPerCycle;
  const rhsWordCycles = dk / t.rhsFetchBitsPerCycle;
  const mTiles = ceilDiv(m, dm);
  const fullTiles = Math.floor(n / dn);
  const rest = n % dn;
  const nTiles = fullTiles + (rest > 0 ? 1 : 0);
  const pairCycles = kWords; // one tile, one (weight plane, activation plane) pair
  const fetchFull = dn * kWords * rhsWordCycles; // one activation column tile, one plane
  const fetchRest = rest * kWords * rhsWordCycles;
  const weightFetch = m * kWords * w * lhsWordCycles; // every weight row, word and plane once
  const weightsFit = mTiles * kWords * w <= t.lhsBufferWords;

  const candidates: Array<{ schedule: BismoSchedule; cycles: number }> = [];
  if (weightsFit && kWords <= t.rhsBufferWords) {
    // stream: a column tile costs its load overlapped with one weight tile, then the other weight tiles.
    const tile = (load: number) => Math.max(load, w * pairCycles) + (mTiles - 1) * w * pairCycles;
    const execPath = a * (fullTiles * tile(fetchFull) + (rest > 0 ? tile(fetchRest) : 0)) + (w - 1);
    // Fetch-bound path: all weight words, then the last weight tile's products (one sync cycle per plane pair).
    const fetchPath = w * (m * kWords * lhsWordCycles - 1) + w * a * (fullTiles * pairCycles + 1);
    candidates.push({ schedule: 'stream', cycles: Math.max(execPath, fetchPath) });
  }
  if (weightsFit && 2 * kWords <= t.rhsBufferWords) {
    // preload: weights first, then the array works through the column tiles of every activation plane.
    const tileExec = mTiles * w * pairCycles;
    const execPath = weightFetch + a * ((nTiles - 1) * tileExec + 1) - 1;
    const loadPath = a * (fullTiles * Math.max(fetchFull, tileExec) + (rest > 0 ? Math.max(fetchRest, tileExec) : 0) + tileExec - 1);
    candidates.push({ schedule: 'preload', cycles: Math.max(execPath, loadPath) });
  }
  if (candidates.length === 0) return null;
  const best = candidates.reduce((x, y) => (y.cycles < x.cycles ? y : x));

  const executeCycles = a * nTiles * mTiles * w * pairCycles;
  const fetchCycles = Math.max(weightFetch, a * n * kWords * rhsWordCycles);
  const resultCycles = t.resultBitsPerCycle === undefined ? 0 : (mTiles * dm * nTiles * dn * t.accumulatorBits) / t.resultBitsPerCycle;
  const cycles = Math.ceil(Math.max(best.cycles, fetchCycles, executeCycles, resultCycles));
  return { fetchCycles, executeCycles, resultCycles, cycles, bound: boundOf(fetchCycles, executeCycles, resultCycles), schedule: best.schedule };
}

function boundOf(fetch: number, execute: number, result: number): BismoStage {
  if (execute >= fetch && execute >= result) return 'execute';
  return fetch >= result ? 'fetch' : 'result';
}

/**
 * One product, split when its weights do not fit the weight buffers: into blocks of weight
 * rows whose planes fit (each block runs every column tile and plane of the activations, which
 * are therefore read once per block), and, when not even one word-deep weight tile fits, into
 * chunks of K (partial sums stay in the accumulators).
 */
function splitStages(t: BismoTarget, m: number, kWords: number, n: number, w: number, a: number): BismoStages {
  const whole = productStages(t, m, kWords, n, w, a);
  if (whole) return whole;
  const tilesPerBlock = Math.floor(t.lhsBufferWords / (kWords * w));
  if (tilesPerBlock >= 1 && kWords <= t.rhsBufferWords) {
    const rows = tilesPerBlock * t.dm;
    const parts: BismoStages[] = [];
    for (let done = 0; done < m; done += rows) parts.push(splitStages(t, Math.min(rows, m - done), kWords, n, w, a));
    return sumStages(parts, 1);
  }
  const chunkWords = Math.min(Math.floor(t.lhsBufferWords / w), t.rhsBufferWords);
  if (chunkWords < 1) {
    throw new RangeError(`BISMO target ${t.name}: buffers of ${t.lhsBufferWords} words cannot hold one ${w}-bit weight word; increase lhsBufferWords`);
  }
  const parts: BismoStages[] = [];
  for (let done = 0; done < kWords; done += chunkWords) parts.push(splitStages(t, m, Math.min(chunkWords, kWords - done), n, w, a));
  return sumStages(parts, 1);
}

function sumStages(parts: BismoStages[], times: number): BismoStages {
  const sum = (f: (s: BismoStages) => number) => times * parts.reduce((acc, s) => acc + f(s), 0);
  const fetchCycles = sum((s) => s.fetchCycles);
  const executeCycles = sum((s) => s.executeCycles);
  const resultCycles = sum((s) => s.resultCycles);
  return {
    fetchCycles,
    executeCycles,
    resultCycles,
    cycles: sum((s) => s.cycles),
    bound: boundOf(fetchCycles, executeCycles, resultCycles),
    schedule: parts[0].schedule,
  };
}

/** Stages of one matrix product (M x K weights at w bits, K x N activations at a bits). */
export function bismoMatmulStages(target: BismoTarget, s: { m: number; k: number; n: number }, wBits: number, aBits: number): BismoStages {
  return splitStages(target, s.m, ceilDiv(s.k, target.dk), s.n, wBits, aBits);
}

/** Stages and cycles of a whole layer: its products one after another. */
export function bismoLayerStages(target: BismoTarget, g: ConvGeometry, wBits: number, aBits: number): BismoStages {
  const shape = bismoMatmulShape(target, g);
  return sumStages([bismoMatmulStages(target, shape, wBits, aBits)], shape.count);
}

export function bismoLayerCycles(target: BismoTarget, g: ConvGeometry, wBits: number, aBits: number): number {
  return bismoLayerStages(target, g, wBits, aBits).cycles;
}
