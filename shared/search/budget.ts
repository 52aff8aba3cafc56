import { BudgetInfeasibleError, InvalidInputError } from '../errors';
import type { CostTable } from '../hardware/types';
import type { LayerTable } from '../onnx/types';
import type { ConstraintKind, LayerBits } from '../quant/policy';
import type { BitRange } from './bits';

/**
 * The resource budget of a search and HAQ's repair of a policy to it.
 *
 *   cost(policy) = sum over layers of cost_i(wBits_i, aBits_i)
 *   budget       = ratio x cost(every layer at 8/8)                     (DESIGN.md "Budget")
 *
 * cost_i is latencyMs or energyUj read from the target's cost table (grids indexed
 * [wBits-1][aBits-1]), or sizeBytes = params x wBits / 8 (model-size mode, where
 * activations stay float and aBits is null).
 */
export interface BudgetSpec extends BitRange {
  kind: ConstraintKind;
  ratio: number;
  /** Pin the first and last layer to 8/8 bits (HAQ `_keep_first_last_layer`). */
  pinFirstLast: boolean;
}

export interface BudgetModel extends BudgetSpec {
  target: string;
  layerNames: string[];
  /** False in model-size mode: activations are float, aBits is null. */
  activations: boolean;
  /** cost[i][w-1][a-1] (size mode: a index 0 only), in the constraint's unit. */
  costs: number[][][];
  unit: 'ms' | 'uJ' | 'bytes';
  /** Cost with every layer at 8/8. */
  fullCost: number;
  /** ratio x fullCost. */
  budget: number;
  /** Cost with every free layer at minBits (pinned ones at 8): the cheapest legal policy. */
  minCost: number;
}

const PIN_BITS = 8;
/** Relative slack on budget comparisons, so ratio 1 is met by the 8/8 policy despite rounding. */
const BUDGET_RTOL = 1e-9;

/**
 * Builds the budget for a layer table and (for latency/energy) its cost table, and checks
 * it is feasible. Throws BudgetInfeasibleError with the smallest feasible ratio, or
 * InvalidInputError when the cost table does not describe these layers or lacks the metric.
 */
export function createBudgetModel(spec: BudgetSpec, layers: LayerTable, costTable: CostTable | null): BudgetModel {
  const names = layers.layers.map((l) => l.name);
  const activations = spec.kind !== 'size';
  if (spec.minBits < 1 || spec.maxBits > 8 || spec.minBits > spec.maxBits) {
    throw new InvalidInputError(`bit range ${spec.minBits}..${spec.maxBits} is not within 1..8 with min <= max`);
  }
  let costs: number[][][];
  let unit: BudgetModel['unit'];
  let target = costTable?.target.name ?? 'any target';
  if (spec.kind === 'size') {
    unit = 'bytes';
    target = 'model size';
    costs = layers.layers.map((l) => Array.from({ length: 8 }, (_, w) => [(l.params * (w + 1)) / 8]));
  } else {
    if (!costTable) throw new InvalidInputError(`a ${spec.kind} budget needs the target's cost table; none was given`);
    const tableNames = costTable.layers.map((l) => l.name);
    if (tableNames.length !== names.length || tableNames.some((n, i) => n !== names[i])) {
      throw new InvalidInputError(
        `cost table for ${costTable.target.name} lists layers [${tableNames.slice(0, 4).join(', ')}${tableNames.length > 4 ? ', ...' : ''}] ` +
          `(${tableNames.length}) but the model has [${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}] (${names.length}); rebuild the cost table for this model`,
      );
    }
    unit = spec.kind === 'latency' ? 'ms' : 'uJ';
    costs = costTable.layers.map((l) => {
      const grid = spec.kind === 'latency' ? l.latencyMs : l.energyUj;
      if (!grid) {
        throw new InvalidInputError(`target ${costTable.target.name} has no energy model; use a latency or size constraint`);
      }
      return grid.map((row) => row.slice());
    });
  }
  const base = { ...spec, target, layerNames: names, activations, costs, unit, fullCost: 0, budget: 0, minCost: 0 };
  const all8 = names.map((name) => ({ name, wBits: 8, aBits: activations ? 8 : null }));
  base.fullCost = policyCost(base, all8);
  base.budget = spec.ratio * base.fullCost;
  base.minCost = policyCost(base, minimalBits(base));
  if (!(base.fullCost > 0)) {
    throw new InvalidInputError(`the all-8-bit ${spec.kind} of this model on ${target} is ${base.fullCost} ${unit}; a budget needs a positive cost`);
  }
  if (!withinBudget(base, base.minCost)) {
    throw new BudgetInfeasibleError(spec.ratio, base.minCost / base.fullCost, spec.kind, target, spec.minBits, spec.pinFirstLast);
  }
  return base;
}

