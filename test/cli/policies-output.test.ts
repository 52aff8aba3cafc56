/**
 * `haq policies get` and `haq policies sweep` as a user runs them (child processes) against a
 * results bucket served by a minimal S3 endpoint over a local folder (GET, HEAD and
 * ListObjectsV2, path-style: the neighbour of the command, not the command): every accuracy
 * is printed as value ± standard error, 100 sqrt(p(1-p)/n) as policy.json carries it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../cli/localstack/process';
import type { Comparison } from '../../functions/compare';
import { resultKeys } from '../../shared/keys';
import { policyTop1 } from '../../shared/quant/policy';
import { haq } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-policies-output');
after(tmp.cleanup);
const bucketDir = join(tmp.dir, 'results');

/** Serves the files under bucketDir as the objects of bucket "results" (path-style S3). */
function s3Folder(): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const [, bucket, ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    if (bucket !== 'results') {
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchBucket</Code><Message>no such bucket</Message></Error>');
      return;
    }
    if (!key && url.searchParams.get('list-type') === '2') {
      const prefix = url.searchParams.get('prefix') ?? '';
      const walk = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [relative(bucketDir, join(d, f))]));
      const keys = walk(bucketDir).filter((k) => k.startsWith(prefix)).sort();
      const contents = keys.map((k) => `<Contents><Key>${k}</Key><Size>${statSync(join(bucketDir, k)).size}</Size></Contents>`).join('');
      res.writeHead(200, { 'content-type': 'application/xml' }).end(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>results</Name><Prefix>${prefix}</Prefix><KeyCount>${keys.length}</KeyCount><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`);
      return;
    }
    const path = join(bucketDir, key);
    if (!existsSync(path)) {
      res.writeHead(404, { 'content-type': 'application/xml' }).end(req.method === 'HEAD' ? undefined : `<Error><Code>NoSuchKey</Code><Message>no such key</Message><Key>${key}</Key></Error>`);
      return;
    }
    const body = readFileSync(path);
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(req.method === 'HEAD' ? undefined : body);
  });
}

function put(key: string, value: unknown): void {
  const path = join(bucketDir, key);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value));
}

const layers = [
  { name: 'conv1', wBits: 8, aBits: 8 },
  { name: 'fc', wBits: 4, aBits: 6 },
];
const evaluation = (top1: number, n: number) => ({ top1, top1Se: 100 * Math.sqrt((top1 / 100) * (1 - top1 / 100) / n), samples: n, mode: 'labels', metric: 'top1', score: top1, scoreSe: 100 * Math.sqrt((top1 / 100) * (1 - top1 / 100) / n) });
/** policy.json as Finalize writes it (the fields the summary reads). */
const finalized = {
  model: { name: 'lenet' },
  target: 'bismo-edge',
  constraint: { kind: 'latency', ratio: 0.5 },
  layers,
  metrics: {
    strategy: 'hybrid',
    metric: 'top1',
    rewardName: 'top1',
    reward: 0.1,
    episode: 31,
    top1: 89.55,
    top1Fp32: 89.53,
    valSamples: 4000,
    selectSamples: 2000,
    testSamples: 4000,
    selectSource: 'file',
    testTop1: 89.2,
    costRatio: 0.497,
    latencyMs: 1.25,
    energyUj: null,
    sizeBytes: 1234,
    evaluations: {
      val: evaluation(89.55, 4000),
      select: evaluation(90.05, 2000),
      test: evaluation(89.2, 4000),
      fp32: { val: evaluation(89.53, 4000), select: evaluation(90, 2000), test: evaluation(89.5, 4000) },
    },
    uniformPinned: null,
    uniformUnpinned: { wBits: 4, aBits: 4, pinned: false, costRatio: 0.45, val: evaluation(89.33, 4000), select: evaluation(89.4, 2000), test: evaluation(89.2, 4000) },
    uniform8: null,
    reference: 'uniformUnpinned',
    gain: { split: 'test', value: 0, se: 0.69, withinNoise: true },
  },
};

describe('haq policies get / sweep: accuracy with standard errors', () => {
  let server: Server;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    put(resultKeys.policy('lenet', 'bismo-edge', 'latency-0.5', 's2'), finalized);
    put(resultKeys.latest('lenet', 'bismo-edge', 'latency-0.5'), { searchId: 's2' });
    // An older policy.json: top-1 and the sample count only.
    put(resultKeys.policy('lenet', 'bitfusion', 'energy-0.3', 's1'), { model: { name: 'lenet' }, layers, metrics: { top1: 98.2, valSamples: 500 } });
    put(resultKeys.latest('lenet', 'bitfusion', 'energy-0.3'), { searchId: 's1' });
    const row = { model: 'lenet', constraint: 'latency-0.5', specialisedFor: 'bismo-edge', state: 'succeeded', error: null, runOn: [{ target: 'bismo-edge', latencyMs: 1.25, energyUj: null, latencyRatio: 0.497, energyRatio: null }] };
    const comparison: Comparison = {
      sweepId: 'sweep-1',
      targets: ['bismo-edge'],
      failed: 1,
      rows: [
        { ...row, searchId: 's2', top1: 89.55, top1Se: 0.483, testTop1: 89.2, testTop1Se: 0.491 },
        { ...row, searchId: 's3', state: 'failed', error: { name: 'BudgetInfeasibleError', message: 'budget 0.05 is below 0.11' }, top1: null, top1Se: null, testTop1: null, testTop1Se: null, runOn: [] },
      ],
    };
    put(resultKeys.sweep('sweep-1'), comparison);
    server = s3Folder();
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    env = { HAQ_ENDPOINT: `http://127.0.0.1:${port}`, HAQ_RESULTS_BUCKET: 'results', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' };
  });
  after(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('policies get: the search summary, every split and reference as value ± SE, and the gain', async () => {
    const r = await haq(['policies', 'get', 'lenet', '--target', 'bismo-edge', '--constraint', 'latency:0.5'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^lenet on bismo-edge, latency-0\.5, search s2\nlatencyMs=1\.25 sizeBytes=1234\n/);
    assert.match(r.stdout, /policy \(episode 31\)\s+89\.55 ± 0\.48\s+90\.05 ± 0\.67\s+89\.20 ± 0\.49/);
    assert.match(r.stdout, /uniform 4\/4, unpinned\s+89\.33 ± 0\.49\s+89\.40 ± 0\.69\s+89\.20 ± 0\.49/);
    assert.match(r.stdout, /FP32\s+89\.53 ± 0\.48\s+90\.00 ± 0\.67\s+89\.50 ± 0\.48/);
    assert.match(r.stdout, /on test: \+0\.00 ± 0\.69 points \(within noise: a tie\)/);
    assert.match(r.stdout, /conv1\s+8\s+8/);
  });

  it('policies get on an older policy.json: its top-1 ± SE from the recorded sample count', async () => {
    const r = await haq(['policies', 'get', 'lenet', '--target', 'bitfusion', '--constraint', 'energy:0.3'], env);
    assert.equal(r.code, 0, r.stderr);
    // 100 sqrt(0.982 x 0.018 / 500) = 0.59
    assert.match(r.stdout, /top-1 % validation: 98\.20 ± 0\.59\n/);
    assert.doesNotMatch(r.stdout, /top1=/);
  });

  it('policies sweep: top-1 ± SE on validation and test per row; a failed row its state and error', async () => {
    const r = await haq(['policies', 'sweep', 'sweep-1'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /top-1 % val\s+top-1 % test\s+on bismo-edge/);
    assert.match(r.stdout, /lenet\s+latency-0\.5\s+bismo-edge\s+89\.55 ± 0\.48\s+89\.20 ± 0\.49\s+0\.497\*/);
    assert.match(r.stdout, /failed\s+-\s+-\s+BudgetInfeasibleError: budget 0\.05 is below 0\.11/);
  });
});

describe('policyTop1: what a sweep row and policies get read from policy.json', () => {
  for (const { what, metrics, split, expected } of [
    { what: 'Finalize evaluations', metrics: finalized.metrics, split: 'test' as const, expected: { value: 89.2, se: evaluation(89.2, 4000).top1Se } },
    { what: 'top1 and valSamples only', metrics: { top1: 98.2, valSamples: 500 }, split: 'val' as const, expected: { value: 98.2, se: 100 * Math.sqrt(0.982 * 0.018 / 500) } },
    { what: 'testTop1 and testSamples only', metrics: { top1: 90, testTop1: 50, testSamples: 100 }, split: 'test' as const, expected: { value: 50, se: 5 } },
    { what: 'no sample count', metrics: { top1: 98.2 }, split: 'val' as const, expected: { value: 98.2, se: null } },
    { what: 'no test figure', metrics: { top1: 98.2, valSamples: 500 }, split: 'test' as const, expected: null },
    { what: 'no metrics', metrics: undefined, split: 'val' as const, expected: null },
  ]) {
    it(`${what}: ${split}`, () => {
      const got = policyTop1({ metrics: metrics as Record<string, unknown> | undefined }, split);
      if (expected === null || got === null || expected.se === null || got.se === null) assert.deepEqual(got, expected);
      else {
        assert.equal(got.value, expected.value);
        assert.ok(Math.abs(got.se - expected.se) < 1e-12, `se ${got.se} vs ${expected.se}`);
      }
    });
  }
});
