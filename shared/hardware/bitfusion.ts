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

/** Which buffers each tile loop indexes (optimizer.tile_deps), in loopNames order: bit 0 wgt, 1 act, 2 out. */
const depMask = [0b110, 0b110, 0b110, 0b011, 0b101];

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

/**
 * Simulates one convolution (one group, the whole batch) the way BitFusion's optimizer does:
 * the best (fewest cycles, then least energy) tiling and loop order: the simulator's own
 * result, column for column. Cost tables use it as is: a search that accepted cycles within
 * even 1e-6 of the optimum can land on a schedule with a quarter of the simulator's energy
 * (VGG-7 conv5_1_b of the published sweep), because the fewest-cycles rule ignores energy.
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

  // Every feasible tiling with a lower bound on its cycles; the loop orders are then tried
  // in order of that bound until it exceeds the best found (same optimum, far less work).
  interface Candidate {
    lowerBound: number;
    counts: number[];
    b: number;
    oh: number;
    ow: number;
    ic: number;
    oc: number;
    wgt: number;
    act: number;
    out: number;
    compute: number;
    numTiles: number;
    /** Each tensor's DRAM traffic if every tile crossed the interface once (bits). */
    minWgt: number;
    minAct: number;
    minOut: number;
  }
  // A tiling, from the indices of its tile sizes; null when a tile overflows half a buffer.
  const tiling = (bi: number, oi: number, ici: number, oci: number): Candidate | null => {
    const b = bSizes[bi];
    const ow = Math.min(oSizes[oi], OW);
    const oh = Math.min(oSizes[oi], OH);
    const ic = icSizes[ici];
    const oc = ocSizes[oci];
    // Tile footprints in bits (optimizer.get_stats_fast).
    const wgt = ceilDiv(kh * kw * ic, lanes) * lanes * oc * wprec;
    const act = im2col ? ow * oh * kh * kw * ic * b * iprec : (kw + (ow - 1) * sw) * (kh + (oh - 1) * sh) * ic * b * iprec;
    const out = ow * oh * ceilDiv(oc, M) * M * b * OUT_BITS;
    if (wgt > half[0] || act > half[1] || out > half[2]) return null;
    // Tile counts in loopNames order: B, OW, OH, IC, OC.
    const counts = [ceilDiv(B, b), ceilDiv(OW, ow), ceilDiv(OH, oh), ceilDiv(IC, ic), ceilDiv(OC, oc)];
    const [nB, nOw, nOh, nIc, nOc] = counts;
    const nPix = nOw * nOh;
    const numTiles = nB * nPix * nIc * nOc;
    // numTiles x tileComputeCycles (inlined: this runs for every tiling).
    const perTile = im2col ? b * oh * ow * ceilDiv(oc, M) * ceilDiv(kh * kw * ic, lanes) : b * ceilDiv(oc, M) * ow * oh * kw * kh * ceilDiv(ic, lanes);
    const compute = numTiles * perTile;
    const minWgt = wgt * nIc * nOc;
    const minAct = act * nB * nPix * nIc;
    const minOut = out * nB * nPix * nOc;
    // Bounds: the first read and last write never overlap compute; and every tile of each
    // tensor crosses the interface at least once (cycles >= DRAM bits / bandwidth).
    const lowerBound = Math.max(compute + ceilDiv(wgt + act + out, bw) + ceilDiv(out, bw), ceilDiv(minWgt + minAct + 2 * minOut, bw));
    return { lowerBound, counts, b, oh, ow, ic, oc, wgt, act, out, compute, numTiles, minWgt, minAct, minOut };
  };
  const candidates: Candidate[] = [];
  for (let bi = 0; bi < bSizes.length; bi++) {
    for (let oi = 0; oi < oSizes.length; oi++) {
      for (let ici = 0; ici < icSizes.length; ici++) {
        for (let oci = 0; oci < ocSizes.length; oci++) {
          const c = tiling(bi, oi, ici, oci);
          if (c) candidates.push(c);
        }
      }
    }
  }

  let best = null as BitFusionStats | null;
  // Loop orders are explored innermost first (the order promotion walks them), depth first,
  // branching only on loops whose position can matter (see explore).
  const nums = [0, 0, 0, 0, 0];
  // The loops chosen so far, innermost first (a stack of depth pathLength).
  const path = [0, 0, 0, 0, 0];
  let pathLength = 0;
  let cand: Candidate;
  let inner: ReturnType<typeof innerAccesses>;

  const leaf = (s0: number, s1: number, s2: number, m0: number, m1: number, m2: number): void => {
    const dramRead = s0 + s1 + s2;
    const dramWrite = s2; // output tiles are read back (partial sums) and written as often
    const initialReads = m0 + m1 + m2;
    const latency = ceilDiv(initialReads, bw) + ceilDiv(m2, bw);
    const middle = dramRead + dramWrite - initialReads - m2;
    const stalls = Math.max(0, ceilDiv(middle, bw) - cand.compute) + latency;
    const cycles = cand.compute + stalls;
    if (best && cycles > best.cycles) return;
    const obufRead = s2 + inner.outRead;
    const obufWrite = s2 + inner.outWrite;
    const energyPj = energyAt(s0, s1, s2);
    if (best && cycles === best.cycles && energyPj >= best.energyPj) return;
    // The path runs innermost first; the order is reported outermost first, single-tile loops last.
    const chosen = path
      .slice(0, pathLength)
      .reverse()
      .map((l) => loopNames[l]);
    best = {
      cycles,
      memWaitCycles: stalls,
      wbufRead: inner.wgtRead,
      wbufWrite: s0,
      ibufRead: inner.actRead,
      ibufWrite: s1,
      obufRead,
      obufWrite,
      dramRead,
      dramWrite,
      energyPj,
      tiling: {
        'B/b': [cand.counts[0], cand.b],
        'OW/ow': [cand.counts[1], cand.ow],
        'OH/oh': [cand.counts[2], cand.oh],
        'IC/ic': [cand.counts[3], cand.ic],
        'OC/oc': [cand.counts[4], cand.oc],
      },
      order: fullOrder(chosen),
    };
  };

  // Energy grows with each buffer's DRAM traffic (s0 wgt, s1 act, s2 out, read back and written).
  const energyAt = (s0: number, s1: number, s2: number): number =>
    cand.compute * e.coreDynamicPjPerCycle +
    inner.wgtRead * e.wbufReadPjPerBit +
    s0 * e.wbufWritePjPerBit +
    inner.actRead * e.ibufReadPjPerBit +
    s1 * e.ibufWritePjPerBit +
    (s2 + inner.outRead) * e.obufReadPjPerBit +
    (s2 + inner.outWrite) * e.obufWritePjPerBit +
    (s0 + s1 + 2 * s2) * e.dramPjPerBit;

  // Branch and bound: every order below this node multiplies a promoted buffer by at least
  // its remaining dependent loops and the others by all remaining loops, and keeps the
  // current first-read/last-write sizes or larger; if even that cannot beat the best, stop.
  const cannotWin = (rest: number, flags: number, s0: number, s1: number, s2: number, m0: number, m1: number, m2: number): boolean => {
    if (!best) return false;
    let all = 1;
    let p0 = 1;
    let p1 = 1;
    let p2 = 1;
    for (let l = 0; l < 5; l++) {
      if (!(rest & (1 << l))) continue;
      all *= nums[l];
      if (depMask[l] & 1) p0 *= nums[l];
      if (depMask[l] & 2) p1 *= nums[l];
      if (depMask[l] & 4) p2 *= nums[l];
    }
    const l0 = s0 * (flags & 1 ? p0 : all);
    const l1 = s1 * (flags & 2 ? p1 : all);
    const l2 = s2 * (flags & 4 ? p2 : all);
    const minCycles = Math.max(cand.compute + ceilDiv(m0 + m1 + m2, bw) + ceilDiv(m2, bw), ceilDiv(l0 + l1 + 2 * l2, bw));
    if (minCycles > best.cycles) return true;
    return minCycles === best.cycles && energyAt(l0, l1, l2) >= best.energyPj;
  };

  // Two loops indexing the same buffers with the same tile count (OW and OH of a square
  // map, often B too) are interchangeable: only the first of such twins is branched on.
  const twinBefore = (rest: number, l: number): boolean => {
    for (let k = 0; k < l; k++) if (rest & (1 << k) && depMask[k] === depMask[l] && nums[k] === nums[l]) return true;
    return false;
  };

  // flags: bit i set while buffer i (0 wgt, 1 act, 2 out) is still promoted.
  const explore = (rest: number, flags: number, s0: number, s1: number, s2: number, m0: number, m1: number, m2: number): void => {
    // A loop that indexes no buffer still being promoted only multiplies the others, which
    // are multiplied by every outer loop anyway: its position is irrelevant, take it now.
    let branching = 0;
    const depth = pathLength;
    for (let l = 0; l < 5; l++) {
      if (!(rest & (1 << l))) continue;
      if (depMask[l] & flags) branching |= 1 << l;
      else {
        path[pathLength++] = l;
        if (!(flags & 1)) s0 *= nums[l];
        if (!(flags & 2)) s1 *= nums[l];
        if (!(flags & 4)) s2 *= nums[l];
      }
    }
    if (branching === 0) leaf(s0, s1, s2, m0, m1, m2);
    else if (!cannotWin(branching, flags, s0, s1, s2, m0, m1, m2)) branchOn(branching, flags, s0, s1, s2, m0, m1, m2);
    pathLength = depth;
  };

  const branchOn = (rest: number, flags: number, s0: number, s1: number, s2: number, m0: number, m1: number, m2: number): void => {
    for (let l = 0; l < 5; l++) {
      if (!(rest & (1 << l)) || twinBefore(rest, l)) continue;
      const num = nums[l];
      const d = depMask[l];
      let f = flags;
      let t0 = s0;
      let t1 = s1;
      let t2 = s2;
      let n0 = m0;
      let n1 = m1;
      let n2 = m2;
      if (!(f & 1)) t0 *= num;
      else if (d & 1) {
        t0 *= num;
        if (t0 > half[0]) f &= ~1;
        else n0 = t0;
      }
      if (!(f & 2)) t1 *= num;
      else if (d & 2) {
        t1 *= num;
        if (t1 > half[1]) f &= ~2;
        else n1 = t1;
      }
      if (!(f & 4)) t2 *= num;
      else if (d & 4) {
        t2 *= num;
        if (t2 > half[2]) f &= ~4;
        else n2 = t2;
      }
      path[pathLength++] = l;
      explore(rest & ~(1 << l), f, t0, t1, t2, n0, n1, n2);
      pathLength--;
    }
  };

  const evaluate = (c: Candidate): void => {
    cand = c;
    // SRAM accesses of the inner loops do not depend on the tile loop order.
    inner = innerAccesses(target, { kh, kw, ic: c.ic, oc: c.oc, oh: c.oh, ow: c.ow, b: c.b }, iprec, wprec, im2col, c.numTiles, pf);
    if (best && c.lowerBound >= best.cycles) {
      // It can at best tie on cycles: skip it unless it could beat the best energy.
      const minEnergyPj =
        c.compute * e.coreDynamicPjPerCycle +
        inner.wgtRead * e.wbufReadPjPerBit +
        c.minWgt * e.wbufWritePjPerBit +
        inner.actRead * e.ibufReadPjPerBit +
        c.minAct * e.ibufWritePjPerBit +
        (c.minOut + inner.outRead) * e.obufReadPjPerBit +
        (c.minOut + inner.outWrite) * e.obufWritePjPerBit +
        (c.minWgt + c.minAct + 2 * c.minOut) * e.dramPjPerBit;
      if (minEnergyPj >= best.energyPj) return;
    }
    let active = 0;
    for (let l = 0; l < 5; l++) {
      nums[l] = c.counts[l];
      // Loops with one tile never change promotion.
      if (nums[l] > 1) active |= 1 << l;
    }
    explore(active, 7, c.wgt, c.act, c.out, c.wgt, c.act, c.out);
  };

  // The tiling with the smallest bound first; then only the tilings whose bound does not
  // exceed the best found, in order of their bound (same optimum, less sorting).
  let first = -1;
  candidates.forEach((c, i) => {
    if (first < 0 || c.lowerBound < candidates[first].lowerBound) first = i;
  });
  if (first >= 0) evaluate(candidates[first]);
  const rest = candidates.filter((c, i) => i !== first && (!best || c.lowerBound <= best.cycles)).sort((x, y) => x.lowerBound - y.lowerBound);
  for (const c of rest) {
    if (best && c.lowerBound > best.cycles) break;
    evaluate(c);
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

/**
 * Whether a layer is lowered by im2col. BitFusion's simulator does so for the convolution that
 * reads the network input (a 1-3 channel image), where channel-wise mapping would leave most of
 * the N input lanes idle. haq applies it to the first quantizable layer when it is an ungrouped
 * convolution with fewer input channels than the array has rows; a first layer with 64 input
 * channels (one layer cut out of a network) runs channel-wise, as it would inside the network.
 */
export function usesIm2col(target: Pick<BitFusionTarget, 'n'>, g: ConvGeometry): boolean {
  return g.first && !g.linear && g.groups === 1 && g.icPerGroup < target.n;
}

export interface BitFusionLayerCost {
  cycles: number;
  energyPj: number;
  /** The DRAM traffic takes longer at the interface width than the compute cycles: memory-bound. */
  memoryBound: boolean;
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
    // fc layers never use im2col (simulator.get_FC_cycles); the image-reading first conv does.
    im2col: usesIm2col(target, g),
  };
  const key = `${args.kh},${args.kw},${args.oh},${args.ow},${args.sh},${args.sw},${args.ic},${args.oc},${args.b},${aBits},${wBits},${args.im2col}`;
  let stats = memo?.get(key);
  if (!stats) {
    stats = simulateBitFusionConv(target, args);
    memo?.set(key, stats);
  }
  const computeCycles = stats.cycles - stats.memWaitCycles;
  const memoryBound = (stats.dramRead + stats.dramWrite) / target.bandwidthBitsPerCycle > computeCycles;
  return { cycles: stats.cycles * g.groups, energyPj: stats.energyPj * g.groups, memoryBound };
}
