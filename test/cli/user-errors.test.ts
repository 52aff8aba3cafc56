/**
 * The errors a user meets first, as a user meets them (child processes): one line naming
 * the user's own input and the fix, raised before slow work where it can be checked first,
 * and a failed command leaves --out as it was.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
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