export function isPinned(model: Pick<BudgetModel, 'pinFirstLast' | 'layerNames'>, layer: number): boolean {
  return model.pinFirstLast && (layer === 0 || layer === model.layerNames.length - 1);
}

/** One layer's cost at (wBits, aBits) (aBits ignored in model-size mode). */
export function layerCost(model: Pick<BudgetModel, 'costs' | 'activations'>, i: number, wBits: number, aBits: number | null): number {
  return model.costs[i][wBits - 1][model.activations ? (aBits ?? 8) - 1 : 0];
}

/** Total cost of per-layer bits (in model order), in the model's unit. */
export function policyCost(model: Pick<BudgetModel, 'costs' | 'activations'>, bits: readonly LayerBits[]): number {
  let total = 0;
  bits.forEach((b, i) => {
    total += layerCost(model, i, b.wBits, b.aBits);
  });
  return total;
}

export function withinBudget(model: Pick<BudgetModel, 'budget'>, cost: number): boolean {
  return cost <= model.budget * (1 + BUDGET_RTOL);
}

/** Every free layer at minBits, pinned layers at 8. */
export function minimalBits(model: Pick<BudgetModel, 'layerNames' | 'activations' | 'pinFirstLast' | 'minBits'>): LayerBits[] {
  return model.layerNames.map((name, i) => {
    const b = isPinned(model, i) ? PIN_BITS : model.minBits;
    return { name, wBits: b, aBits: model.activations ? b : null };
  });
}

/** Applies the pins and clamps free layers into [minBits, maxBits]; returns new objects. */
export function pinAndClamp(model: BudgetModel, bits: readonly LayerBits[]): LayerBits[] {
  if (bits.length !== model.layerNames.length) {
    throw new InvalidInputError(`policy has ${bits.length} layers, the model ${model.layerNames.length}`);
  }
  const clamp = (b: number): number => Math.min(model.maxBits, Math.max(model.minBits, b));
  return bits.map((b, i) => {
    const name = model.layerNames[i];
    if (isPinned(model, i)) return { name, wBits: PIN_BITS, aBits: model.activations ? PIN_BITS : null };
    return { name, wBits: clamp(b.wBits), aBits: model.activations ? clamp(b.aBits ?? model.maxBits) : null };
  });
}

/**
 * HAQ `_final_action_wall`: pin and clamp, then while over budget walk the layers from last
 * to first, lowering the activation and then the weight bits by one (never below minBits,
 * never a pinned layer), stopping as soon as the budget is met. Terminates because every
 * full pass lowers something until all free layers sit at minBits, which
 * createBudgetModel has checked is feasible.
 */
export function repairBits(model: BudgetModel, bits: readonly LayerBits[]): LayerBits[] {
  const out = pinAndClamp(model, bits);
  let cost = policyCost(model, out);
  const n = out.length;
  while (!withinBudget(model, cost)) {
    let lowered = false;
    for (let i = n - 1; i >= 0 && !withinBudget(model, cost); i--) {
      if (isPinned(model, i)) continue;
      const l = out[i];
      if (model.activations && l.aBits !== null && l.aBits > model.minBits) {
        cost += layerCost(model, i, l.wBits, l.aBits - 1) - layerCost(model, i, l.wBits, l.aBits);
        l.aBits -= 1;
        lowered = true;
        if (withinBudget(model, cost)) break;
      }
      if (l.wBits > model.minBits) {
        cost += layerCost(model, i, l.wBits - 1, l.aBits) - layerCost(model, i, l.wBits, l.aBits);
        l.wBits -= 1;
        lowered = true;
      }
    }
    if (!lowered) {
      // Only reachable when the cost table is not monotone enough for minCost to be the floor.
      throw new BudgetInfeasibleError(model.ratio, cost / model.fullCost, model.kind, model.target, model.minBits, model.pinFirstLast);
    }
    cost = policyCost(model, out); // re-sum: no drift from the incremental updates
  }
  return out;
}

/** Cost of a policy as a fraction of the all-8-bit cost. */
export function costRatio(model: BudgetModel, bits: readonly LayerBits[]): number {
  return policyCost(model, bits) / model.fullCost;
}
