/**
 * The errors a user meets first, as a user meets them (child processes): one line naming
 * the user's own input and the fix, raised before slow work where it can be checked first,
 * and a failed command leaves --out as it was.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../cli/localstack/process';
import { encodeNpy } from '../../shared/data/npy';
import { assertOneLineError, haq, repoRoot } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-user-errors');
after(tmp.cleanup);
const p = (name: string) => join(tmp.dir, name);
const model = 'models/zoo/fmnist-cnn/model.onnx';
const data = 'models/zoo/data';
const small = ['--episodes', '2', '--warmup', '2', '--eval-samples', '100'];

before(() => {
  writeFileSync(p('a-file'), 'not a folder\n');
  writeFileSync(p('broken-chip.json'), '{"kind": "bismo", "name": "x",');
  writeFileSync(p('bad-fields-chip.json'), JSON.stringify({ kind: 'bitfusion', name: 'my-chip', frequencyHz: 'fast' }));
  writeFileSync(p('bad-kind-chip.json'), JSON.stringify({ kind: 'tpu', name: 'my-chip' }));
  writeFileSync(p('random.onnx'), 'these bytes are not an ONNX model');
  writeFileSync(p('sweep-no-targets.json'), JSON.stringify({ models: [{ path: resolve(repoRoot, model), data: resolve(repoRoot, data) }], constraints: ['latency:0.5'] }));
  writeFileSync(p('sweep-missing-model.json'), JSON.stringify({ models: [{ path: 'zoo/cnn.onnx', data: 'zoo/data' }], targets: ['bismo-edge'], constraints: ['latency:0.5'] }));
  // Inputs of the wrong sample shape: found by Prepare, inside the state machine.
  mkdirSync(p('wrong-shape'));
  const samples = 8;
  writeFileSync(join(p('wrong-shape'), 'calib-inputs.npy'), encodeNpy({ data: new Float32Array(samples * 10), shape: [samples, 10] }));
  writeFileSync(join(p('wrong-shape'), 'val-inputs.npy'), encodeNpy({ data: new Float32Array(samples * 10), shape: [samples, 10] }));
  mkdirSync(p('kept'));
  writeFileSync(join(p('kept'), 'notes.txt'), 'mine\n');
});

/** Lines a command printed on stderr other than its error (progress lines of work that started). */
const otherLines = (stderr: string) => stderr.split('\n').filter((l) => l.trim() && !l.startsWith('haq: '));

