/**
 * The user stories of docs/localstack.md "Run it yourself", run as written there: every
 * `npx haq ...` line of that section's command blocks, in order, through the CLI (a child
 * process each), against a stack of their own started by `haq local up`. Only the
 * surroundings change: a free port, HAQ_LOCAL_DIR and the out/ folders in a temporary folder,
 * `<sweep-id>` the first sweep `haq policies sweeps` lists once the schedule has run one.
 * Ends with `haq local down` and a check that nothing of that stack is still running.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isAlive, processesUnder } from '../../cli/localstack/process';
import type { LocalState } from '../../cli/aws-clients';
import { haq, type CliResult } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';
import { freePort, repoRoot } from './harness';

/** The `npx haq` command lines of the "Run it yourself" section, in order, comments removed. */
export function documentedCommands(markdown: string): string[] {
  const start = markdown.indexOf('## Run it yourself');
  const section = markdown.slice(start, markdown.indexOf('\n## ', start + 1));
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks
    .flatMap((b) => b.split('\n'))
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line.startsWith('npx haq '));
}

/** Splits a command line into arguments (double-quoted arguments kept whole). */
const words = (line: string): string[] => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the local stack, as docs/localstack.md tells a user to run it', () => {
  const tmp = tempDir('haq-user-stories');
  const stateDir = join(tmp.dir, 'local');
  const env = { HAQ_LOCAL_DIR: stateDir, HAQ_ENDPOINT: 'local' };
  let state: LocalState | null = null;
  const readState = (): LocalState => JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));

  after(async () => {
    // A failed run still stops its LocalStack (the test's last command normally does).
    if (existsSync(join(stateDir, 'state.json'))) await haq(['local', 'down'], env);
    tmp.cleanup();
  });

  it('runs every documented command in order, ending with nothing left running', async () => {
    const commands = documentedCommands(readFileSync(join(repoRoot, 'docs', 'localstack.md'), 'utf8'));
    assert.ok(commands.length >= 8, `commands found: ${commands.join(' | ')}`);
    const port = await freePort();
    let sweepId: string | null = null;
    const ran: string[] = [];
    for (const line of commands) {
      let args = words(line).slice(2);
      args = args.map((a) => (a.startsWith('out/') ? join(tmp.dir, a) : a === '<sweep-id>' ? sweepId ?? a : a));
      if (args[0] === 'local' && args[1] === 'up') args.push('--port', String(port));
      let r: CliResult;
      if (args[0] === 'policies' && args[1] === 'sweeps') {
        // "run it again until one is listed": the schedule runs every 2 minutes, a sweep takes 1-3.
        const deadline = Date.now() + 15 * 60_000;
        while (true) {
          r = await haq([...args, '--json'], env);
          assert.equal(r.code, 0, `${line}: ${r.stderr}`);
          const sweeps = JSON.parse(r.stdout).sweeps as Array<{ sweepId: string; searches: number; failed: number }>;
          if (sweeps.length) {
            assert.deepEqual(sweeps[0], { ...sweeps[0], searches: 2, failed: 0 }, JSON.stringify(sweeps));
            sweepId = sweeps[0].sweepId;
            break;
          }
          assert.ok(Date.now() < deadline, 'no sweep finished within 15 minutes of storing its config');
          await sleep(10_000);
        }
      } else {
        r = await haq(args, env);
      }
      ran.push(line);
      assert.equal(r.code, 0, `${line}\n${r.stdout}\n${r.stderr}`);
      assert.doesNotMatch(r.stderr, /npm warn|NodeVersionSupportWarning/, `${line}: no warning lines`);

      if (args[0] === 'local' && args[1] === 'up') state = readState();
      if (args[0] === 'upload') assert.match(r.stdout, /search fmnist-cnn-[0-9a-f]+ succeeded/);
      if (args[0] === 'policies' && args[1] === 'get') {
        const out = args[args.indexOf('--out') + 1];
        for (const f of ['policy.json', 'report.html', 'model.quant.onnx']) assert.ok(existsSync(join(out, f)), `${line}: ${f}`);
      }
      if (args[0] === 'policies' && args[1] === 'sweep') {
        assert.match(r.stdout, /on bismo-edge\s+on bitfusion/);
        const comparison = JSON.parse(readFileSync(join(args[args.indexOf('--out') + 1], 'comparison.json'), 'utf8'));
        assert.equal(comparison.failed, 0);
      }
    }
    assert.deepEqual(ran, commands);
    assert.ok(state, 'haq local up recorded its state');
    assert.ok(!isAlive(state!.pid), `LocalStack (pid ${state!.pid}) stopped`);
    assert.deepEqual(processesUnder(state!.dataDir), [], 'no process of the stack left');
    const status = await haq(['local', 'status'], env);
    assert.equal(status.code, 3, status.stdout);
  });
});
