/**
 * `haq policies` over a results store: a local folder (FsStore) laid out like the results
 * bucket, and S3Store over a fake S3 client (the SDK is the neighbour being replaced).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  constraintLabel,
  downloadPolicy,
  explainAwsError,
  getPolicy,
  listPolicies,
  resolveBucket,
} from '../../cli/commands/policies';
import { CorruptObjectError, InvalidInputError, ObjectNotFoundError } from '../../shared/errors';
import { resultKeys } from '../../shared/keys';
import { FsStore } from '../../shared/store/fs-store';
import { putJson, type ObjectStore } from '../../shared/store/object-store';
import { S3Store } from '../../shared/store/s3-store';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-policies');
after(() => tmp.cleanup());

const policy = (top1: number) => ({
  model: { name: 'lenet' },
  target: 'bismo-edge',
  constraint: { kind: 'latency', ratio: 0.5 },
  layers: [
    { name: 'conv1', wBits: 8, aBits: 8 },
    { name: 'fc', wBits: 4, aBits: 6 },
  ],
  metrics: { top1 },
});

/** Two searches of lenet on bismo-edge latency-0.5 (s2 latest), one on bitfusion, one of mlp, one unfinished. */
async function seed(store: ObjectStore): Promise<void> {
  await putJson(store, resultKeys.policy('lenet', 'bismo-edge', 'latency-0.5', 's1'), policy(97.1));
  await putJson(store, resultKeys.policy('lenet', 'bismo-edge', 'latency-0.5', 's2'), policy(98.2));
  await store.put(resultKeys.report('lenet', 'bismo-edge', 'latency-0.5', 's2'), '<html></html>');
  await store.put(resultKeys.quantModel('lenet', 'bismo-edge', 'latency-0.5', 's2'), new Uint8Array([8, 1, 2]));
  await putJson(store, resultKeys.latest('lenet', 'bismo-edge', 'latency-0.5'), { searchId: 's2', top1: 98.2 });
  await putJson(store, resultKeys.policy('lenet', 'bitfusion', 'energy-0.3', 's3'), policy(96));
  await putJson(store, resultKeys.latest('lenet', 'bitfusion', 'energy-0.3'), { searchId: 's3' });
  await putJson(store, resultKeys.policy('mlp', 'bismo-edge', 'size-0.25', 's4'), policy(90));
  await store.put(resultKeys.report('mlp', 'bismo-edge', 'latency-0.5', 'unfinished'), '<html></html>');
}

describe('constraintLabel', () => {
  for (const [input, label] of [
    ['latency:0.5', 'latency-0.5'],
    ['latency-0.5', 'latency-0.5'],
    ['energy:0.25', 'energy-0.25'],
    ['size:1', 'size-1'],
  ]) {
    it(`${input} -> ${label}`, () => assert.equal(constraintLabel(input), label));
  }
  for (const bad of ['speed:0.5', 'latency:0', 'latency:1.5', 'latency', '', 'latency:abc']) {
    it(`rejects "${bad}" naming it`, () => {
      assert.throws(() => constraintLabel(bad), (err: Error) => err instanceof InvalidInputError && err.message.includes(`"${bad}"`));
    });
  }
});

