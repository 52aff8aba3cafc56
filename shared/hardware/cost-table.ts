import { InvalidPolicyError } from '../errors';
import type { LayerTable } from '../onnx/types';
import type { Policy } from '../quant/policy';
import type { SimulationResult } from '../search/results';
import { bismoLayerStages } from './bismo';
import { bitFusionLayerCost, type BitFusionStats } from './bitfusion';
import { layerGeometry, type ConvGeometry } from './geometry';
import { nativePrecisions, rooflineLayerCost } from './roofline';
import { resolveTarget, type Target } from './targets';
import type { BoundKind, CostTable, Grid8, LayerCost } from './types';

/** Bit widths a cost table covers: weights and activations 1..8, indexed [bits-1]. */
export const BITS = [1, 2, 3, 4, 5, 6, 7, 8] as const;

/**
 * One layer at one (wBits, aBits): cycles where the model counts them, seconds, picojoules where
 * it has energy, and what bounds it (the busiest BISMO stage; compute or memory elsewhere).
 */
export interface PointCost {
  cycles: number | null;
  seconds: number;
  energyPj: number | null;
  bound: BoundKind;
}

/** Per-table memo for models whose per-shape work is expensive (BitFusion's tiling search). */
interface Memo {
  bitfusion: Map<string, BitFusionStats>;
}

function pointCost(target: Target, g: ConvGeometry, wBits: number, aBits: number, memo: Memo): PointCost {
  switch (target.kind) {
    case 'bismo': {
      const s = bismoLayerStages(target, g, wBits, aBits);
      return { cycles: s.cycles, seconds: s.cycles / target.frequencyHz, energyPj: null, bound: s.bound };
    }
    case 'bitfusion': {
      const { cycles, energyPj, memoryBound } = bitFusionLayerCost(target, g, wBits, aBits, memo.bitfusion);
      return { cycles, seconds: cycles / target.frequencyHz, energyPj, bound: memoryBound ? 'memory' : 'compute' };
    }
    case 'roofline': {
      const c = rooflineLayerCost(target, g, wBits, aBits);
      return { cycles: null, seconds: c.seconds, energyPj: c.energyPj, bound: c.computeBound ? 'compute' : 'memory' };
    }
  }
}

/**
 * The activation width a float activation (policy aBits null) costs as: BISMO is bit-serial
 * and runs 16-bit planes; a roofline device its 16-bit path if it has one, else its widest;
 * BitFusion its widest fused precision pmax (it has no float path; documented choice).
 */
export function floatActivationBits(target: Target): number {
  switch (target.kind) {
    case 'bismo':
      return 16;
    case 'bitfusion':
      return target.pmax;
    case 'roofline': {
      const natives = nativePrecisions(target);
      return natives.includes(16) ? 16 : natives[natives.length - 1];
    }
  }
}

const msOf = (seconds: number): number => seconds * 1e3;
const ujOf = (pj: number): number => pj * 1e-6;

/**
 * Builds the cost table of a model on a target: every layer at every (wBits, aBits) in 1..8,
 * for one batch of `batch` inputs (the target's batch unless overridden). Latency and energy
 * are per batch. Pure: the same inputs give the same table.
 */
export function buildCostTable(layerTable: LayerTable, targetIn: Target, options: { batch?: number } = {}): CostTable {
  const target = options.batch !== undefined ? resolveTarget(targetIn, { batch: options.batch }) : targetIn;
  const memo: Memo = { bitfusion: new Map() };
  const floatBits = floatActivationBits(target);
  const layers: LayerCost[] = layerTable.layers.map((layer) => {
    const g = layerGeometry(layer, target.batch);
    const cycles: Grid8 = [];
    const ms: Grid8 = [];
    const uj: Grid8 = [];
    const bound: BoundKind[][] = [];
    let hasCycles = true;
    let hasEnergy = true;
    for (const w of BITS) {
      const cRow: number[] = [];
      const msRow: number[] = [];
      const ujRow: number[] = [];
      const boundRow: BoundKind[] = [];
      for (const a of BITS) {
        const c = pointCost(target, g, w, a, memo);
        if (c.cycles === null) hasCycles = false;
        if (c.energyPj === null) hasEnergy = false;
        cRow.push(c.cycles ?? 0);
        msRow.push(msOf(c.seconds));
        ujRow.push(c.energyPj === null ? 0 : ujOf(c.energyPj));
        boundRow.push(c.bound);
      }
      cycles.push(cRow);
      ms.push(msRow);
      uj.push(ujRow);
      bound.push(boundRow);
    }
    const floats = BITS.map((w) => pointCost(target, g, w, floatBits, memo));
    return {
      name: layer.name,
      latencyCycles: hasCycles ? cycles : null,
      latencyMs: ms,
      energyUj: hasEnergy ? uj : null,
      bound,
      params: layer.params,
      floatActivation: {
        aBits: floatBits,
        latencyCycles: hasCycles ? floats.map((f) => f.cycles ?? 0) : null,
        latencyMs: floats.map((f) => msOf(f.seconds)),
        energyUj: hasEnergy ? floats.map((f) => ujOf(f.energyPj ?? 0)) : null,
      },
    };
  });
  return { target: { ...target }, batch: target.batch, modelHash: layerTable.modelHash, layers };
}

