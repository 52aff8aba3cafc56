/**
 * Compare: the sweep's steps. `plan` expands models x targets x constraints into search
 * requests (sweeps/<id>/plan.json in the work bucket); `item` returns one request for the
 * nested search execution; `status` reads a search's status.json (a search that continued
 * as new ends its first execution early); `compare` costs every best policy on every target
 * of the sweep (HAQ's "specialised for HW1, run on HW2" table) into the results bucket.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SearchConfig } from '../shared/config';
import { InvalidInputError } from '../shared/errors';
import { buildCostTable, costPolicy } from '../shared/hardware/cost-table';
import { resolveTarget } from '../shared/hardware/targets';
import { modelKeys, resultKeys, sweepKeys } from '../shared/keys';
import { ConstraintSpec, Policy, policyTop1 } from '../shared/quant/policy';
import { getJson, putJson } from '../shared/store/object-store';
import { parse } from '../shared/validate';
import { CompareInput } from './lib/contracts';
import { instrument, lambdaHandler, type HandlerDeps } from './lib/runtime';
import { slug } from './lib/search-input';
import { readCostTable, readLayers, readSearchConfig } from './lib/search-context';
import { readStatus } from './lib/status';

export { ConstraintSpec };

const ModelSpec = z.union([
  z.string().min(1).transform((name) => ({ name, modelKey: modelKeys.model(name), dataPrefix: modelKeys.dataPrefix(name) })),
  z.object({ name: z.string().min(1), modelKey: z.string().min(1).optional(), dataPrefix: z.string().min(1).optional() }).transform((m) => ({
    name: m.name,
    modelKey: m.modelKey ?? modelKeys.model(m.name),
    dataPrefix: m.dataPrefix ?? modelKeys.dataPrefix(m.name),
  })),
]);

/** sweep.json: what a scheduled or `haq sweep` run searches. */
export const SweepSpec = z.object({
  sweepId: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/).optional(),
  models: z.array(ModelSpec).min(1),
  targets: z.array(z.union([z.string().min(1), z.record(z.unknown())])).min(1),
  constraints: z.array(ConstraintSpec).min(1),
  /** Config fields for every search (strategy, episodes, seed, ...). */
  config: SearchConfig.innerType().omit({ model: true, modelKey: true, dataPrefix: true, hardware: true, constraint: true }).partial().default({}),
});
export type SweepSpec = z.input<typeof SweepSpec>;

export const SweepItem = z.object({ searchId: z.string(), input: z.record(z.unknown()) });
export const SweepPlan = z.object({
  sweepId: z.string(),
  targets: z.array(z.union([z.string(), z.record(z.unknown())])),
  items: z.array(SweepItem),
});
export type SweepPlan = z.infer<typeof SweepPlan>;

const targetName = (t: string | Record<string, unknown>): string => (typeof t === 'string' ? t : String(t.name ?? 'custom'));

export function planSweep(spec: z.infer<typeof SweepSpec>, sweepId: string): SweepPlan {
  const items: SweepPlan['items'] = [];
  for (const m of spec.models) {
    for (const t of spec.targets) {
      for (const c of spec.constraints) {
        const searchId = `${sweepId}-${String(items.length).padStart(3, '0')}`;
        items.push({
          searchId,
          input: { ...spec.config, searchId, model: m.name, modelKey: m.modelKey, dataPrefix: m.dataPrefix, hardware: t, constraint: c },
        });
      }
    }
  }
  return { sweepId, targets: spec.targets, items };
}

export interface ComparisonCell {
  target: string;
  latencyMs: number;
  energyUj: number | null;
  /** Against every layer at 8/8 on that target. */
  latencyRatio: number;
  energyRatio: number | null;
}

/** Why a search of the sweep has no policy: status.json's error (class and message). */
export interface RowError {
  name: string;
  message: string;
}

export interface ComparisonRow {
  searchId: string;
  model: string;
  constraint: string;
  specialisedFor: string;
  state: string;
  /** Set when the search did not succeed. */
  error: RowError | null;
  /** Top-1 (%) of the policy on validation (the split the search chose by) and its standard error. */
  top1: number | null;
  top1Se: number | null;
  /** Top-1 (%) on the held-out test split and its standard error (null: no test split). */
  testTop1: number | null;
  testTop1Se: number | null;
  runOn: ComparisonCell[];
}