describe('listPolicies / getPolicy over a local results folder', async () => {
  const store = new FsStore(join(tmp.dir, 'results'));
  await seed(store);

  it('lists every finished search with its latest flag, skipping folders without policy.json', async () => {
    const entries = await listPolicies(store);
    assert.deepEqual(
      entries.map((e) => [e.model, e.target, e.constraint, e.searchId, e.latest]),
      [
        ['lenet', 'bismo-edge', 'latency-0.5', 's1', false],
        ['lenet', 'bismo-edge', 'latency-0.5', 's2', true],
        ['lenet', 'bitfusion', 'energy-0.3', 's3', true],
        ['mlp', 'bismo-edge', 'size-0.25', 's4', false],
      ],
    );
    assert.deepEqual(entries[1].files, ['model.quant.onnx', 'policy.json', 'report.html']);
  });

  it('filters by model, target and constraint', async () => {
    assert.deepEqual((await listPolicies(store, { model: 'mlp' })).map((e) => e.searchId), ['s4']);
    assert.deepEqual((await listPolicies(store, { model: 'lenet', target: 'bitfusion' })).map((e) => e.searchId), ['s3']);
    assert.deepEqual((await listPolicies(store, { target: 'bismo-edge' })).map((e) => e.searchId), ['s1', 's2', 's4']);
    assert.deepEqual((await listPolicies(store, { model: 'lenet', target: 'bismo-edge', constraint: 'latency:0.5' })).map((e) => e.searchId), ['s1', 's2']);
    assert.deepEqual(await listPolicies(store, { model: 'resnet' }), []);
  });

  it('rejects a filter value with a slash', async () => {
    await assert.rejects(listPolicies(store, { model: 'a/b' }), InvalidInputError);
  });

  it('gets the latest policy by default, or a named search', async () => {
    const latest = await getPolicy(store, { model: 'lenet', target: 'bismo-edge', constraint: 'latency:0.5' });
    assert.equal(latest.searchId, 's2');
    assert.equal(latest.policy.metrics?.top1, 98.2);
    assert.deepEqual(Object.keys(latest.keys).sort(), ['model.quant.onnx', 'policy.json', 'report.html']);
    const older = await getPolicy(store, { model: 'lenet', target: 'bismo-edge', constraint: 'latency-0.5', searchId: 's1' });
    assert.equal(older.policy.metrics?.top1, 97.1);
    assert.deepEqual(Object.keys(older.keys), ['policy.json']);
  });

  it('names what is stored when there is no latest policy for the request', async () => {
    await assert.rejects(getPolicy(store, { model: 'lenet', target: 'bismo-cloud', constraint: 'latency:0.5' }), (err: Error) => {
      assert.ok(err instanceof ObjectNotFoundError);
      assert.match(err.message, /policies\/lenet\/bismo-cloud\/latency-0.5\/latest.json/);
      assert.match(err.message, /--target bismo-edge --constraint latency-0.5/);
      return true;
    });
    await assert.rejects(getPolicy(store, { model: 'nope', target: 't', constraint: 'size:0.5' }), /no policies are stored for model nope/);
  });

  it('reports a policy.json that is not a policy as corrupt', async () => {
    await putJson(store, resultKeys.policy('bad', 't', 'size-0.5', 'x'), { layers: [] });
    await assert.rejects(getPolicy(store, { model: 'bad', target: 't', constraint: 'size:0.5', searchId: 'x' }), CorruptObjectError);
  });

  it('downloads the policy files into a folder', async () => {
    const stored = await getPolicy(store, { model: 'lenet', target: 'bismo-edge', constraint: 'latency:0.5' });
    const out = join(tmp.dir, 'out');
    const written = await downloadPolicy(store, stored, out);
    assert.equal(written.length, 3);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8')).layers[1], { name: 'fc', wBits: 4, aBits: 6 });
    assert.deepEqual([...readFileSync(join(out, 'model.quant.onnx'))], [8, 1, 2]);
  });
});

/** An in-memory S3 behind the SDK's `send`: Get, Put, Head and paginated ListObjectsV2. */
class FakeS3 {
  readonly objects = new Map<string, Uint8Array>();
  readonly calls: Array<{ command: string; input: Record<string, unknown> }> = [];
  constructor(readonly bucket: string, readonly pageSize = 2) {}

