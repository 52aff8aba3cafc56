/**
 * Simulate: hardware cost. `table` mode builds the search's cost table (every layer at every
 * wBits x aBits on the target) and checks the budget is feasible; `policy` mode costs one
 * policy of a round (per-layer latency, energy, size) from that table.
 */
import { buildCostTable, costPolicy } from '../shared/hardware/cost-table';
import { resolveTarget } from '../shared/hardware/targets';
import { searchKeys } from '../shared/keys';
import { createBudgetModel } from '../shared/search/budget';
import { RoundPolicies } from '../shared/search/results';
import { getJson, putJson } from '../shared/store/object-store';
import { InvalidInputError } from '../shared/errors';
import { parse } from '../shared/validate';
import { SimulateInput } from './lib/contracts';
import { instrument, lambdaHandler, maybeInjectFault, type HandlerDeps } from './lib/runtime';
import { readCostTable, readLayers, readSearchConfig } from './lib/search-context';

export interface SimulateOutput {
  key: string;
  latencyMs: number;
  energyUj: number | null;
  sizeBytes: number;
}

export const makeHandler = (deps: HandlerDeps) =>
  instrument('simulate', deps, async (event: unknown): Promise<SimulateOutput> => {
    const input = parse(SimulateInput, event, 'Simulate input');
    const { stores } = deps;
    if (input.mode === 'table') {
      const [config, layers] = await Promise.all([readSearchConfig(stores, input.searchId), readLayers(stores, input.searchId)]);
      const target = resolveTarget(config.hardware, { batch: config.batch });
      const table = buildCostTable(layers, target);
      // Fail early, before any episode: a budget below the all-minimum-bits cost.
      createBudgetModel({ ...config.constraint, minBits: config.minBits, maxBits: config.maxBits, pinFirstLast: config.pinFirstLast }, layers, table);
      const key = searchKeys.costTable(input.searchId);
      await putJson(stores.work, key, table);
      const all8 = costPolicy(table, { layers: layers.layers.map((l) => ({ name: l.name, wBits: 8, aBits: 8 })) });
      return { key, latencyMs: all8.latencyMs, energyUj: all8.energyUj, sizeBytes: all8.sizeBytes };
    }
    await maybeInjectFault(deps, 'simulate', input.searchId, `${input.round}-${input.index}`);
    const [table, round] = await Promise.all([
      readCostTable(stores, input.searchId),
      getJson(stores.work, searchKeys.policies(input.searchId, input.round), RoundPolicies),
    ]);
    const policy = round.policies[input.index];
    if (!policy) throw new InvalidInputError(`round ${input.round} of ${input.searchId} has ${round.policies.length} policies; there is no index ${input.index}`);
    const sim = costPolicy(table, policy);
    const key = searchKeys.simulation(input.searchId, input.round, input.index);
    await putJson(stores.work, key, sim);
    return { key, latencyMs: sim.latencyMs, energyUj: sim.energyUj, sizeBytes: sim.sizeBytes };
  });

export const handler = lambdaHandler('simulate', makeHandler);