describe('errors before any work', () => {
  const cases: Array<{ what: string; args: () => string[]; name: string; pattern: RegExp; out?: () => string }> = [
    {
      what: 'a sweep config without targets',
      args: () => ['sweep', '--config', p('sweep-no-targets.json'), '--out', p('sweep-out-1')],
      name: 'InvalidInputError',
      pattern: /--config .*sweep-no-targets\.json: targets: Required/,
      out: () => p('sweep-out-1'),
    },
    {
      what: 'a sweep model path that does not exist (relative to the config file)',
      args: () => ['sweep', '--config', p('sweep-missing-model.json'), '--out', p('sweep-out-2')],
      name: 'InvalidInputError',
      pattern: /model "zoo\/cnn\.onnx" is not a file .*relative to the config's folder/,
      out: () => p('sweep-out-2'),
    },
    {
      what: 'search --out naming an existing file',
      args: () => ['search', model, '--data', data, ...small, '--out', p('a-file')],
      name: 'InvalidInputError',
      pattern: /--out .*a-file is a file; pass a folder/,
    },
    {
      what: 'a malformed hardware JSON file',
      args: () => ['search', model, '--data', data, ...small, '--hardware', p('broken-chip.json'), '--out', p('out-hw')],
      name: 'UnknownTargetError',
      pattern: /hardware target file .*broken-chip\.json is not valid JSON/,
      out: () => p('out-hw'),
    },
    {
      what: 'cost --hardware with a malformed JSON file, named by its path',
      args: () => ['cost', model, '--hardware', p('broken-chip.json')],
      name: 'UnknownTargetError',
      pattern: /hardware target file .*broken-chip\.json is not valid JSON: /,
    },
    {
      what: 'cost --hardware with a file of bad fields, named by its path with every bad field',
      args: () => ['cost', model, '--hardware', p('bad-fields-chip.json')],
      name: 'UnknownTargetError',
      pattern: /^haq: UnknownTargetError: hardware target file .*bad-fields-chip\.json "my-chip" \(kind bitfusion\): .*frequencyHz: Expected number, received string/,
    },
    {
      what: 'cost --hardware with a file of an unknown kind, named by its path',
      args: () => ['cost', model, '--hardware', p('bad-kind-chip.json')],
      name: 'UnknownTargetError',
      pattern: /^haq: UnknownTargetError: hardware target file .*bad-kind-chip\.json: "kind" is "tpu"; use one of bismo, bitfusion, roofline/,
    },
    {
      what: 'search --hardware with a file of bad fields, named by its path (before parsing and calibration)',
      args: () => ['search', model, '--data', data, ...small, '--hardware', p('bad-fields-chip.json'), '--out', p('out-hw-fields')],
      name: 'UnknownTargetError',
      pattern: /hardware target file .*bad-fields-chip\.json "my-chip" \(kind bitfusion\)/,
      out: () => p('out-hw-fields'),
    },
    {
      what: 'an unknown target (before parsing and calibration)',
      args: () => ['search', model, '--data', data, ...small, '--hardware', 'tpu-v9', '--out', p('out-target')],
      name: 'UnknownTargetError',
      pattern: /unknown hardware target "tpu-v9"; known targets: bismo-edge/,
      out: () => p('out-target'),
    },
    {
      what: 'an energy budget on a target without an energy model',
      args: () => ['search', model, '--data', data, ...small, '--constraint', 'energy:0.5', '--out', p('out-energy')],
      name: 'InvalidInputError',
      pattern: /target bismo-edge has no energy model; use a latency or size constraint/,
      out: () => p('out-energy'),
    },
    {
      what: 'a ratio out of range, without a "(root):" prefix',
      args: () => ['search', model, '--data', data, ...small, '--constraint', 'latency:1.5', '--out', p('out-ratio')],
      name: 'InvalidInputError',
      pattern: /^haq: InvalidInputError: --constraint: constraint "latency:1\.5": the ratio must be > 0 and <= 1/,
      out: () => p('out-ratio'),
    },
    {
      what: 'a model file that is not ONNX, named by its own path',
      args: () => ['search', p('random.onnx'), '--data', data, ...small, '--out', p('out-random')],
      name: 'UnsupportedModelError',
      pattern: /random\.onnx/,
      out: () => p('out-random'),
    },
    {
      what: 'export --out naming a folder',
      args: () => ['export', model, '--policy', 'no-such-policy.json', '--out', p('kept')],
      name: 'InvalidInputError',
      pattern: /--out .*kept is a folder; pass a file name/,
    },
  ];
  for (const c of cases) {
    it(`${c.what}: one line, nothing started, --out untouched`, async () => {
      const r = await haq(c.args());
      assertOneLineError(r, c.name, c.pattern);
      assert.doesNotMatch(r.stderr, /\(root\)|models\/[^/ ]+\/model\.onnx/, 'no internal names');
      assert.deepEqual(otherLines(r.stderr), [], 'no work was reported before the error');
      if (c.out) assert.ok(!existsSync(c.out()), `${c.out()} not created`);
    });
  }
});

