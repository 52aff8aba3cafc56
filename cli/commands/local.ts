/**
 * `haq local up | down | status`: the deployed stack on this machine. `up` installs LocalStack
 * (test/localstack/setup.sh, the virtualenv the LocalStack tests use), starts it in the
 * background on 127.0.0.1, deploys the synthesized CDK app to it as stack `Haq`, and records
 * where in .localstack/local/state.json (HAQ_LOCAL_DIR moves that folder). With
 * `HAQ_ENDPOINT=local` (or the URL it prints) `haq upload` and `haq policies` talk to it.
 * `down` stops LocalStack and every Lambda process it started and removes its data;
 * `status` says whether it is up and what is deployed.
 */
import type { Command } from 'commander';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidInputError } from '../../shared/errors';
import { localStateDir, localStatePath, readLocalState, type LocalState } from '../aws-clients';
import { deployHaqStack, describeHaqStack, localStackContext } from '../localstack/deploy';
import {
  defaultServices,
  endpointFor,
  isAlive,
  portIsFree,
  processesUnder,
  runSetup,
  spawnLocalStack,
  stopProcessGroup,
  tail,
  waitHealthy,
} from '../localstack/process';
import { action, formatTable, printJson } from '../output';

export const localStackName = 'Haq';

interface UpOptions {
  port: string;
  sweepSchedule?: string;
  sweepConfigKey?: string;
  json?: boolean;
}

const say = (line: string) => process.stderr.write(`haq local: ${line}\n`);

async function healthy(endpoint: string): Promise<boolean> {
  try {
    return (await fetch(`${endpoint}/_localstack/health`)).ok;
  } catch {
    return false;
  }
}

/** The lines a user needs to point the commands at the local stack. */
function usage(state: LocalState): string[] {
  return [
    `endpoint ${state.endpoint} (stack ${state.stackName}, LocalStack pid ${state.pid}, log ${state.logFile})`,
    `models bucket ${state.outputs.ModelsBucketName}, results bucket ${state.outputs.ResultsBucketName}`,
    `point haq upload / haq policies at it: export HAQ_ENDPOINT=local   (or HAQ_ENDPOINT=${state.endpoint})`,
  ];
}

/** Stops LocalStack and anything still running in its data folder; returns what was stopped. */
async function stopLocal(state: LocalState): Promise<{ localstack: boolean; leftovers: number }> {
  const localstack = isAlive(state.pid);
  if (localstack) await stopProcessGroup(state.pid);
  // Lambda processes run in their own process groups with their code folder under the data
  // folder; they exit when LocalStack does, and whatever did not is stopped here.
  const leftovers = processesUnder(state.dataDir);
  for (const pid of leftovers) await stopProcessGroup(pid, 2000);
  const still = processesUnder(state.dataDir);
  if (still.length) throw new Error(`processes ${still.join(', ')} in ${state.dataDir} did not stop; stop them by hand`);
  return { localstack, leftovers: leftovers.length };
}

