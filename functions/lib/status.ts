/** searches/<id>/status.json: read-modify-write of the small status a user polls. */
import { SearchConfig } from '../../shared/config';
import { resultKeys, searchKeys } from '../../shared/keys';
import { getJson, putJson, type ObjectStore } from '../../shared/store/object-store';
import { SearchStatus } from '../../shared/search/results';
import type { LockScope } from './lock';

export async function readStatus(store: ObjectStore, searchId: string): Promise<SearchStatus | null> {
  try {
    return await getJson(store, searchKeys.status(searchId), SearchStatus);
  } catch {
    return null;
  }
}

export async function writeStatus(
  store: ObjectStore,
  searchId: string,
  patch: Partial<SearchStatus>,
  now: Date,
): Promise<SearchStatus> {
  const current = (await readStatus(store, searchId)) ?? { searchId, state: 'running' as const };
  const next = SearchStatus.parse({ ...current, ...patch, searchId, updatedAt: now.toISOString() });
  await putJson(store, searchKeys.status(searchId), next);
  return next;
}

/** The target's name for keys: a built-in name, or a custom target's `name`. */
export function targetLabel(hardware: SearchConfig['hardware']): string {
  if (typeof hardware === 'string') {
    // A path to a custom target file: its base name.
    const base = hardware.split('/').pop() ?? hardware;
    return base.replace(/\.json$/i, '');
  }
  const name = (hardware as { name?: unknown }).name;
  return typeof name === 'string' && name ? name : 'custom';
}

export function lockScope(config: SearchConfig): LockScope {
  return {
    model: config.model,
    target: targetLabel(config.hardware),
    constraint: resultKeys.constraintLabel(config.constraint.kind, config.constraint.ratio),
  };
}

export async function readConfig(store: ObjectStore, searchId: string): Promise<SearchConfig> {
  return getJson(store, searchKeys.config(searchId), SearchConfig);
}
