/**
 * The haq-node runtime executor inside LocalStack, with a trivial handler: results, logs,
 * errors named by err.name, the function timeout and the respawn after it, init errors,
 * the AWS SDK made resolvable for an ESM bundle, and the function's credentials/endpoint.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createNodeFunction, uniqueSuffix } from './aws';
import { trivialHandler } from './fixtures/trivial-handler';
import { useLocalStack, type LocalStackHandle } from './harness';


const decode = (payload?: Uint8Array) => JSON.parse(Buffer.from(payload ?? []).toString() || 'null');

describe('haq-node executor in LocalStack', () => {
  let ls: LocalStackHandle;
  let lambda: LambdaClient;
  let s3: S3Client;
  const fn = `haq-trivial-${uniqueSuffix()}`;

  before(async () => {
    ls = await useLocalStack();
    lambda = new LambdaClient(ls.clientConfig);
    s3 = new S3Client(ls.clientConfig);
    await createNodeFunction(lambda, {
      name: fn,
      files: [{ name: 'index.mjs', data: trivialHandler }],
      timeoutS: 2,
      environment: { GREETING: 'hello' },
    });
  });
  after(async () => {
    lambda?.destroy();
    s3?.destroy();
    await ls?.release();
  });

  const invoke = async (event: unknown) => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: fn, Payload: JSON.stringify(event), LogType: 'Tail' }));
    return { ...out, body: decode(out.Payload), logs: Buffer.from(out.LogResult ?? '', 'base64').toString() };
  };

  it('returns the handler result and its logs; the environment stays warm', async () => {
    const first = await invoke({ value: 41 });
    assert.equal(first.FunctionError, undefined);
    assert.equal(first.body.echo, 41);
    assert.equal(first.body.functionName, fn);
    assert.equal(first.body.fromEnv, 'hello');
    assert.ok(first.body.remainingMs > 0 && first.body.remainingMs <= 2000, `remainingMs ${first.body.remainingMs}`);
    assert.match(first.logs, /trivial handler got \{"value":41\}/);
    const second = await invoke({ value: 42 });
    assert.equal(second.body.invocations, first.body.invocations + 1, 'same process serves the next invocation');
  });

  it('reads S3 with the credentials and endpoint LocalStack passes to the function', async () => {
    const bucket = `haq-trivial-${uniqueSuffix()}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'a.txt', Body: 'from s3' }));
    const out = await invoke({ bucket, key: 'a.txt' });
    assert.equal(out.FunctionError, undefined, JSON.stringify(out.body));
    assert.equal(out.body.object, 'from s3');
  });

  it('reports a thrown error with errorType = err.name', async () => {
    const out = await invoke({ fail: 'TransientError' });
    assert.equal(out.FunctionError, 'Unhandled');
    assert.equal(out.body.errorType, 'TransientError');
    assert.equal(out.body.errorMessage, 'asked to fail: TransientError');
    assert.ok(Array.isArray(out.body.trace));
  });

  it('enforces the function timeout, then serves the next invocation from a fresh process', async () => {
    const out = await invoke({ sleepMs: 5000 });
    assert.equal(out.FunctionError, 'Unhandled');
    assert.equal(out.body.errorType, 'Sandbox.Timedout');
    assert.match(out.body.errorMessage, /timed out after 2\.00 seconds/);
    const next = await invoke({ value: 'after timeout' });
    assert.equal(next.FunctionError, undefined, JSON.stringify(next.body));
    assert.equal(next.body.echo, 'after timeout');
    assert.equal(next.body.invocations, 1, 'a new process counts from 1');
  });

  it('reports a runtime that exits mid-invocation, then recovers', async () => {
    const out = await invoke({ exit: true });
    assert.equal(out.FunctionError, 'Unhandled');
    assert.equal(out.body.errorType, 'Runtime.ExitError');
    const next = await invoke({ value: 'after exit' });
    assert.equal(next.body.echo, 'after exit');
  });

  it('reports a missing handler module as Runtime.ImportModuleError', async () => {
    const broken = `haq-broken-${uniqueSuffix()}`;
    await createNodeFunction(lambda, { name: broken, files: [{ name: 'index.mjs', data: trivialHandler }], handler: 'missing.handler' });
    const out = await lambda.send(new InvokeCommand({ FunctionName: broken, Payload: '{}' }));
    assert.equal(out.FunctionError, 'Unhandled');
    const body = decode(out.Payload);
    assert.equal(body.errorType, 'Runtime.ImportModuleError');
    assert.match(body.errorMessage, /missing/);
  });
});
