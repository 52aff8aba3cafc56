import type { ConvGeometry } from './geometry';
import type { BitFusionTarget } from './targets';

/**
 * BitFusion's analytical simulator (Sharma et al., ISCA 2018; hsharma35/bitfusion
 * simulator/accelerator.py and optimizer/optimizer.py), re-implemented from its equations:
 *
 * - speed factor pf = floor(pmax/max(a,pmin)) * floor(pmax/max(w,pmin)): a 2-bit BitBrick
 *   array fuses into fewer, wider units, so low bits run more MACs per cycle;
 * - compute cycles of one tile: b*ceil(oc/M)*oh*ow*kh*kw*ceil(ic/(N*pf)), or with im2col
 *   (first layer) b*oh*ow*ceil(oc/M)*ceil(kh*kw*ic/(N*pf));
 * - a search over power-of-two tiles of B, OH=OW, IC (and OC in multiples of M) whose tile
 *   fits half of each buffer (double buffering), and over the loop orders; a tile's DRAM
 *   traffic is promoted outwards while the enlarged footprint still fits half the buffer;
 * - cycles = compute + max(0, ceil(middle DRAM bits / bandwidth) - compute) + the first read
 *   and last write that cannot overlap (memory stalls);
 * - energy = busy cycles x core pJ/cycle + SRAM bits x pJ/bit + DRAM bits x 15 pJ/bit, with the
 *   inner loop order (input, output or weight stationary) that moves the fewest SRAM bits.
 * The tile size of OH and OW is one number (square tiles) as in the original; non-square maps
 * use it on both axes, clamped to each.
 */

export interface BitFusionArgs {
  kh: number;
  kw: number;
  oh: number;
  ow: number;
  /** Stride along H and W. */
  sh: number;
  sw: number;
  ic: number;
  oc: number;
  b: number;
  /** Activation (input) bits and weight bits. */
  iprec: number;
  wprec: number;
  im2col: boolean;
}

export interface BitFusionStats {
  cycles: number;
  memWaitCycles: number;
  wbufRead: number;
  wbufWrite: number;
  ibufRead: number;
  ibufWrite: number;
  obufRead: number;
  obufWrite: number;
  dramRead: number;
  dramWrite: number;
  energyPj: number;
  /** [number of tiles, tile size] per loop, and the loop order outermost first. */
  tiling: Record<LoopName, [number, number]>;
  order: LoopName[];
}

export type LoopName = 'B/b' | 'OW/ow' | 'OH/oh' | 'IC/ic' | 'OC/oc';
const loopNames: LoopName[] = ['B/b', 'OW/ow', 'OH/oh', 'IC/ic', 'OC/oc'];

/** Which buffers a tile loop indexes (optimizer.tile_deps): [wgt, act, out]. */
const deps: Record<LoopName, [boolean, boolean, boolean]> = {
  'B/b': [false, true, true],
  'OW/ow': [false, true, true],
  'OH/oh': [false, true, true],
  'IC/ic': [true, true, false],
  'OC/oc': [true, false, true],
};

const OUT_BITS = 32; // partial sums are 32-bit (optimizer: oprec = 32)
const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

/** floor(pmax/max(a,pmin)) * floor(pmax/max(w,pmin)) (accelerator.get_perf_factor). */
export function perfFactor(target: Pick<BitFusionTarget, 'pmin' | 'pmax'>, iprec: number, wprec: number): number {
  return Math.floor(target.pmax / Math.max(iprec, target.pmin)) * Math.floor(target.pmax / Math.max(wprec, target.pmin));
}

