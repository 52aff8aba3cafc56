/**
 * The map from the agent's continuous action a in [0, 1] to a bitwidth, and back to the
 * normalised value the next state carries as "previous action".
 */
export interface BitRange {
  minBits: number;
  maxBits: number;
}

/**
 * HAQ action wall (lib/env/linear_quantize_env.py `_action_wall`):
 * bits = round(a * (max - min + 1) + min - 0.5), i.e. [0, 1] split into (max - min + 1)
 * equal bins. Clamped after rounding: a = 1 would give max + 1 (and a < 0 below min).
 */
export function actionToBits(action: number, range: BitRange): number {
  const { minBits, maxBits } = range;
  const bits = Math.round(action * (maxBits - minBits + 1) + minBits - 0.5);
  return Math.min(maxBits, Math.max(minBits, bits));
}

/** A bitwidth as a value in [0, 1] (min -> 0, max -> 1; 1 when the range is one value). */
export function bitsToFeature(bits: number, range: BitRange): number {
  const span = range.maxBits - range.minBits;
  return span === 0 ? 1 : (bits - range.minBits) / span;
}

/** The action at the centre of the bin that maps to `bits` (used by strategies that pick bits directly). */
export function bitsToAction(bits: number, range: BitRange): number {
  return (bits - range.minBits + 0.5) / (range.maxBits - range.minBits + 1);
}