async function up(o: UpOptions): Promise<void> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidInputError(`--port ${o.port} is not a TCP port; use e.g. --port 4566`);
  if (o.sweepSchedule !== undefined && !/^(cron|rate)\(.+\)$/.test(o.sweepSchedule)) {
    throw new InvalidInputError(`--sweep-schedule ${o.sweepSchedule} is not a schedule expression; use e.g. "rate(2 minutes)" or "cron(0 3 * * ? *)"`);
  }
  const existing = readLocalState();
  if (existing && isAlive(existing.pid) && (await healthy(existing.endpoint))) {
    if (o.json) return printJson({ ...existing, alreadyUp: true });
    process.stdout.write(`${['already up', ...usage(existing)].join('\n')}\n`);
    return;
  }
  if (existing) {
    say(`cleaning up a local stack that is no longer running (pid ${existing.pid})`);
    await stopLocal(existing);
  }
  if (!(await portIsFree(port))) throw new InvalidInputError(`port ${port} on 127.0.0.1 is in use; pass another with --port`, { port });

  say('installing LocalStack if needed (test/localstack/setup.sh)');
  runSetup('inherit');
  const dir = localStateDir();
  const dataDir = join(dir, 'data');
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dir, 'localstack.log');
  rmSync(logFile, { force: true });
  const startedMs = performance.now();
  const child = spawnLocalStack({ port, dataDir, logFile, services: defaultServices });
  child.unref();
  const ls = endpointFor(`http://127.0.0.1:${port}`);
  const state: LocalState = { pid: child.pid!, port, endpoint: ls.endpoint, dataDir, logFile, stackName: localStackName, outputs: {}, startedAt: new Date().toISOString() };
  writeFileSync(localStatePath(), JSON.stringify(state, null, 2));
  try {
    await waitHealthy(ls.endpoint, () => isAlive(state.pid), logFile, defaultServices, 120_000);
    say(`LocalStack healthy at ${ls.endpoint} after ${((performance.now() - startedMs) / 1000).toFixed(1)} s; deploying stack ${localStackName} (cdk synth, then CloudFormation)`);
    const context: Record<string, string> = localStackContext(localStackName);
    if (o.sweepSchedule) Object.assign(context, { sweepEnabled: 'true', sweepSchedule: o.sweepSchedule });
    if (o.sweepConfigKey) context.sweepConfigKey = o.sweepConfigKey;
    const deployed = await deployHaqStack(ls, { stackName: localStackName, context });
    state.outputs = deployed.outputs;
    writeFileSync(localStatePath(), JSON.stringify(state, null, 2));
    say(`deployed: synth ${(deployed.synthMs / 1000).toFixed(0)} s, CloudFormation ${(deployed.deployMs / 1000).toFixed(0)} s`);
  } catch (err) {
    say(`start failed, stopping LocalStack; its log:\n${tail(logFile, 20)}`);
    await stopLocal(state);
    rmSync(localStatePath(), { force: true });
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  if (o.json) return printJson(state);
  process.stdout.write(`${['up', ...usage(state)].join('\n')}\n`);
}

async function down(o: { json?: boolean }): Promise<void> {
  const state = readLocalState();
  if (!state) {
    if (o.json) return printJson({ running: false });
    process.stdout.write('no local stack is running\n');
    return;
  }
  const stopped = await stopLocal(state);
  rmSync(state.dataDir, { recursive: true, force: true });
  rmSync(localStatePath(), { force: true });
  if (o.json) return printJson({ running: false, stopped });
  process.stdout.write(
    `${stopped.localstack ? `stopped LocalStack (pid ${state.pid})` : `LocalStack (pid ${state.pid}) had already exited`}` +
      `${stopped.leftovers ? ` and ${stopped.leftovers} Lambda process(es)` : ''}; removed its data; nothing is left running\n`,
  );
}

async function status(o: { json?: boolean }): Promise<void> {
  const state = readLocalState();
  const running = !!state && isAlive(state.pid) && (await healthy(state.endpoint));
  const stack = state && running ? await describeHaqStack(endpointFor(state.endpoint), state.stackName) : null;
  if (o.json) return printJson({ running, ...(state ?? {}), stackDeployed: !!stack });
  if (!state) {
    process.stdout.write(`no local stack (${existsSync(localStateDir()) ? 'none recorded' : 'never started'}); start one with: npx haq local up\n`);
  } else if (!running) {
    process.stdout.write(`the local stack recorded in ${localStatePath()} is not running (pid ${state.pid}); run: npx haq local down, then npx haq local up\n`);
  } else {
    const rows = Object.entries(stack?.outputs ?? {}).map(([k, v]) => [k, v]);
    process.stdout.write(`${['up', ...usage(state), formatTable(['output', 'value'], rows)].join('\n')}\n`);
  }
  if (!running) process.exitCode = 3;
}

export function register(program: Command): void {
  const local = program.command('local').description('run the deployed stack on this machine (LocalStack, no Docker): up, down, status');
  local
    .command('up')
    .description('install and start LocalStack on 127.0.0.1 and deploy the stack to it')
    .option('--port <n>', 'gateway port on 127.0.0.1', '4566')
    .option('--sweep-schedule <expr>', 'turn the sweep schedule on, e.g. "rate(5 minutes)" (default: off)')
    .option('--sweep-config-key <key>', 'key of the sweep config the schedule reads, in the models bucket (default sweeps/default.json)')
    .option('--json', 'print the recorded state as JSON')
    .action(action(up));
  local.command('down').description('stop LocalStack and every Lambda process it started; remove its data').option('--json', 'print JSON').action(action(down));
  local.command('status').description('whether the local stack is up, its endpoint and the stack outputs (exit 3 when down)').option('--json', 'print JSON').action(action(status));
}