/** Compute cycles of one tile (accelerator.get_compute_cycles). */
export function tileComputeCycles(
  target: Pick<BitFusionTarget, 'n' | 'm' | 'pmin' | 'pmax'>,
  t: { ic: number; oc: number; oh: number; ow: number; b: number; kh: number; kw: number },
  iprec: number,
  wprec: number,
  im2col: boolean,
): number {
  const lanes = target.n * perfFactor(target, iprec, wprec);
  if (im2col) return t.b * t.oh * t.ow * ceilDiv(t.oc, target.m) * ceilDiv(t.kh * t.kw * t.ic, lanes);
  return t.b * ceilDiv(t.oc, target.m) * t.ow * t.oh * t.kw * t.kh * ceilDiv(t.ic, lanes);
}

/** Distinct power-of-two tile sizes min(2^k, total) * unit for k = 0..ceil(log2(total/unit)). */
function tileSizes(total: number, unit = 1): number[] {
  const steps = Math.ceil(Math.log2(Math.ceil(total / unit)));
  const sizes: number[] = [];
  for (let k = 0; k <= Math.max(0, steps); k++) {
    const s = Math.min(2 ** k * unit, total);
    if (sizes[sizes.length - 1] !== s) sizes.push(s);
  }
  return sizes;
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs.slice()];
  const out: T[][] = [];
  xs.forEach((x, i) => {
    for (const rest of permutations([...xs.slice(0, i), ...xs.slice(i + 1)])) out.push([x, ...rest]);
  });
  return out;
}
const permutationCache = new Map<string, LoopName[][]>();
function ordersOf(active: LoopName[]): LoopName[][] {
  const key = active.join(',');
  let found = permutationCache.get(key);
  if (!found) {
    found = permutations(active);
    permutationCache.set(key, found);
  }
  return found;
}

/**
 * Simulates one convolution (one group, the whole batch) the way BitFusion's optimizer does:
 * the best (fewest cycles, then least energy) tiling and loop order.
 */
