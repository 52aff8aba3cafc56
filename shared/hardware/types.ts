import { z } from 'zod';

/**
 * A cost table: for each layer, cost at every (weight bits, activation bits) pair, indexed
 * [wBits-1][aBits-1] over 1..8. Built once per (model hash, target, batch) and read by the
 * budget repair and the report. Model size needs no target: params x wBits.
 */
export const Grid8 = z.array(z.array(z.number()).length(8)).length(8);
export type Grid8 = number[][];

/**
 * What bounds a layer at one bit-width pair: the busiest BISMO stage (fetch, execute, result),
 * or whether a BitFusion or roofline layer is limited by its compute or its memory traffic.
 */
export const BoundKind = z.enum(['fetch', 'execute', 'result', 'compute', 'memory']);
export type BoundKind = z.infer<typeof BoundKind>;

export const LayerCost = z.object({
  name: z.string(),
  /** Accelerator cycles where the model counts cycles, else null. */
  latencyCycles: Grid8.nullable(),
  latencyMs: Grid8,
  /** Microjoules where the model has an energy model, else null. */
  energyUj: Grid8.nullable(),
  /** What bounds the layer at each (wBits, aBits), indexed like the grids. Optional: older tables lack it. */
  bound: z.array(z.array(BoundKind).length(8)).length(8).optional(),
  /** Weight elements: model size in bytes is params x wBits / 8 (bias stays float and is not counted). */
  params: z.number(),
  /**
   * Cost with a float activation (policy aBits null, model-size mode), indexed [wBits-1]: the
   * target's widest activation path (16 bits on BISMO and on roofline devices with a 16-bit
   * precision, pmax = 8 on BitFusion). Optional: tables built before it existed lack it.
   */
  floatActivation: z
    .object({
      aBits: z.number().int().positive(),
      latencyCycles: z.array(z.number()).length(8).nullable(),
      latencyMs: z.array(z.number()).length(8),
      energyUj: z.array(z.number()).length(8).nullable(),
    })
    .optional(),
});
export type LayerCost = z.infer<typeof LayerCost>;

export const CostTable = z.object({
  target: z.object({ name: z.string(), kind: z.string() }).passthrough(),
  batch: z.number().int().positive(),
  modelHash: z.string(),
  layers: z.array(LayerCost).min(1),
});
export type CostTable = z.infer<typeof CostTable>;
