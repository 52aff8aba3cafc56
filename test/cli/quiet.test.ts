/**
 * Quiet commands: `npx haq` and `npm run` print no npm warning (no unknown key in .npmrc),
 * and the install step of `npm run demo` / `npm test` drops only npm's EBADENGINE notice of
 * the dependencies scripts/ensure-deps.sh names, keeping every other line of npm's output.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/cli';

const run = promisify(execFile);

/** Runs a command from the repository root with stdin `input`; resolves with its output. */
function runWithInput(file: string, args: string[], input: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = execFile(file, args, { cwd: repoRoot }, (err, stdout, stderr) => (err ? fail(err) : ok({ stdout, stderr })));
    child.stdin!.end(input);
  });
}

const engineBlock = (pkg: string, node: string) =>
  [
    'npm warn EBADENGINE Unsupported engine {',
    `npm warn EBADENGINE   package: '${pkg}',`,
    `npm warn EBADENGINE   required: { node: '${node}' },`,
    "npm warn EBADENGINE   current: { node: 'v20.20.2', npm: '11.19.1' }",
    'npm warn EBADENGINE }',
  ].join('\n');

describe('the install step of npm run demo / npm test', () => {
  const script = readFileSync(join(repoRoot, 'scripts', 'ensure-deps.sh'), 'utf8');
  const known = /known="([^"]+)"/.exec(script)![1];

  it('names aws-local-stepfunctions, whose one Node 22 API haq supplies', () => {
    assert.equal(known, 'aws-local-stepfunctions');
    const polyfill = readFileSync(join(repoRoot, 'cli', 'embedded', 'polyfill.ts'), 'utf8');
    assert.match(polyfill, /Promise\.withResolvers/);
  });

  const cases: Array<[string, string, string]> = [
    ['drops the named package\'s notice', engineBlock('aws-local-stepfunctions@3.0.0', '>=22.0.0'), ''],
    ['keeps another package\'s notice', engineBlock('@scope/other@1.2.3', '>=24'), `${engineBlock('@scope/other@1.2.3', '>=24')}\n`],
    ['keeps other warnings and lines', 'npm warn deprecated x@1: use y\nadded 310 packages in 1m', 'npm warn deprecated x@1: use y\nadded 310 packages in 1m\n'],
    [
      'drops only the named block among others',
      `${engineBlock('aws-local-stepfunctions@3.0.0', '>=22.0.0')}\n${engineBlock('left-pad@2.0.0', '>=30')}\nnpm error code E404`,
      `${engineBlock('left-pad@2.0.0', '>=30')}\nnpm error code E404\n`,
    ],
    ['keeps a block that ends early', 'npm warn EBADENGINE Unsupported engine {\nnpm warn EBADENGINE   package: \'x@1\',', "npm warn EBADENGINE Unsupported engine {\nnpm warn EBADENGINE   package: 'x@1',\n"],
  ];
  for (const [what, input, expected] of cases) {
    it(what, async () => {
      const r = await runWithInput('awk', ['-v', `known=${known}`, '-f', 'scripts/known-engine-warnings.awk'], `${input}\n`);
      assert.equal(r.stdout, expected);
    });
  }
});

describe("onnxruntime-node's CUDA download (linux-x64) is skipped", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
  /** onnxruntime-node's own reading of its install flag (script/install-utils.js) under `env`: false means skip. */
  const flagUnder = async (env: Record<string, string>): Promise<unknown> => {
    const utils = join(repoRoot, 'node_modules', 'onnxruntime-node', 'script', 'install-utils.js');
    const r = await run(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(utils)}).parseInstallFlag() ?? 'unset'))`], { env: { PATH: process.env.PATH!, ...env } });
    return JSON.parse(r.stdout);
  };

  it('npm with allowScripts: package.json denies its install script', () => {
    assert.equal(pkg.allowScripts['onnxruntime-node'], false);
  });

  it('any npm: the install step of npm run demo / npm test sets the variable the script reads as skip', async () => {
    const script = readFileSync(join(repoRoot, 'scripts', 'ensure-deps.sh'), 'utf8');
    assert.match(script, /ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
    assert.equal(await flagUnder({ ONNXRUNTIME_NODE_INSTALL: 'skip' }), false);
    assert.equal(await flagUnder({}), 'unset', 'without it the script checks for the CUDA libraries and downloads them');
  });
});

describe('npm around haq', () => {
  it('npx haq prints no npm warning', async () => {
    const r = await run('npx', ['--no-install', 'haq', '--version'], { cwd: repoRoot });
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    assert.equal(r.stderr, '');
  });
  it('npm run haq prints no npm warning', async () => {
    const r = await run('npm', ['run', 'haq', '--', '--version'], { cwd: repoRoot });
    assert.match(r.stdout, /\d+\.\d+\.\d+/);
    assert.equal(r.stderr, '');
  });
});