/**
 * The cost of a policy from a cost table, with the per-layer breakdown. Policy layers are
 * matched by name; a missing or unknown layer is an InvalidPolicyError.
 */
export function costPolicy(table: CostTable, policy: Pick<Policy, 'layers'>): SimulationResult {
  const byName = new Map(policy.layers.map((l) => [l.name, l]));
  const known = new Set(table.layers.map((l) => l.name));
  const unknown = policy.layers.filter((l) => !known.has(l.name)).map((l) => l.name);
  if (unknown.length > 0) {
    throw new InvalidPolicyError(
      `policy names layers the model does not have: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''}; ` +
        `the model's layers are ${table.layers.slice(0, 3).map((l) => l.name).join(', ')}, ... (see haq inspect)`,
      { unknown },
    );
  }
  let latencyMs = 0;
  let latencyCycles: number | null = 0;
  let energyUj: number | null = 0;
  let sizeBytes = 0;
  const layers: SimulationResult['layers'] = table.layers.map((layer) => {
    const bits = byName.get(layer.name);
    if (!bits) {
      throw new InvalidPolicyError(`policy has no bits for layer "${layer.name}"; give every quantizable layer a wBits and aBits`, {
        layer: layer.name,
      });
    }
    const w = bits.wBits - 1;
    let ms: number;
    let cycles: number | null;
    let uj: number | null;
    if (bits.aBits === null) {
      const f = layer.floatActivation ?? fallbackFloat(layer);
      ms = f.latencyMs[w];
      cycles = f.latencyCycles ? f.latencyCycles[w] : null;
      uj = f.energyUj ? f.energyUj[w] : null;
    } else {
      const a = bits.aBits - 1;
      ms = layer.latencyMs[w][a];
      cycles = layer.latencyCycles ? layer.latencyCycles[w][a] : null;
      uj = layer.energyUj ? layer.energyUj[w][a] : null;
    }
    const size = (layer.params * bits.wBits) / 8;
    latencyMs += ms;
    latencyCycles = latencyCycles === null || cycles === null ? null : latencyCycles + cycles;
    energyUj = energyUj === null || uj === null ? null : energyUj + uj;
    sizeBytes += size;
    return { name: layer.name, latencyMs: ms, energyUj: uj, sizeBytes: size };
  });
  return { latencyMs, latencyCycles, energyUj, sizeBytes, layers };
}

/** Tables cached before floatActivation existed: cost a float activation as 8 bits. */
function fallbackFloat(layer: LayerCost): NonNullable<LayerCost['floatActivation']> {
  return {
    aBits: 8,
    latencyCycles: layer.latencyCycles ? layer.latencyCycles.map((row) => row[7]) : null,
    latencyMs: layer.latencyMs.map((row) => row[7]),
    energyUj: layer.energyUj ? layer.energyUj.map((row) => row[7]) : null,
  };
}

export interface UniformCost {
  latencyMs: number;
  energyUj: number | null;
  sizeBytes: number;
}

/** Whole-model cost with every layer at the same bits b for weights and activations, b = 1..8, keyed "1".."8". */
export function uniformCosts(table: CostTable): Record<string, UniformCost> {
  const out: Record<string, UniformCost> = {};
  for (const b of BITS) {
    const policy = { layers: table.layers.map((l) => ({ name: l.name, wBits: b, aBits: b })) };
    const r = costPolicy(table, policy);
    out[String(b)] = { latencyMs: r.latencyMs, energyUj: r.energyUj, sizeBytes: r.sizeBytes };
  }
  return out;
}