export function simulateBitFusionConv(target: BitFusionTarget, args: BitFusionArgs): BitFusionStats {
  const { kh, kw, oh: OH, ow: OW, sh, sw, ic: IC, oc: OC, b: B, iprec, wprec, im2col } = args;
  const { n: N, m: M, energy: e } = target;
  const bw = target.bandwidthBitsPerCycle;
  const half = [(target.wbufBytes * 8) / 2, (target.ibufBytes * 8) / 2, (target.obufBytes * 8) / 2];
  const pf = perfFactor(target, iprec, wprec);
  const lanes = N * pf;

  const bSizes = tileSizes(B);
  // OW and OH share one tile size (the original tiles a square map with ow = oh).
  const oSizes = tileSizes(Math.max(OH, OW));
  const icSizes = tileSizes(IC);
  const ocSizes = im2col ? tileSizes(OC) : tileSizes(OC, M);

  let best: BitFusionStats | null = null;
  const sizes = [0, 0, 0];
  const maxSizes = [0, 0, 0];

  for (const b of bSizes) {
    for (const o of oSizes) {
      const ow = Math.min(o, OW);
      const oh = Math.min(o, OH);
      for (const ic of icSizes) {
        for (const oc of ocSizes) {
          // Tile footprints in bits (optimizer.get_stats_fast).
          const wgt = ceilDiv(kh * kw * ic, lanes) * lanes * oc * wprec;
          const act = im2col ? ow * oh * kh * kw * ic * b * iprec : (kw + (ow - 1) * sw) * (kh + (oh - 1) * sh) * ic * b * iprec;
          const out = ow * oh * ceilDiv(oc, M) * M * b * OUT_BITS;
          if (wgt > half[0] || act > half[1] || out > half[2]) continue;

          const tiles: Record<LoopName, [number, number]> = {
            'B/b': [ceilDiv(B, b), b],
            'OW/ow': [ceilDiv(OW, ow), ow],
            'OH/oh': [ceilDiv(OH, oh), oh],
            'IC/ic': [ceilDiv(IC, ic), ic],
            'OC/oc': [ceilDiv(OC, oc), oc],
          };
          const numTiles = tiles['B/b'][0] * tiles['OW/ow'][0] * tiles['OH/oh'][0] * tiles['IC/ic'][0] * tiles['OC/oc'][0];
          const compute = numTiles * tileComputeCycles(target, { ic, oc, oh, ow, b, kh, kw }, iprec, wprec, im2col);
          // Lower bound: the first tile read and last tile write never overlap with compute.
          const lowerBound = compute + ceilDiv(wgt + act + out, bw) + ceilDiv(out, bw);
          if (best && lowerBound > best.cycles) continue;

          // SRAM accesses of the inner loops do not depend on the tile loop order.
          const inner = innerAccesses(target, { kh, kw, ic, oc, oh, ow, b }, iprec, wprec, im2col, numTiles, pf);

          // Loops with one tile never change promotion, so only orders of the others matter.
          const active = loopNames.filter((l) => tiles[l][0] > 1);
          for (const order of ordersOf(active)) {
            sizes[0] = wgt;
            sizes[1] = act;
            sizes[2] = out;
            maxSizes[0] = wgt;
            maxSizes[1] = act;
            maxSizes[2] = out;
            let p0 = true;
            let p1 = true;
            let p2 = true;
            for (let li = order.length - 1; li >= 0; li--) {
              const loop = order[li];
              const num = tiles[loop][0];
              const d = deps[loop];
              if (!p0) sizes[0] *= num;
              else if (d[0]) {
                sizes[0] *= num;
                if (sizes[0] > half[0]) p0 = false;
                else maxSizes[0] = sizes[0];
              }
              if (!p1) sizes[1] *= num;
              else if (d[1]) {
                sizes[1] *= num;
                if (sizes[1] > half[1]) p1 = false;
                else maxSizes[1] = sizes[1];
              }
              if (!p2) sizes[2] *= num;
              else if (d[2]) {
                sizes[2] *= num;
                if (sizes[2] > half[2]) p2 = false;
                else maxSizes[2] = sizes[2];
              }
            }
            // Output tiles are read back (partial sums) and written as often as they are filled.
            const dramRead = sizes[0] + sizes[1] + sizes[2];
            const dramWrite = sizes[2];
            const initialReads = maxSizes[0] + maxSizes[1] + maxSizes[2];
            const finalWrites = maxSizes[2];
            const latency = ceilDiv(initialReads, bw) + ceilDiv(finalWrites, bw);
            const middle = dramRead + dramWrite - initialReads - finalWrites;
            const stalls = Math.max(0, ceilDiv(middle, bw) - compute) + latency;
            const cycles = compute + stalls;
            if (best && cycles > best.cycles) continue;

            const obufRead = sizes[2] + inner.outRead;
            const obufWrite = sizes[2] + inner.outWrite;
            const energyPj =
              compute * e.coreDynamicPjPerCycle +
              inner.wgtRead * e.wbufReadPjPerBit +
              sizes[0] * e.wbufWritePjPerBit +
              inner.actRead * e.ibufReadPjPerBit +
              sizes[1] * e.ibufWritePjPerBit +
              obufRead * e.obufReadPjPerBit +
              obufWrite * e.obufWritePjPerBit +
              (dramRead + dramWrite) * e.dramPjPerBit;
            if (best && cycles === best.cycles && energyPj >= best.energyPj) continue;
            best = {
              cycles,
              memWaitCycles: stalls,
              wbufRead: inner.wgtRead,
              wbufWrite: sizes[0],
              ibufRead: inner.actRead,
              ibufWrite: sizes[1],
              obufRead,
              obufWrite,
              dramRead,
              dramWrite,
              energyPj,
              tiling: structuredClone(tiles),
              order: fullOrder(order),
            };
          }
        }
      }
    }
  }
  if (!best) {
    throw new RangeError(
      `no BitFusion tiling fits ${target.name}'s buffers for a ${kh}x${kw} conv with ${IC}->${OC} channels at ${wprec}/${iprec} bits; ` +
        'increase wbufBytes/ibufBytes/obufBytes',
    );
  }
  return best;
}

