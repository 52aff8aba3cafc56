import { cacheKeys } from '../keys';
import type { LayerTable } from '../onnx/types';
import { getJson, putJson, type ObjectStore } from '../store/object-store';
import { buildCostTable } from './cost-table';
import { targetId, type Target } from './targets';
import { CostTable } from './types';

/**
 * Bumped whenever a cost model changes its numbers, so tables cached by an older version are
 * rebuilt rather than reused.
 */
export const COST_MODEL_VERSION = 3;

/** Where the cost table of a model (by content hash) on a target (and batch) is cached. */
export function costTableCacheKey(modelHash: string, target: Target): string {
  return cacheKeys.costTable(modelHash, targetId(target), COST_MODEL_VERSION);
}

/**
 * The cost table of a model on a target, from the store when a table for the same model
 * hash, target (built-in name or custom description hash) and batch is there, else built and
 * stored. A cached object that does not parse is rebuilt and overwritten.
 */
export async function loadOrBuildCostTable(
  store: ObjectStore,
  layerTable: LayerTable,
  target: Target,
): Promise<{ table: CostTable; key: string; cached: boolean }> {
  const key = costTableCacheKey(layerTable.modelHash, target);
  if (await store.exists(key)) {
    try {
      const table = await getJson(store, key, CostTable);
      if (table.layers.length === layerTable.layers.length && table.layers.every((l, i) => l.name === layerTable.layers[i].name)) {
        return { table, key, cached: true };
      }
    } catch {
      // Corrupt or outdated: rebuilt below.
    }
  }
  const table = buildCostTable(layerTable, target);
  await putJson(store, key, table);
  return { table, key, cached: false };
}