  async send(command: { input: Record<string, unknown> }): Promise<unknown> {
    const { input } = command;
    this.calls.push({ command: command.constructor.name, input });
    if (input.Bucket !== this.bucket) throw Object.assign(new Error('NoSuchBucket'), { name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } });
    const notFound = () => Object.assign(new Error('not found'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    if (command instanceof PutObjectCommand) {
      const body = input.Body;
      this.objects.set(input.Key as string, typeof body === 'string' ? new TextEncoder().encode(body) : (body as Uint8Array));
      return {};
    }
    if (command instanceof GetObjectCommand) {
      const bytes = this.objects.get(input.Key as string);
      if (!bytes) throw notFound();
      return { Body: { transformToByteArray: async () => bytes } };
    }
    if (command instanceof HeadObjectCommand) {
      if (!this.objects.has(input.Key as string)) throw notFound();
      return {};
    }
    if (command instanceof ListObjectsV2Command) {
      const keys = [...this.objects.keys()].filter((k) => k.startsWith((input.Prefix as string) ?? '')).sort();
      const start = input.ContinuationToken ? Number(input.ContinuationToken) : 0;
      const page = keys.slice(start, start + this.pageSize);
      const more = start + this.pageSize < keys.length;
      return { Contents: page.map((Key) => ({ Key })), IsTruncated: more, NextContinuationToken: more ? String(start + this.pageSize) : undefined };
    }
    throw new Error(`FakeS3: unexpected ${command.constructor.name}`);
  }
}

describe('policies over S3 (fake S3 client)', () => {
  it('lists with the narrowest prefix, across pages, and reads latest.json', async () => {
    const s3 = new FakeS3('results-bucket');
    const store = new S3Store('results-bucket', s3 as unknown as S3Client);
    await seed(store);
    s3.calls.length = 0;
    const entries = await listPolicies(store, { model: 'lenet', target: 'bismo-edge' });
    assert.deepEqual(entries.map((e) => [e.searchId, e.latest]), [['s1', false], ['s2', true]]);
    const lists = s3.calls.filter((c) => c.command === 'ListObjectsV2Command');
    assert.ok(lists.length >= 2, 'paginated');
    assert.ok(lists.every((c) => c.input.Prefix === 'policies/lenet/bismo-edge/'));
  });
});

describe('resolveBucket', () => {
  const outputs = async (stack: string) => {
    if (stack !== 'Haq') throw new Error(`Stack with id ${stack} does not exist`);
    return { ResultsBucketName: 'from-stack', ModelsBucketName: 'models-from-stack' };
  };
  it('takes --bucket first, then the environment, then the stack output', async () => {
    const base = { envVar: 'HAQ_RESULTS_BUCKET', output: 'ResultsBucketName' as const, describeStack: outputs };
    assert.equal(await resolveBucket({ ...base, flag: 'flag', env: { HAQ_RESULTS_BUCKET: 'env' } }), 'flag');
    assert.equal(await resolveBucket({ ...base, env: { HAQ_RESULTS_BUCKET: 'env' } }), 'env');
    assert.equal(await resolveBucket({ ...base, env: {} }), 'from-stack');
    assert.equal(await resolveBucket({ ...base, output: 'ModelsBucketName', env: {} }), 'models-from-stack');
  });
  it('explains all three ways when none works', async () => {
    await assert.rejects(
      resolveBucket({ envVar: 'HAQ_RESULTS_BUCKET', output: 'ResultsBucketName', env: { HAQ_STACK: 'Other' }, describeStack: outputs }),
      (err: Error) => err instanceof InvalidInputError && /--bucket/.test(err.message) && /HAQ_RESULTS_BUCKET/.test(err.message) && /Other/.test(err.message),
    );
    await assert.rejects(
      resolveBucket({ envVar: 'HAQ_WORK_BUCKET', output: 'WorkBucketName', env: {}, describeStack: outputs }),
      /has no output WorkBucketName/,
    );
  });
});

describe('explainAwsError', () => {
  const cases: Array<[string, object, RegExp]> = [
    ['no region', Object.assign(new Error('Region is missing'), { name: 'Error' }), /AWS_REGION/],
    ['no credentials', Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }), /AWS_PROFILE/],
    ['no bucket', Object.assign(new Error('The specified bucket does not exist'), { name: 'NoSuchBucket' }), /bucket b1 does not exist/],
    ['denied', Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }), /s3:\/\/b1 was denied/],
  ];
  for (const [what, err, pattern] of cases) {
    it(`explains ${what}`, () => {
      const out = explainAwsError(err, 'b1') as Error;
      assert.ok(out instanceof InvalidInputError);
      assert.match(out.message, pattern);
    });
  }
  it('passes other errors through', () => {
    const err = new ObjectNotFoundError('policies/x');
    assert.equal(explainAwsError(err, 'b1'), err);
  });
});
