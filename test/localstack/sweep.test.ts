/**
 * The sweep state machine on the deployed stack: a sweep config in the models bucket (the
 * scheduled rule's input names it) over one model and two targets runs one nested search
 * per target and writes the cross-target comparison.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { resultKeys, searchKeys } from '../../shared/keys';
import { getJson, getText, uniqueSuffix, waitForExecution } from './aws';
import type { DeployedStack } from '../../cli/localstack/deploy';
import { searchDataFiles, tinySearch, zooDataDir, zooModelPath } from './haq';
import { failureReport, type LocalStackHandle } from './harness';
import { closeStackSession, openStackSession } from './stack-session';

interface Comparison {
  sweepId: string;
  targets: string[];
  rows: Array<{ searchId: string; model: string; specialisedFor: string; state: string; top1: number | null; runOn: Array<{ target: string; latencyRatio: number }> }>;
}

describe('sweep on the deployed stack', () => {
  let ls: LocalStackHandle;
  let stack: DeployedStack;
  let s3: S3Client;
  let sfn: SFNClient;

  before(async () => ({ ls, stack, s3, sfn } = await openStackSession()));
  after(() => closeStackSession({ ls, s3, sfn }));

  it('sweeps one model over two targets and writes the comparison', async () => {
    const put = (Key: string, Body: Uint8Array | string) => s3.send(new PutObjectCommand({ Bucket: stack.modelsBucket, Key, Body }));
    // Not models/<name>/model.onnx: this upload must not start a search of its own.
    const modelKey = 'models/e2e-sweep/cnn.onnx';
    await put(modelKey, readFileSync(zooModelPath));
    for (const file of searchDataFiles) await put(`models/e2e-sweep/data/${file}`, readFileSync(join(zooDataDir, file)));
    const sweepId = `e2e-sweep-${uniqueSuffix()}`;
    const { hardware: _h, constraint: _c, ...config } = tinySearch();
    await put(
      'sweeps/e2e.json',
      JSON.stringify({
        sweepId,
        models: [{ name: 'e2e-sweep', modelKey, dataPrefix: 'models/e2e-sweep/data/' }],
        targets: ['bismo-edge', 'bitfusion'],
        // Feasible on both: with 2-bit layers bitfusion reaches only 0.82 of its 8/8 latency
        // (the first and last layer stay at 8 bits).
        constraints: ['latency:0.9'],
        config,
      }),
    );
    // The scheduled rule's input (infra/constructs/triggers.ts), started by hand.
    const { executionArn } = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: stack.sweepStateMachineArn,
        input: JSON.stringify({ id: sweepId, source: 'schedule', configKey: 'sweeps/e2e.json', scheduledTime: new Date().toISOString() }),
      }),
    );
    const done = await waitForExecution(sfn, executionArn!, 900_000);
    assert.equal(done.status, 'SUCCEEDED', failureReport(ls, done));

    const comparison = await getJson<Comparison>(s3, stack.resultsBucket, resultKeys.sweep(sweepId));
    assert.deepEqual(comparison.targets, ['bismo-edge', 'bitfusion']);
    assert.equal(comparison.rows.length, 2);
    assert.deepEqual(comparison.rows.map((r) => r.specialisedFor).sort(), ['bismo-edge', 'bitfusion']);
    for (const row of comparison.rows) {
      const status = row.state === 'succeeded' ? null : await getJson<{ error?: unknown }>(s3, stack.workBucket, searchKeys.status(row.searchId)).catch((e) => String(e));
      assert.equal(row.state, 'succeeded', `${row.searchId} (${row.specialisedFor}): ${JSON.stringify(status)}`);
      assert.equal(row.model, 'e2e-sweep');
      assert.ok(row.top1 !== null && row.top1 > 0, `top1 ${row.top1}`);
      assert.deepEqual(row.runOn.map((c) => c.target), ['bismo-edge', 'bitfusion']);
      for (const cell of row.runOn) assert.ok(cell.latencyRatio > 0 && cell.latencyRatio <= 1.0001, `${row.specialisedFor} on ${cell.target}: ${cell.latencyRatio}`);
      // On its own target the policy meets the searched budget.
      const own = row.runOn.find((c) => c.target === row.specialisedFor)!;
      assert.ok(own.latencyRatio <= 0.9 + 1e-9, `${row.specialisedFor} on itself: ${own.latencyRatio}`);
      const policyKey = resultKeys.policy('e2e-sweep', row.specialisedFor, resultKeys.constraintLabel('latency', 0.9), row.searchId);
      assert.ok(await getJson(s3, stack.resultsBucket, policyKey), `${policyKey} written by the nested search`);
    }
    assert.match(await getText(s3, stack.resultsBucket, resultKeys.sweepReport(sweepId)), /haq sweep/);
  });
});
