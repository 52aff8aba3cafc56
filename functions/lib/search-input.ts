/**
 * The search request behind an execution: an EventBridge "Object Created" event for
 * models/<name>/model.onnx, or a direct request ({ modelKey, hardware, constraint, ... }).
 * The search id is derived from the event (event id, or the request's own id, or a hash of
 * the request), so a retried Prepare, or RecordFailure after a failed Prepare, finds it again.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { InvalidInputError } from '../../shared/errors';
import { modelKeys } from '../../shared/keys';
import { parse } from '../../shared/validate';

export const S3ObjectEvent = z.object({
  id: z.string().min(1),
  detail: z.object({
    bucket: z.object({ name: z.string().min(1) }),
    object: z.object({ key: z.string().min(1), etag: z.string().optional() }),
  }),
});

export const DirectRequest = z
  .object({
    modelKey: z.string().min(1),
    model: z.string().min(1).optional(),
    dataPrefix: z.string().min(1).optional(),
    /** Fixes the search id (sweeps, the CLI); else it is a hash of the request. */
    searchId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
    requestId: z.string().min(1).optional(),
  })
  .passthrough();

export interface SearchRequest {
  searchId: string;
  model: string;
  modelKey: string;
  dataPrefix: string;
  /** Config fields given with the request (they override models/<name>/search.json). */
  overrides: Record<string, unknown>;
  source: 's3-event' | 'direct';
}

const hash12 = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 12);

/** Letters, digits, '-' and '_' only, at most 40 characters (execution names allow 80). */
export function slug(name: string): string {
  const s = name.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return s || 'model';
}

/** `models/<name>/model.onnx` -> `<name>`; any other key -> its file name without `.onnx`. */
export function modelNameFromKey(key: string): string {
  const m = /^models\/([^/]+)\/model\.onnx$/.exec(key);
  if (m) return m[1];
  const base = key.split('/').pop() ?? key;
  return base.replace(/\.onnx$/i, '') || base;
}

/** Keys from EventBridge may be URL-encoded ('+' for space). */
function decodeKey(key: string): string {
  if (!/[%+]/.test(key)) return key;
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    return key;
  }
}

const internalFields = new Set(['AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID', 'searchId', 'requestId', 'model', 'modelKey', 'dataPrefix']);

export function searchRequest(event: unknown): SearchRequest {
  if (event && typeof event === 'object' && 'detail' in event) {
    const e = parse(S3ObjectEvent, event, 'S3 object event');
    const modelKey = decodeKey(e.detail.object.key);
    if (!/\.onnx$/i.test(modelKey)) {
      throw new InvalidInputError(`S3 event for ${modelKey}: a search starts on models/<name>/model.onnx, not on other objects`);
    }
    const model = modelNameFromKey(modelKey);
    return {
      searchId: `${slug(model)}-${hash12(`${e.id}|${modelKey}`)}`,
      model,
      modelKey,
      dataPrefix: modelKeys.dataPrefix(model),
      overrides: {},
      source: 's3-event',
    };
  }
  const d = parse(DirectRequest, event, 'search request');
  const model = d.model ?? modelNameFromKey(d.modelKey);
  const overrides: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (!internalFields.has(k)) overrides[k] = v;
  const identity = d.requestId ?? JSON.stringify(canonical({ ...overrides, modelKey: d.modelKey, model, dataPrefix: d.dataPrefix }));
  return {
    searchId: d.searchId ?? `${slug(model)}-${hash12(identity)}`,
    model,
    modelKey: d.modelKey,
    dataPrefix: d.dataPrefix ?? modelKeys.dataPrefix(model),
    overrides,
    source: 'direct',
  };
}

/** JSON with sorted keys, so equal requests hash equally. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, canonical(v)]),
    );
  }
  return value;
}
