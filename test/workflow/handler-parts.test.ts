/**
 * The workflow's small parts: search ids derived from events (a retried Prepare finds the
 * same search), the results-prefix lock (conditional create, owner-only release, takeover of
 * ended or stale holders), RecordFailure's error record, sweep planning, handler contracts.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { acquireLock, releaseLock } from '../../functions/lib/lock';
import { searchRequest, modelNameFromKey } from '../../functions/lib/search-input';
import { lambdaHandler, readEnv, silentLogger, type HandlerDeps } from '../../functions/lib/runtime';
import { errorFromCatch, makeHandler as recordFailure } from '../../functions/record-failure';
import { planSweep, SweepSpec, ConstraintSpec } from '../../functions/compare';
import { makeHandler as simulate } from '../../functions/simulate';
import { localStores } from '../../cli/embedded/handlers';
import { InvalidInputError, SearchBusyError } from '../../shared/errors';
import { lockKeys, searchKeys } from '../../shared/keys';
import { getJson, putJson } from '../../shared/store/object-store';
import { SearchStatus } from '../../shared/search/results';
import { parse } from '../../shared/validate';
import { tempDir } from '../helpers/tmp';

const s3Event = (id: string, key = 'models/resnet/model.onnx') => ({
  id,
  'detail-type': 'Object Created',
  detail: { bucket: { name: 'haq-models' }, object: { key, etag: 'abc' } },
});

describe('search requests', () => {
  it('derives the same search id from the same event, a different one from another upload', () => {
    const a = searchRequest(s3Event('e-1'));
    assert.equal(a.model, 'resnet');
    assert.equal(a.modelKey, 'models/resnet/model.onnx');
    assert.equal(a.dataPrefix, 'models/resnet/data/');
    assert.equal(searchRequest(s3Event('e-1')).searchId, a.searchId);
    assert.notEqual(searchRequest(s3Event('e-2')).searchId, a.searchId);
    assert.match(a.searchId, /^resnet-[0-9a-f]{12}$/);
  });

  it('hashes a direct request canonically (key order does not matter) and honours an explicit id', () => {
    const a = searchRequest({ modelKey: 'models/m/model.onnx', hardware: 'bitfusion', seed: 1 });
    const b = searchRequest({ seed: 1, hardware: 'bitfusion', modelKey: 'models/m/model.onnx' });
    assert.equal(a.searchId, b.searchId);
    assert.deepEqual(a.overrides, { hardware: 'bitfusion', seed: 1 });
    assert.notEqual(searchRequest({ modelKey: 'models/m/model.onnx', hardware: 'bitfusion', seed: 2 }).searchId, a.searchId);
    assert.equal(searchRequest({ modelKey: 'x.onnx', searchId: 'fixed-1' }).searchId, 'fixed-1');
  });

  it('rejects events for other objects and malformed input with InvalidInputError', () => {
    assert.throws(() => searchRequest(s3Event('e', 'models/m/search.json')), (e: Error) => e instanceof InvalidInputError && /model\.onnx/.test(e.message));
    assert.throws(() => searchRequest({ detail: { bucket: {} } }), InvalidInputError);
    assert.throws(() => searchRequest({ hardware: 'bismo-edge' }), (e: Error) => e instanceof InvalidInputError && /modelKey/.test(e.message));
  });

  it('names models from their keys', () => {
    assert.equal(modelNameFromKey('models/mobilenet-v2/model.onnx'), 'mobilenet-v2');
    assert.equal(modelNameFromKey('uploads/resnet18.onnx'), 'resnet18');
  });
});

describe('results-prefix lock', () => {
  const tmp = tempDir('haq-lock');
  after(() => tmp.cleanup());
  const { work } = localStores(tmp.dir);
  const scope = { model: 'm', target: 'bismo-edge', constraint: 'latency-0.5' };
  const t0 = new Date('2026-01-01T00:00:00Z');

  it('lets one search hold it, is re-entrant for that search, and refuses another with SearchBusyError', async () => {
    await putJson(work, searchKeys.status('s1'), { searchId: 's1', state: 'running' });
    await acquireLock(work, scope, 's1', t0);
    await acquireLock(work, scope, 's1', t0); // a retried Prepare
    await assert.rejects(acquireLock(work, scope, 's2', t0), (e: Error) => e instanceof SearchBusyError && /s1/.test(e.message) && /s2/.test(e.message));
  });

  it('is released only by its owner', async () => {
    assert.equal(await releaseLock(work, scope, 's2'), false);
    assert.ok(await work.exists(lockKeys.search('m', 'bismo-edge', 'latency-0.5')));
    assert.equal(await releaseLock(work, scope, 's1'), true);
    assert.ok(!(await work.exists(lockKeys.search('m', 'bismo-edge', 'latency-0.5'))));
  });

  it('is taken over from a holder that has ended or gone stale', async () => {
    await acquireLock(work, scope, 's1', t0);
    await putJson(work, searchKeys.status('s1'), { searchId: 's1', state: 'failed' });
    await acquireLock(work, scope, 's3', t0); // s1 ended without releasing
    const later = new Date(t0.getTime() + 7 * 3600 * 1000);
    await putJson(work, searchKeys.status('s3'), { searchId: 's3', state: 'running' });
    await acquireLock(work, scope, 's4', later); // s3 is older than six hours
    await assert.rejects(acquireLock(work, scope, 's5', later), SearchBusyError);
  });

  it('lets exactly one of many racing Prepares win', async () => {
    const other = { ...scope, constraint: 'energy-0.5' };
    const results = await Promise.allSettled(['a', 'b', 'c', 'd', 'e'].map((id) => acquireLock(work, other, id, t0)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  });
});

describe('RecordFailure', () => {
  const tmp = tempDir('haq-rf');
  after(() => tmp.cleanup());
  const stores = localStores(tmp.dir);
  const deps: HandlerDeps = { stores, logger: silentLogger(), now: () => new Date('2026-01-01T00:00:00Z'), faults: [] };

  it('reads the Lambda error JSON Step Functions puts in Cause', () => {
    assert.deepEqual(errorFromCatch({ Error: 'InvalidDataError', Cause: JSON.stringify({ errorType: 'InvalidDataError', errorMessage: 'bad shape (4, 8)' }) }), {
      name: 'InvalidDataError',
      message: 'bad shape (4, 8)',
    });
    assert.deepEqual(errorFromCatch({ Error: 'X', Cause: 'X: plain text' }), { name: 'X', message: 'plain text' });
  });

  it('writes status.json failed under the id derived from the execution input when Prepare failed', async () => {
    const event = s3Event('e-9');
    const out = await recordFailure(deps)({ state: { ...event, error: { Error: 'UnsupportedModelError', Cause: 'UnsupportedModelError: not ONNX' } }, execution: event });
    const id = searchRequest(event).searchId;
    assert.equal((out as { searchId: string }).searchId, id);
    const status = await getJson(stores.work, searchKeys.status(id), SearchStatus);
    assert.deepEqual([status.state, status.error], ['failed', { name: 'UnsupportedModelError', message: 'not ONNX' }]);
  });
});

describe('sweep plan and handler contracts', () => {
  it('expands models x targets x constraints into search requests with fixed ids', () => {
    const spec = parse(SweepSpec, { models: ['a', { name: 'b' }], targets: ['bismo-edge', 'bitfusion'], constraints: ['latency:0.5', { kind: 'size', ratio: 0.25 }], config: { episodes: 3 } });
    const plan = planSweep(spec, 'sw');
    assert.equal(plan.items.length, 8);
    assert.deepEqual(plan.items[0].input, {
      episodes: 3,
      searchId: 'sw-000',
      model: 'a',
      modelKey: 'models/a/model.onnx',
      dataPrefix: 'models/a/data/',
      hardware: 'bismo-edge',
      constraint: { kind: 'latency', ratio: 0.5 },
    });
    assert.deepEqual(new Set(plan.items.map((i) => i.searchId)).size, 8);
  });

  it('parses kind:ratio constraints and rejects others', () => {
    assert.deepEqual(parse(ConstraintSpec, 'energy:0.25'), { kind: 'energy', ratio: 0.25 });
    assert.throws(() => parse(ConstraintSpec, 'speed:2', '--constraint'), (e: Error) => e instanceof InvalidInputError && /latency:0.5/.test(e.message));
    assert.throws(() => parse(ConstraintSpec, 'latency:1.5', '--constraint'), InvalidInputError);
  });

  it('rejects a malformed handler event with InvalidInputError naming the field', async () => {
    const tmp = tempDir('haq-contract');
    try {
      const deps: HandlerDeps = { stores: localStores(tmp.dir), logger: silentLogger(), now: () => new Date(), faults: [] };
      await assert.rejects(simulate(deps)({ mode: 'policy', searchId: 's', round: -1, index: 0 }), (e: Error) => e instanceof InvalidInputError && /round/.test(e.message));
      await assert.rejects(simulate(deps)({ mode: 'nope', searchId: 's' }), InvalidInputError);
    } finally {
      tmp.cleanup();
    }
  });

  it('fails a Lambda cold start that lacks a bucket variable, naming it', () => {
    const saved = { ...process.env };
    try {
      process.env.AWS_LAMBDA_FUNCTION_NAME = 'haq-test';
      process.env.WORK_BUCKET = 'w';
      process.env.MODELS_BUCKET = 'm';
      delete process.env.RESULTS_BUCKET;
      assert.throws(() => lambdaHandler('test', () => async () => 1), (e: Error) => e instanceof InvalidInputError && /RESULTS_BUCKET/.test(e.message));
    } finally {
      for (const k of ['AWS_LAMBDA_FUNCTION_NAME', 'WORK_BUCKET', 'MODELS_BUCKET', 'RESULTS_BUCKET']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  it('names a missing environment variable', () => {
    assert.throws(() => readEnv(['WORK_BUCKET', 'RESULTS_BUCKET'], { WORK_BUCKET: 'w' }), (e: Error) => e instanceof InvalidInputError && /RESULTS_BUCKET/.test(e.message));
  });
});
