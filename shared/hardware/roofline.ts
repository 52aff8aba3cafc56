import type { ConvGeometry } from './geometry';
import type { RooflineTarget } from './targets';

/**
 * Roofline model (Williams, Waterman, Patterson, CACM 2009) of a device that runs a few
 * native precisions:
 *   t = max(ops / peak(p), bytes / bandwidth)
 *   ops   = 2 x MACs (one multiply and one add)
 *   p     = the smallest native precision >= max(wBits, aBits): a 3-bit layer on a device
 *           with INT4 and INT8 runs as INT4, a 5-bit one as INT8. If the policy is wider
 *           than every native precision, the widest one is used ceil(bits/widest)^2 times
 *           (two-operand bit slicing).
 *   bytes = weights x wBits/8 + (input + output activations) x aBits/8: tensors are stored
 *           packed at the policy's bit width. The output is counted at the layer's own
 *           activation width (the next layer's input width is not known per layer).
 *   energy (only if the target gives one) = ops x pJ/op(p) + bytes x pJ/byte.
 */
export interface RooflineCost {
  seconds: number;
  energyPj: number | null;
  /** The native precision the layer ran at and how many passes it needed. */
  precisionBits: number;
  passes: number;
  computeBound: boolean;
}

export function nativePrecisions(target: RooflineTarget): number[] {
  return Object.keys(target.peakOpsPerSecond)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The precision a bit width runs at, and the number of passes at it. */
export function roundToNative(target: RooflineTarget, bits: number): { precisionBits: number; passes: number } {
  const natives = nativePrecisions(target);
  const fit = natives.find((p) => p >= bits);
  if (fit !== undefined) return { precisionBits: fit, passes: 1 };
  const widest = natives[natives.length - 1];
  return { precisionBits: widest, passes: Math.ceil(bits / widest) ** 2 };
}

export function rooflineLayerCost(target: RooflineTarget, g: ConvGeometry, wBits: number, aBits: number): RooflineCost {
  const macs = g.kh * g.kw * g.icPerGroup * g.ocPerGroup * g.groups * g.oh * g.ow * g.batch;
  const ops = 2 * macs;
  const { precisionBits, passes } = roundToNative(target, Math.max(wBits, aBits));
  const peak = target.peakOpsPerSecond[String(precisionBits)];
  const weightBytes = (g.kh * g.kw * g.icPerGroup * g.ocPerGroup * g.groups * wBits) / 8;
  const activationBytes = ((g.inputElements + g.outputElements) * g.batch * aBits) / 8;
  const bytes = weightBytes + activationBytes;
  const computeSeconds = (ops * passes) / peak;
  const memorySeconds = bytes / target.memoryBandwidthBytesPerSecond;
  let energyPj: number | null = null;
  if (target.energy) {
    const perOp = target.energy.pjPerOp[String(precisionBits)];
    energyPj = perOp === undefined ? null : ops * passes * perOp + bytes * target.energy.pjPerByte;
  }
  return {
    seconds: Math.max(computeSeconds, memorySeconds),
    energyPj,
    precisionBits,
    passes,
    computeBound: computeSeconds >= memorySeconds,
  };
}
