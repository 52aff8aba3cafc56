/**
 * scripts/ensure-deps.sh, the install step of `npm run demo` / `npm test`: it runs `npm ci`
 * when node_modules is missing or was installed from another lock file, and only then. The
 * script runs for real in a scratch project; `npm` on its PATH is a stand-in that records each
 * call and lays out node_modules as `npm ci` does (or fails, when told to).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-ensure-deps');
after(tmp.cleanup);

const fakeNpm = `#!/usr/bin/env bash
echo "$*" >> "$PROJECT/npm-calls"
[ -n "\${NPM_FAIL:-}" ] && { echo "npm error code E404" >&2; exit 1; }
mkdir -p "$PROJECT/node_modules"
echo '{}' > "$PROJECT/node_modules/.package-lock.json"
echo "added 1 package"
`;

/** A scratch project holding the two scripts, a lock file, and a PATH whose npm is the stand-in. */
function project(name: string): { dir: string; run: (env?: Record<string, string>) => Promise<{ code: number; stderr: string }>; calls: () => number } {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  for (const f of ['ensure-deps.sh', 'known-engine-warnings.awk']) copyFileSync(join(repoRoot, 'scripts', f), join(dir, 'scripts', f));
  writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion": 3, "packages": {"": {"name": "x"}}}\n');
  writeFileSync(join(dir, 'bin', 'npm'), fakeNpm);
  chmodSync(join(dir, 'bin', 'npm'), 0o755);
  const run = (env: Record<string, string> = {}) =>
    new Promise<{ code: number; stderr: string }>((ok) => {
      execFile('bash', [join(dir, 'scripts', 'ensure-deps.sh')], { env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, PROJECT: dir, ...env } }, (err, _stdout, stderr) =>
        ok({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
    });
  const calls = () => (existsSync(join(dir, 'npm-calls')) ? readFileSync(join(dir, 'npm-calls'), 'utf8').trim().split('\n').length : 0);
  return { dir, run, calls };
}

describe('scripts/ensure-deps.sh', () => {
  it("installs once, and again only when the lock file's content changes (not its time)", async () => {
    const p = project('content');
    assert.equal((await p.run()).code, 0);
    assert.equal(p.calls(), 1, 'no node_modules: npm ci');
    assert.match(readFileSync(join(p.dir, 'npm-calls'), 'utf8'), /^ci --no-audit --no-fund$/m);
    assert.equal((await p.run()).code, 0);
    assert.equal(p.calls(), 1, 'nothing changed: no install');
    const future = new Date(Date.now() + 60_000);
    utimesSync(join(p.dir, 'package-lock.json'), future, future);
    assert.equal((await p.run()).code, 0);
    assert.equal(p.calls(), 1, 'a newer time alone (a checkout): no install');
    writeFileSync(join(p.dir, 'package-lock.json'), '{"lockfileVersion": 3, "packages": {"": {"name": "y"}}}\n');
    assert.equal((await p.run()).code, 0);
    assert.equal(p.calls(), 2, 'another lock file: npm ci');
  });

  it('after a failed install exits non-zero and installs again on the next run', async () => {
    const p = project('failed');
    const failed = await p.run({ NPM_FAIL: '1' });
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /npm error code E404/, "npm's error reaches the user");
    assert.equal((await p.run()).code, 0);
    assert.equal(p.calls(), 2, 'the failed attempt left no stamp: npm ci again');
  });

  it('takes a hand install (npm ci, no stamp) made after the lock file last changed as current', async () => {
    const p = project('by-hand');
    mkdirSync(join(p.dir, 'node_modules'));
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(p.dir, 'package-lock.json'), past, past);
    writeFileSync(join(p.dir, 'node_modules', '.package-lock.json'), '{}');
    assert.equal((await p.run()).code, 0);
    assert.equal(p.calls(), 0);
    assert.ok(existsSync(join(p.dir, 'node_modules', '.haq-lock.sha256')));
  });
});
