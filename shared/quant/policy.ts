import { z } from 'zod';

/**
 * A mixed-precision policy: per quantizable layer a weight bitwidth and an activation
 * bitwidth (the layer's input), 1..8, or null for a float activation (model-size mode).
 * `haq eval --policy` accepts any JSON file with this `layers` list.
 */
export const Bits = z.number().int().min(1).max(8);

export const LayerBits = z.object({
  name: z.string().min(1),
  wBits: Bits,
  aBits: Bits.nullable(),
});
export type LayerBits = z.infer<typeof LayerBits>;

export const ConstraintKind = z.enum(['latency', 'energy', 'size']);
export type ConstraintKind = z.infer<typeof ConstraintKind>;

export const Constraint = z.object({
  kind: ConstraintKind,
  /** Budget as a fraction of the all-8-bit cost (e.g. 0.5 = half the 8/8 latency). */
  ratio: z.number().positive().max(1),
});
export type Constraint = z.infer<typeof Constraint>;

export const Policy = z.object({
  model: z.object({ name: z.string(), hash: z.string().optional() }).passthrough().optional(),
  target: z.string().optional(),
  constraint: Constraint.optional(),
  layers: z.array(LayerBits).min(1),
  metrics: z.record(z.unknown()).optional(),
});
export type Policy = z.infer<typeof Policy>;