describe('a search that fails inside the state machine', () => {
  it('names the user\'s data folder, not a store key, and leaves an existing --out as it was', async () => {
    const r = await haq(['search', model, '--data', p('wrong-shape'), ...small, '--out', p('kept')]);
    assertOneLineError(r, 'InvalidDataError', /wrong-shape\/(calib|val)-inputs\.npy/);
    assert.doesNotMatch(r.stderr, /models\/fmnist-cnn\//);
    assert.deepEqual(readdirSync(p('kept')), ['notes.txt'], 'no .haq left behind');
    assert.equal(readFileSync(join(p('kept'), 'notes.txt'), 'utf8'), 'mine\n');
  });

  it('removes an --out folder it created', async () => {
    const r = await haq(['search', model, '--data', p('wrong-shape'), ...small, '--out', p('new-out')]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(!existsSync(p('new-out')));
  });
});

describe('haq upload and the endpoint it talks to', () => {
  // Nothing listens on this port: whatever passes the local checks fails at the first request.
  let env: NodeJS.ProcessEnv = {};
  before(async () => {
    env = { HAQ_ENDPOINT: `http://127.0.0.1:${await freePort()}`, HAQ_LOCAL_DIR: p('no-local-stack') };
    writeFileSync(p('search-0.6.json'), JSON.stringify({ hardware: 'bismo-edge', constraint: 'latency:0.6', episodes: 4 }));
    writeFileSync(p('search-1.5.json'), JSON.stringify({ constraint: 'latency:1.5' }));
    writeFileSync(p('search-array.json'), '[1, 2]');
  });
  const upload = (config: string) => ['upload', model, '--data', data, '--config', p(config), '--bucket', 'models'];

  it('--config with "constraint": "latency:0.6" (as --constraint and sweep configs write it) passes the checks', async () => {
    const r = await haq(upload('search-0.6.json'), env);
    // The checks passed: the error is the first request to the (absent) endpoint.
    assertOneLineError(r, 'InvalidInputError', /cannot reach HAQ_ENDPOINT=http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): start the emulator there, or unset HAQ_ENDPOINT/);
  });

  const cases: Array<[string, () => string[], NodeJS.ProcessEnv, RegExp]> = [
    ['a ratio out of range in --config, named by the file', () => upload('search-1.5.json'), {}, /--config .*search-1\.5\.json: constraint "latency:1\.5": the ratio must be > 0 and <= 1/],
    ['a --config that is not an object, without a "(root):" prefix', () => upload('search-array.json'), {}, /^haq: InvalidInputError: --config .*search-array\.json: /],
    ['HAQ_ENDPOINT=local with no local stack', () => ['policies', 'list'], { HAQ_ENDPOINT: 'local' }, /HAQ_ENDPOINT=local but no local stack is running; start one with `npx haq local up`/],
    ['HAQ_ENDPOINT that is not a URL', () => ['policies', 'list'], { HAQ_ENDPOINT: '127.0.0.1:4566' }, /HAQ_ENDPOINT=127\.0\.0\.1:4566 is not a URL; use e\.g\. http:\/\/127\.0\.0\.1:4566/],
    ['an endpoint nobody listens on', () => ['policies', 'sweeps'], {}, /cannot reach HAQ_ENDPOINT=http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/],
    ['haq local up --port out of range', () => ['local', 'up', '--port', '70000'], {}, /--port 70000 is not a TCP port; use e\.g\. --port 4566/],
    ['haq local up --sweep-schedule that is not a schedule', () => ['local', 'up', '--sweep-schedule', 'every 2 minutes'], {}, /--sweep-schedule every 2 minutes is not a schedule expression; use e\.g\. "rate\(2 minutes\)"/],
  ];
  for (const [what, args, extra, pattern] of cases) {
    it(`${what}: one line naming the fix, nothing sent`, async () => {
      const r = await haq(args(), { ...env, ...extra });
      assertOneLineError(r, 'InvalidInputError', pattern);
      assert.doesNotMatch(r.stderr, /\(root\)|NodeVersionSupportWarning|ECONNREFUSED 127/);
    });
  }
});

describe('haq local status with no local stack', () => {
  it('says how to start one and exits 3', async () => {
    const r = await haq(['local', 'status'], { HAQ_LOCAL_DIR: p('no-local-stack') });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'no local stack (never started); start one with: npx haq local up\n');
    assert.ok(!existsSync(p('no-local-stack')), 'status creates nothing');
  });
});

describe('export --out', () => {
  it('creates missing parent folders, as zoo --out does', async () => {
    const out = p('nested/deeper/model.quant.onnx');
    const policy = p('policy-8.json');
    const layers = ['/conv1/Conv', '/conv2/Conv', '/conv3/Conv', '/conv4/Conv', '/fc1/Gemm', '/fc2/Gemm'].map((name) => ({ name, wBits: 8, aBits: null }));
    writeFileSync(policy, JSON.stringify({ layers }));
    const r = await haq(['export', model, '--policy', policy, '--recovery', 'none', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(out));
  });
});