/** comparison.json: the sweep's rows and how many of its searches failed. */
export interface Comparison {
  sweepId: string;
  targets: string[];
  failed: number;
  rows: ComparisonRow[];
}

/** A failed row's reason: the search's recorded error, or what is known without one. */
export function rowError(state: string, recorded: RowError | undefined, searchId: string): RowError {
  if (recorded) return recorded;
  if (state === 'running') return { name: 'SearchNotFinishedError', message: `search ${searchId} was still running when the sweep compared` };
  return { name: 'MissingStatusError', message: `search ${searchId} left no status.json (searches/${searchId}/status.json in the work bucket)` };
}

export const makeHandler = (deps: HandlerDeps) =>
  instrument('compare', deps, async (event: unknown): Promise<unknown> => {
    const input = parse(CompareInput, event, 'Compare input');
    const { work, results } = deps.stores;
    switch (input.mode) {
      case 'plan': {
        // A scheduled sweep names its sweep.json in the models bucket ({ configKey }, infra
        // triggers); `haq sweep` passes the spec inline.
        const configKey = (input.sweep as { configKey?: unknown } | null)?.configKey;
        const fromBucket = typeof configKey === 'string';
        const source = fromBucket ? await getJson(deps.stores.models, configKey, z.unknown()) : input.sweep;
        const spec = parse(SweepSpec, source, fromBucket ? `sweep config ${configKey}` : 'sweep config');
        const sweepId = spec.sweepId ?? `sweep-${createHash('sha256').update(input.executionId ?? JSON.stringify(input.sweep)).digest('hex').slice(0, 10)}`;
        const plan = planSweep(spec, slug(sweepId));
        await putJson(work, sweepKeys.plan(plan.sweepId), plan);
        return { sweepId: plan.sweepId, items: plan.items.map((_, i) => i) };
      }
      case 'item': {
        const plan = await getJson(work, sweepKeys.plan(input.sweepId), SweepPlan);
        const item = plan.items[input.index];
        if (!item) throw new InvalidInputError(`sweep ${input.sweepId} has ${plan.items.length} searches; there is no index ${input.index}`);
        return { input: item.input };
      }
      case 'status': {
        const status = await readStatus(work, input.searchId);
        return { state: status?.state ?? 'failed' };
      }
      case 'compare': {
        const plan = await getJson(work, sweepKeys.plan(input.sweepId), SweepPlan);
        const targets = plan.targets.map((t) => resolveTarget(t));
        const rows: ComparisonRow[] = [];
        for (const item of plan.items) {
          const status = await readStatus(work, item.searchId);
          const base = { searchId: item.searchId, model: String(item.input.model), state: status?.state ?? 'failed' };
          if (status?.state !== 'succeeded') {
            const c = item.input.constraint as { kind: string; ratio: number };
            rows.push({
              ...base,
              constraint: `${c.kind}-${c.ratio}`,
              specialisedFor: targetName(item.input.hardware as string),
              error: rowError(base.state, status?.error, item.searchId),
              top1: null,
              top1Se: null,
              testTop1: null,
              testTop1Se: null,
              runOn: [],
            });
            continue;
          }
          const [config, layers, own] = await Promise.all([
            readSearchConfig(deps.stores, item.searchId),
            readLayers(deps.stores, item.searchId),
            readCostTable(deps.stores, item.searchId),
          ]);
          const constraint = resultKeys.constraintLabel(config.constraint.kind, config.constraint.ratio);
          const policy = await getJson(results, resultKeys.policy(config.model, own.target.name, constraint, item.searchId), Policy);
          const all8 = { layers: layers.layers.map((l) => ({ name: l.name, wBits: 8, aBits: 8 })) };
          const runOn = targets.map((t) => {
            const table = t.name === own.target.name && t.batch === own.batch ? own : buildCostTable(layers, t);
            const p = costPolicy(table, policy);
            const ref = costPolicy(table, all8);
            return {
              target: t.name,
              latencyMs: p.latencyMs,
              energyUj: p.energyUj,
              latencyRatio: p.latencyMs / ref.latencyMs,
              energyRatio: p.energyUj !== null && ref.energyUj ? p.energyUj / ref.energyUj : null,
            };
          });
          const [val, test] = [policyTop1(policy, 'val'), policyTop1(policy, 'test')];
          const top1 = { top1: val?.value ?? null, top1Se: val?.se ?? null, testTop1: test?.value ?? null, testTop1Se: test?.se ?? null };
          rows.push({ ...base, constraint, specialisedFor: own.target.name, error: null, ...top1, runOn });
        }
        const key = resultKeys.sweep(plan.sweepId);
        const comparison: Comparison = { sweepId: plan.sweepId, targets: targets.map((t) => t.name), failed: rows.filter((r) => r.error).length, rows };
        await putJson(results, key, comparison);
        await results.put(resultKeys.sweepReport(plan.sweepId), sweepHtml(comparison), { contentType: 'text/html; charset=utf-8' });
        return { sweepId: plan.sweepId, key, searches: rows.length, failed: comparison.failed };
      }
    }
  });

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A top-1 figure as `value ± standard error` (comparison.json written before standard errors: the value alone). */
const withSe = (value: number, se: number | null | undefined): string => (typeof se === 'number' ? `${value.toFixed(2)} ± ${se.toFixed(2)}` : value.toFixed(2));

