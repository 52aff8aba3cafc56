import type { ConvGeometry } from './geometry';
import type { BismoTarget } from './targets';

/**
 * BISMO bit-serial matrix multiplication (Umuroglu et al., FPL 2018). A layer is a matrix
 * product L (M x K, weights at w bits) x R (K x N, activations at a bits):
 *   conv via im2col: M = output channels of a group, K = kh*kw*input channels of a group,
 *   N = output pixels x batch; depthwise/grouped conv: one group after the other;
 *   linear: M = out features, K = in features, N = rows (batch).
 * Three decoupled stages overlap (BISMO Sec. III: fetch, execute, result with token queues),
 * so a layer takes about the slowest stage:
 *   execute = ceil(M/Dm) * ceil(N/Dn) * ceil(K/Dk) * w * a   (one binary Dm x Dn x Dk
 *             product per cycle, w*a bit-plane pairs with shift-and-add weights)
 *   fetch   = bit-plane bits read from DRAM / (AXI ports x width), where a matrix is read once
 *             when its stripe stays in the on-chip buffer across the other operand's tiles,
 *             else re-read for every tile of the other operand (the cheaper loop order wins)
 *   result  = ceil(M/Dm)*Dm * ceil(N/Dn)*Dn * accumulator bits / (AXI ports x width)
 *   cycles  = max(fetch, execute, result)
 */
export interface BismoStages {
  fetchCycles: number;
  executeCycles: number;
  resultCycles: number;
  cycles: number;
}

export interface MatmulShape {
  m: number;
  k: number;
  n: number;
}

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

export function bismoMatmulStages(target: BismoTarget, s: MatmulShape, wBits: number, aBits: number): BismoStages {
  const { dm, dn, dk } = target;
  const mTiles = ceilDiv(s.m, dm);
  const nTiles = ceilDiv(s.n, dn);
  const kWords = ceilDiv(s.k, dk); // Dk-bit words per row/column and bit plane
  const executeCycles = mTiles * nTiles * kWords * wBits * aBits;

  // Bit-planes are stored padded to whole Dk-bit words and whole array rows/columns.
  const lhsBits = mTiles * dm * kWords * dk * wBits;
  const rhsBits = nTiles * dn * kWords * dk * aBits;
  // A stripe (Dm rows of L, or Dn columns of R, all K, all bit planes) fits when its words fit one buffer.
  const lhsStripeFits = kWords * wBits <= target.lhsBufferWords;
  const rhsStripeFits = kWords * aBits <= target.rhsBufferWords;
  // The whole matrix fits when all of its stripes fit at once.
  const lhsAllFits = mTiles * kWords * wBits <= target.lhsBufferWords;
  const rhsAllFits = nTiles * kWords * aBits <= target.rhsBufferWords;
  // Order 1: L stripe outer, R inner. L read once if its stripe stays; R re-read per L stripe unless all of R fits.
  const lOuter = (lhsStripeFits ? lhsBits : lhsBits * nTiles) + (rhsAllFits ? rhsBits : rhsBits * mTiles);
  // Order 2: R stripe outer, L inner.
  const rOuter = (rhsStripeFits ? rhsBits : rhsBits * mTiles) + (lhsAllFits ? lhsBits : lhsBits * nTiles);
  const portBits = target.axiPorts * target.axiWidthBits;
  const fetchCycles = ceilDiv(Math.min(lOuter, rOuter), portBits);
  const resultCycles = ceilDiv(mTiles * dm * nTiles * dn * target.accumulatorBits, portBits);
  return { fetchCycles, executeCycles, resultCycles, cycles: Math.max(fetchCycles, executeCycles, resultCycles) };
}

/** The im2col matrix product of one group of a layer. */
export function bismoMatmulShape(g: ConvGeometry): MatmulShape {
  return { m: g.ocPerGroup, k: g.kh * g.kw * g.icPerGroup, n: g.oh * g.ow * g.batch };
}

/** Cycles of a whole layer (groups in sequence). */
export function bismoLayerCycles(target: BismoTarget, g: ConvGeometry, wBits: number, aBits: number): number {
  return bismoMatmulStages(target, bismoMatmulShape(g), wBits, aBits).cycles * g.groups;
}
