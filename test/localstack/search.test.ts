/**
 * The deployed stack end to end on LocalStack: upload a zoo model -> EventBridge -> search
 * state machine -> Lambdas -> results bucket; `haq policies get` fetches the result; an
 * Evaluate that fails once is retried and the search ends where a clean run ends; a
 * malformed upload fails with a clear status.json and leaves the previous policy alone.
 * The tests run in order: the later ones compare with the first search's result.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  GetFunctionConfigurationCommand,
  LambdaClient,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionUpdatedV2,
} from '@aws-sdk/client-lambda';
import { SFNClient } from '@aws-sdk/client-sfn';
import * as ort from 'onnxruntime-node';
import { resultKeys, searchKeys } from '../../shared/keys';
import { Policy } from '../../shared/quant/policy';
import { SearchStatus } from '../../shared/search/results';
import { tempDir } from '../helpers/tmp';
import { getJson, getText, uniqueSuffix } from './aws';
import type { DeployedStack } from '../../cli/localstack/deploy';
import { executionHistory, listKeys, tinySearch, uploadModel, waitForSearch, type FinishedSearch } from './haq';
import { failureReport, repoRoot, type LocalStackHandle } from './harness';
import { closeStackSession, openStackSession } from './stack-session';

const run = promisify(execFile);
const target = 'bismo-edge';
const constraint = resultKeys.constraintLabel('latency', 0.6);
// Unique per run, so that the suite can run again on the same LocalStack.
const model = `e2e-cnn-${uniqueSuffix()}`;

describe('search on the deployed stack', () => {
  let ls: LocalStackHandle;
  let stack: DeployedStack;
  let s3: S3Client;
  let sfn: SFNClient;
  let lambda: LambdaClient;
  const tmp = tempDir('haq-localstack');
  let clean: { search: FinishedSearch; policy: Policy };

  before(async () => {
    ({ ls, stack, s3, sfn } = await openStackSession());
    lambda = new LambdaClient(ls.clientConfig);
  });
  after(async () => {
    lambda?.destroy();
    tmp.cleanup();
    await closeStackSession({ ls, s3, sfn });
  });

  const objectBytes = async (bucket: string, key: string) =>
    Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());

  it('an uploaded model is searched and its policy, report and quantized model land in the results bucket', async () => {
    const { modelKey, uploadedAt } = await uploadModel(s3, stack, model);
    const search = await waitForSearch(sfn, stack, modelKey, uploadedAt);
    assert.equal(search.status, 'SUCCEEDED', failureReport(ls, search));

    const status = SearchStatus.parse(await getJson(s3, stack.workBucket, searchKeys.status(search.searchId)));
    assert.equal(status.state, 'succeeded');
    assert.equal(status.model, model);
    assert.equal(status.episodesDone, 4);

    const files = await listKeys(s3, stack.resultsBucket, resultKeys.prefix(model, target, constraint));
    for (const key of [
      resultKeys.policy(model, target, constraint, search.searchId),
      resultKeys.report(model, target, constraint, search.searchId),
      resultKeys.quantModel(model, target, constraint, search.searchId),
      resultKeys.latest(model, target, constraint),
    ]) {
      assert.ok(files.includes(key), `${key} in ${files.join(', ')}`);
    }
    const latest = await getJson<{ searchId: string }>(s3, stack.resultsBucket, resultKeys.latest(model, target, constraint));
    assert.equal(latest.searchId, search.searchId);
    const policy = Policy.parse(await getJson(s3, stack.resultsBucket, resultKeys.policy(model, target, constraint, search.searchId)));
    assert.ok(policy.layers.length >= 3, `${policy.layers.length} layers`);
    for (const l of policy.layers) assert.ok(l.wBits >= 2 && l.wBits <= 8, `${l.name} wBits ${l.wBits}`);
    assert.match(await getText(s3, stack.resultsBucket, resultKeys.report(model, target, constraint, search.searchId)), /<html/i);
    clean = { search, policy };
  });

  it('the quantized model in the results bucket loads and runs in onnxruntime', async () => {
    assert.ok(clean, 'needs the first search');
    const bytes = await objectBytes(stack.resultsBucket, resultKeys.quantModel(model, target, constraint, clean.search.searchId));
    const bits = clean.policy.layers.map((l) => `${l.name} w${l.wBits}a${l.aBits}`).join(', ');
    const session = await ort.InferenceSession.create(bytes).catch((err) => {
      throw new Error(`onnxruntime rejects the exported model of policy [${bits}]: ${err.message}`);
    });
    const [n, c, h, w] = [1, 1, 28, 28]; // fmnist-cnn's input (models/zoo/fmnist-cnn/info.json)
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(n * c * h * w).fill(0.5), [n, c, h, w]) });
    const logits = out[session.outputNames[0]].data as Float32Array;
    assert.equal(logits.length, 10);
    assert.ok(logits.every(Number.isFinite));
  });

  it('haq policies get fetches the policy and its files from the results bucket', async () => {
    assert.ok(clean, 'needs the first search');
    const out = join(tmp.dir, 'fetched');
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'cli/main.ts', 'policies', 'get', model, '--target', target, '--constraint', 'latency:0.6', '--out', out, '--json'],
      { cwd: repoRoot, env: { ...process.env, ...ls.awsEnv, HAQ_STACK: stack.stackName } },
    );
    assert.equal(JSON.parse(stdout).searchId, clean.search.searchId, stdout);
    const fetched = Policy.parse(JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8')));
    assert.deepEqual(fetched, clean.policy);
    for (const file of ['report.html', 'model.quant.onnx']) {
      const local = readFileSync(join(out, file));
      const remote = await objectBytes(stack.resultsBucket, `${resultKeys.prefix(model, target, constraint)}${clean.search.searchId}/${file}`);
      assert.ok(local.equals(remote), `${file} matches the bucket`);
    }
  });

  it('an Evaluate that fails once per invocation is retried and the search matches the clean run', async () => {
    assert.ok(clean, 'needs the first search');
    const fn = stack.functionNames.Evaluate;
    const before = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }));
    const setEnv = async (vars: Record<string, string>) => {
      await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Environment: { Variables: vars } }));
      await waitUntilFunctionUpdatedV2({ client: lambda, maxWaitTime: 60 }, { FunctionName: fn });
    };
    await setEnv({ ...before.Environment?.Variables, HAQ_INJECT_FAULT: 'evaluate' });
    try {
      const { modelKey, uploadedAt } = await uploadModel(s3, stack, `${model}-fault`);
      const search = await waitForSearch(sfn, stack, modelKey, uploadedAt);
      assert.equal(search.status, 'SUCCEEDED', failureReport(ls, search));

      // The faults did happen: markers in the work bucket and failed Evaluate tasks in the history.
      const markers = await listKeys(s3, stack.workBucket, `${searchKeys.prefix(search.searchId)}faults/`);
      assert.ok(markers.length >= 4, `fault markers: ${markers.join(', ')}`);
      const history = await executionHistory(sfn, search.executionArn);
      const failures = history.filter((e) => e.type === 'LambdaFunctionFailed' || e.type === 'TaskFailed');
      const transient = failures.filter((e) => (e.lambdaFunctionFailedEventDetails?.error ?? e.taskFailedEventDetails?.error) === 'TransientError');
      assert.ok(transient.length >= markers.length, `${transient.length} TransientError failures for ${markers.length} markers`);

      const policy = Policy.parse(
        await getJson(s3, stack.resultsBucket, resultKeys.policy(`${model}-fault`, target, constraint, search.searchId)),
      );
      assert.deepEqual(policy.layers, clean.policy.layers, 'same seed, same policy');
      // Everything but the search id: episode, top-1, reward, latency, energy, size.
      const withoutId = (m: Policy['metrics']) => ({ ...m, searchId: undefined });
      assert.deepEqual(withoutId(policy.metrics), withoutId(clean.policy.metrics), 'same accuracy and cost');
    } finally {
      await setEnv(before.Environment?.Variables ?? {});
    }
  });

  it('a malformed model upload fails with a clear status.json and leaves the previous policy untouched', async () => {
    assert.ok(clean, 'needs the first search');
    const prefix = resultKeys.prefix(model, target, constraint);
    const keysBefore = await listKeys(s3, stack.resultsBucket, prefix);
    const bytesBefore = await Promise.all(keysBefore.map((k) => objectBytes(stack.resultsBucket, k)));

    const garbage = Buffer.from('this is not an ONNX model, just some bytes \u0000\u0001\u0002 to parse');
    const { modelKey, uploadedAt } = await uploadModel(s3, stack, model, { model: garbage, data: false, search: tinySearch() });
    const search = await waitForSearch(sfn, stack, modelKey, uploadedAt);
    assert.equal(search.status, 'FAILED');

    const status = SearchStatus.parse(await getJson(s3, stack.workBucket, searchKeys.status(search.searchId)));
    assert.equal(status.state, 'failed');
    assert.ok(status.error, 'status.json names the error');
    assert.match(status.error!.name, /^(InvalidInputError|UnsupportedModelError|CorruptObjectError)$/);
    assert.match(status.error!.message, /model\.onnx|ONNX|protobuf/i, status.error!.message);

    const keysAfter = await listKeys(s3, stack.resultsBucket, prefix);
    assert.deepEqual(keysAfter, keysBefore, 'no result object added or removed');
    const bytesAfter = await Promise.all(keysAfter.map((k) => objectBytes(stack.resultsBucket, k)));
    bytesAfter.forEach((b, i) => assert.ok(b.equals(bytesBefore[i]), `${keysAfter[i]} unchanged`));
  });
});