/**
 * The sweep's table as text cells: top-1 ± standard error on validation and on test; a failed
 * row shows its state where top-1 would be.
 */
export function comparisonCells(comparison: Pick<Comparison, 'targets' | 'rows'>, mark = '*'): { head: string[]; body: string[][] } {
  const head = ['model', 'constraint', 'specialised for', 'top-1 % val', 'top-1 % test', ...comparison.targets.map((t) => `latency on ${t} (x 8/8)`)];
  const body = comparison.rows.map((r) => [
    r.model,
    r.constraint,
    r.specialisedFor,
    r.top1 === null ? r.state : withSe(r.top1, r.top1Se),
    r.testTop1 === null || r.testTop1 === undefined ? '-' : withSe(r.testTop1, r.testTop1Se),
    ...comparison.targets.map((t) => {
      const c = r.runOn.find((x) => x.target === t);
      return c ? `${c.latencyRatio.toFixed(3)}${t === r.specialisedFor ? mark : ''}` : '-';
    }),
  ]);
  return { head, body };
}

/** One line per failed row: which search, and why. */
export const failureLine = (r: ComparisonRow): string =>
  `${r.model} ${r.constraint} on ${r.specialisedFor} (${r.searchId}): ${r.error?.name ?? 'Error'}: ${r.error?.message ?? r.state}`;

/** The cross-target table as a small self-contained page; failed rows carry their error. */
export function sweepHtml(comparison: Comparison): string {
  const { head, body } = comparisonCells(comparison, ' *');
  const failedRows = comparison.rows.filter((r) => r.error);
  const failures = failedRows.length
    ? `<h2>${failedRows.length} of ${comparison.rows.length} searches failed</h2><ul>${failedRows
        .map((r) => `<li><code>${esc(r.error!.name)}</code>: ${esc(`${r.model} ${r.constraint} on ${r.specialisedFor} (${r.searchId}): ${r.error!.message}`)}</li>`)
        .join('')}</ul>`
    : '';
  const withError = [...head, 'error'];
  const rows = body.map((cells, i) => {
    const e = comparison.rows[i].error;
    return [...cells, e ? `${e.name}: ${e.message}` : ''];
  });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>haq sweep ${esc(comparison.sweepId)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:right}td:nth-child(-n+3),th:nth-child(-n+3),td:last-child,th:last-child{text-align:left}tr.failed td{color:#a00}</style></head><body>
<h1>haq sweep ${esc(comparison.sweepId)}</h1><p>Each row's best policy, costed on every target (* = the target it was searched for).</p>
<table><thead><tr>${withError.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r, i) => `<tr${comparison.rows[i].error ? ' class="failed"' : ''}>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>${failures}</body></html>
`;
}

export const handler = lambdaHandler('compare', makeHandler);