/** The active loops in the chosen order followed by the single-tile loops (their place is irrelevant). */
function fullOrder(active: LoopName[]): LoopName[] {
  return [...active, ...loopNames.filter((l) => !active.includes(l))];
}

/**
 * SRAM reads/writes of the loops inside one tile, for the cheapest of input-, output- and
 * weight-stationary orders (optimizer.get_stats_fast, "inner loop optimizations").
 */
function innerAccesses(
  target: BitFusionTarget,
  t: { kh: number; kw: number; ic: number; oc: number; oh: number; ow: number; b: number },
  iprec: number,
  wprec: number,
  im2col: boolean,
  numTiles: number,
  pf: number,
): { actRead: number; wgtRead: number; outRead: number; outWrite: number } {
  const lanes = target.n * pf;
  const isLoop = ceilDiv(t.oc, target.m) * target.m;
  const osLoop = im2col ? ceilDiv(t.ic * t.kh * t.kw, lanes) * lanes : ceilDiv(t.ic, lanes) * lanes * t.kh * t.kw;
  const wsLoop = t.b * t.oh * t.ow;
  const isCost = osLoop * wsLoop * (iprec + isLoop * (wprec + OUT_BITS));
  const osCost = isLoop * wsLoop * (OUT_BITS + osLoop * (iprec + wprec));
  const wsCost = osLoop * isLoop * (wprec + wsLoop * (iprec + OUT_BITS));
  const minCost = Math.min(isCost, osCost, wsCost);
  const k = t.kw * t.kh * t.ic;
  const pixels = t.oh * t.ow * t.b;
  let actRead: number;
  let out: number;
  let wgtRead: number;
  if (isCost === minCost) {
    actRead = numTiles * k * pixels * iprec;
    out = numTiles * k * pixels * t.oc * OUT_BITS;
    wgtRead = numTiles * k * pixels * t.oc * wprec;
  } else if (osCost === minCost) {
    actRead = numTiles * t.oc * pixels * k * iprec;
    out = numTiles * t.oc * pixels * OUT_BITS;
    wgtRead = numTiles * t.oc * pixels * k * wprec;
  } else {
    actRead = numTiles * k * t.oc * pixels * iprec;
    out = numTiles * k * t.oc * pixels * OUT_BITS;
    wgtRead = numTiles * k * t.oc * wprec;
  }
  return { actRead, wgtRead, outRead: out, outWrite: out };
}

export interface BitFusionLayerCost {
  cycles: number;
  energyPj: number;
}

/**
 * Cost of a whole layer: groups run one after another, each a conv simulated as above.
 * `memo` shares results between layers of the same shape within one cost table.
 */
export function bitFusionLayerCost(
  target: BitFusionTarget,
  g: ConvGeometry,
  wBits: number,
  aBits: number,
  memo?: Map<string, BitFusionStats>,
): BitFusionLayerCost {
  const args: BitFusionArgs = {
    kh: g.kh,
    kw: g.kw,
    oh: g.oh,
    ow: g.ow,
    sh: g.sh,
    sw: g.sw,
    ic: g.icPerGroup,
    oc: g.ocPerGroup,
    b: g.batch,
    iprec: aBits,
    wprec: wBits,
    // fc layers never use im2col (simulator.get_FC_cycles); the first conv does.
    im2col: g.first && !g.linear,
  };
  const key = `${args.kh},${args.kw},${args.oh},${args.ow},${args.sh},${args.sw},${args.ic},${args.oc},${args.b},${aBits},${wBits},${args.im2col}`;
  let stats = memo?.get(key);
  if (!stats) {
    stats = simulateBitFusionConv(target, args);
    memo?.set(key, stats);
  }
  return { cycles: stats.cycles * g.groups, energyPj: stats.energyPj * g.groups };
}
