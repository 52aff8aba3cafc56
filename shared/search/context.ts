import { defaultDdpgHyper, type DdpgHyper } from '../agent/ddpg';
import type { SearchConfig } from '../config';
import type { CostTable } from '../hardware/types';
import type { LayerTable } from '../onnx/types';
import type { LayerBits, Policy } from '../quant/policy';
import { createBudgetModel, policyCost, type BudgetModel } from './budget';
import { buildEmbedding, type Embedding } from './embedding';

/**
 * Everything a search step needs that does not change during the search: the config, the
 * layer table, the budget (from the cost table) and the state embedding. Built the same way
 * by every step from the objects Prepare wrote, so it is never stored itself.
 */
export interface SearchContext {
  searchId: string;
  config: SearchConfig;
  layers: LayerTable;
  budget: BudgetModel;
  embedding: Embedding;
  hyper: DdpgHyper;
  /** Target name written into policies. */
  target: string;
}

/** Throws BudgetInfeasibleError when the budget is below the all-minimum-bits cost. */
export function createSearchContext(searchId: string, config: SearchConfig, layers: LayerTable, costTable: CostTable | null): SearchContext {
  const budget = createBudgetModel(
    {
      kind: config.constraint.kind,
      ratio: config.constraint.ratio,
      minBits: config.minBits,
      maxBits: config.maxBits,
      pinFirstLast: config.pinFirstLast,
    },
    layers,
    costTable,
  );
  const target = costTable?.target.name ?? (typeof config.hardware === 'string' ? config.hardware : String(config.hardware.name ?? 'custom'));
  return {
    searchId,
    config,
    layers,
    budget,
    embedding: buildEmbedding(layers.layers, budget.activations),
    hyper: { ...defaultDdpgHyper(), ...(config.ddpg ?? {}) },
    target,
  };
}

/** A policy object for per-layer bits, with the search's model, target and constraint. */
export function makePolicy(ctx: SearchContext, bits: LayerBits[], metrics: Record<string, unknown>): Policy {
  const cost = policyCost(ctx.budget, bits);
  return {
    model: { name: ctx.config.model, hash: ctx.layers.modelHash },
    target: ctx.target,
    constraint: ctx.config.constraint,
    layers: bits,
    metrics: { ...metrics, cost, costUnit: ctx.budget.unit, costRatio: cost / ctx.budget.fullCost, budgetRatio: ctx.budget.ratio },
  };
}
