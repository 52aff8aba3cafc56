/**
 * Following a search on the deployed stack: the execution an upload started (its input is
 * the S3 "Object Created" event of models/<name>/model.onnx), and how the search ended.
 */
import { DescribeExecutionCommand, ListExecutionsCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { searchRequest } from '../functions/lib/search-input';
import { readStatus } from '../functions/lib/status';
import type { ObjectStore } from '../shared/store/object-store';
import { describeCause } from './inputs';

export interface FinishedSearch {
  searchId: string;
  executionArn: string;
  status: string;
  error?: string;
  cause?: string;
  output?: unknown;
  startDate?: Date;
  stopDate?: Date;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits for the search execution an upload of `modelKey` started at or after `since`, until
 * it leaves RUNNING; the search id comes from the same derivation Prepare uses.
 * `onStarted` is called once, when the execution is found.
 */
export async function waitForSearch(
  sfn: SFNClient,
  stateMachineArn: string,
  modelKey: string,
  since: Date,
  opts: { timeoutMs?: number; pollMs?: number; onStarted?: (executionArn: string, searchId: string) => void } = {},
): Promise<FinishedSearch> {
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const deadline = Date.now() + timeoutMs;
  const inputs = new Map<string, { key?: string; raw: string }>();
  let announced = false;
  while (true) {
    const { executions = [] } = await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 1000 }));
    for (const e of executions) {
      if (inputs.has(e.executionArn!) || (e.startDate && e.startDate < since)) continue;
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn! }));
      const input = JSON.parse(d.input ?? '{}');
      inputs.set(e.executionArn!, { key: input?.detail?.object?.key, raw: d.input ?? '{}' });
    }
    const mine = [...inputs.entries()].find(([, v]) => v.key === modelKey);
    if (mine) {
      const searchId = searchRequest(JSON.parse(mine[1].raw)).searchId;
      if (!announced) opts.onStarted?.(mine[0], searchId);
      announced = true;
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: mine[0] }));
      if (d.status !== 'RUNNING') {
        return {
          searchId,
          executionArn: mine[0],
          status: d.status!,
          error: d.error,
          cause: d.cause,
          output: d.output ? JSON.parse(d.output) : undefined,
          startDate: d.startDate,
          stopDate: d.stopDate,
        };
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`no finished search execution for ${modelKey} within ${Math.round(timeoutMs / 1000)} s (${mine ? 'still running' : 'not started'})`);
    }
    await sleep(opts.pollMs ?? 1000);
  }
}

export interface FollowedSearch {
  searchId: string;
  executionArn: string;
  /** `succeeded` or `failed` (status.json, or the execution when it failed before writing one). */
  state: 'succeeded' | 'failed';
  error?: { name: string; message: string };
}

/**
 * Follows the search an upload started to its end, through continue-as-new: the execution
 * the upload event started, then the search's status.json in the work bucket (which the
 * last execution of the chain writes).
 */
export async function followSearch(
  sfn: SFNClient,
  work: ObjectStore,
  stateMachineArn: string,
  modelKey: string,
  since: Date,
  opts: { timeoutMs?: number; onStarted?: (executionArn: string, searchId: string) => void } = {},
): Promise<FollowedSearch> {
  const timeoutMs = opts.timeoutMs ?? 1_800_000;
  const deadline = Date.now() + timeoutMs;
  const first = await waitForSearch(sfn, stateMachineArn, modelKey, since, { timeoutMs, onStarted: opts.onStarted, pollMs: 2000 });
  const { searchId, executionArn } = first;
  if (first.status !== 'SUCCEEDED') {
    return { searchId, executionArn, state: 'failed', error: { name: first.error ?? first.status, message: describeCause(first.cause ?? '', first.error ?? '') } };
  }
  while (true) {
    const status = await readStatus(work, searchId);
    if (status?.state === 'succeeded') return { searchId, executionArn, state: 'succeeded' };
    if (status?.state === 'failed') return { searchId, executionArn, state: 'failed', error: status.error };
    if (Date.now() > deadline) throw new Error(`search ${searchId} still ${status?.state ?? 'starting'} after ${Math.round(timeoutMs / 1000)} s`);
    await sleep(2000);
  }
}
