/**
 * Starts and stops LocalStack on this host (no Docker): the Python package installed by
 * test/localstack/setup.sh, listening on loopback only, Lambda functions run by our
 * `haq-node` runtime executor (test/localstack/plugin/) as host Node processes.
 *
 *   const ls = await useLocalStack();      // HAQ_LOCALSTACK_ENDPOINT if set, else starts one
 *   new S3Client(ls.clientConfig);
 *   await ls.release({ failed });          // stops it if this process started it
 *
 * As a command (run.sh uses this: one LocalStack for every test file):
 *   tsx test/localstack/harness.ts run -- <command...>
 * starts LocalStack, runs the command with HAQ_LOCALSTACK_ENDPOINT set, stops LocalStack,
 * keeps its log under .localstack/logs/ when the command failed, exits with its code.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '../../cli/aws-clients';
import { defaultServices, endpointFor, freePort, spawnLocalStack, stopProcessGroup, waitHealthy, type LocalStackEndpoint } from '../../cli/localstack/process';

export { accountId, freePort, region, type AwsClientConfig } from '../../cli/localstack/process';
export { repoRoot };

export interface LocalStackHandle extends LocalStackEndpoint {
  port: number;
  /** LocalStack's combined stdout/stderr (empty when connected to an external instance). */
  logFile: string;
  /** Stops LocalStack if this handle started it; keeps its log when `failed`. */
  release(opts?: { failed?: boolean }): Promise<void>;
}

export interface StartOptions {
  port?: number;
  services?: string[];
  /** How long to wait for the health endpoint (first start compiles .pyc files). */
  startTimeoutMs?: number;
}

/** A LocalStack log line's time and level: `2026-12-02T06:32:06.181  WARN --- [thread] logger : message`. */
const logLine = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})\s+([A-Z]+)\s/;
/** Request lines LocalStack logs for answers >= 400 (`AWS s3.GetObject => 404 (NoSuchKey)`, `POST /... => 500`). */
const failedRequest = /=> [45]\d\d\b/;

/**
 * What LocalStack said about a time window: every WARN/ERROR line with the traceback lines
 * that follow it, every request answered >= 400, and every line of the haq-node executor,
 * between `from` and `to` (its log's local times, 2 s of slack each side), at most
 * `maxLines` (the last ones). Tests put it into the message of a failed assertion, so a
 * failure in the event path shows what the emulator saw.
 */
export function logExcerpt(logFile: string, from: Date, to: Date, maxLines = 60): string {
  if (!logFile || !existsSync(logFile)) return '(no LocalStack log: it runs elsewhere)';
  const lo = from.getTime() - 2000;
  const hi = to.getTime() + 2000;
  const out: string[] = [];
  let inWindow = false;
  let keepFollowers = false;
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const m = logLine.exec(line);
    if (m) {
      const t = new Date(m[1]).getTime();
      inWindow = t >= lo && t <= hi;
      keepFollowers = inWindow && (m[2] === 'WARN' || m[2] === 'ERROR');
      if (inWindow && (keepFollowers || failedRequest.test(line) || line.includes('haq_localstack'))) out.push(line);
    } else if (keepFollowers && line.trim()) {
      out.push(line);
    }
  }
  if (out.length === 0) return `(LocalStack logged no warning, error or failed request from ${from.toISOString()} to ${to.toISOString()})`;
  const shown = out.slice(-maxLines);
  return [`LocalStack log, ${from.toISOString()} to ${to.toISOString()}${out.length > shown.length ? ` (last ${shown.length} of ${out.length} lines)` : ''}:`, ...shown].join('\n');
}

/** An execution's outcome with the LocalStack log lines of its run, for a failed assertion's message. */
export function failureReport(
  ls: Pick<LocalStackHandle, 'logFile'>,
  e: { status?: string; error?: string; cause?: string; startDate?: Date; stopDate?: Date },
): string {
  const to = e.stopDate ?? new Date();
  const from = e.startDate ?? new Date(to.getTime() - 60_000);
  return `${e.status}: ${e.error}: ${e.cause}\n${logExcerpt(ls.logFile, from, to)}`;
}

/** Keeps a failed run's log where CI and people find it: .localstack/logs/ (git-ignored). */
export function keepLog(logFile: string): string {
  const dir = join(repoRoot, '.localstack/logs');
  mkdirSync(dir, { recursive: true });
  const target = join(dir, `localstack-${new Date().toISOString().replace(/[:.]/g, '-')}.log`);
  copyFileSync(logFile, target);
  return target;
}

/** Starts a LocalStack process and waits until the services answer. */
export async function startLocalStack(opts: StartOptions = {}): Promise<LocalStackHandle> {
  const port = opts.port ?? (await freePort());
  const services = opts.services ?? defaultServices;
  const dataDir = mkdtempSync(join(tmpdir(), 'haq-localstack-'));
  const logFile = join(dataDir, 'localstack.log');
  const child = spawnLocalStack({ port, dataDir, logFile, services });
  const exited = new Promise((r) => child.once('exit', r));
  const alive = () => child.exitCode === null && child.signalCode === null;
  // Safety net: a test process that exits without release() (a crash, process.exit) takes
  // LocalStack's process group with it. The Lambda shims exit when LocalStack is gone.
  const killOnExit = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.once('exit', killOnExit);
  const stop = async (failed: boolean): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (alive()) {
      await stopProcessGroup(child.pid!);
      await exited;
    }
    if (failed) console.error(`LocalStack log kept at ${keepLog(logFile)}`);
    rmSync(dataDir, { recursive: true, force: true });
  };
  const { endpoint } = endpointFor(`http://127.0.0.1:${port}`);
  try {
    await waitHealthy(endpoint, alive, logFile, services, opts.startTimeoutMs ?? 120_000);
  } catch (err) {
    await stop(true);
    throw err;
  }
  return { ...endpointFor(endpoint), port, logFile, release: ({ failed = false } = {}) => stop(failed) };
}

/** The suite's LocalStack: the one run.sh started (HAQ_LOCALSTACK_ENDPOINT), or a new one. */
export async function useLocalStack(opts: StartOptions = {}): Promise<LocalStackHandle> {
  const external = process.env.HAQ_LOCALSTACK_ENDPOINT;
  if (!external) return startLocalStack(opts);
  const res = await fetch(`${external}/_localstack/health`).catch((err) => {
    throw new Error(`HAQ_LOCALSTACK_ENDPOINT=${external} does not answer: ${err}`);
  });
  if (!res.ok) throw new Error(`HAQ_LOCALSTACK_ENDPOINT=${external}: health answered ${res.status}`);
  return {
    ...endpointFor(external),
    port: Number(new URL(external).port),
    logFile: process.env.HAQ_LOCALSTACK_LOG ?? '',
    release: async () => {},
  };
}

/** `run -- cmd...`: one LocalStack around a command. */
async function runCommand(argv: string[]): Promise<number> {
  const startedMs = performance.now();
  const ls = await startLocalStack();
  console.log(`localstack: healthy at ${ls.endpoint} after ${((performance.now() - startedMs) / 1000).toFixed(1)} s`);
  const [cmd, ...args] = argv;
  let code = 1;
  try {
    code = await new Promise<number>((ok) => {
      const child = spawn(cmd, args, {
        stdio: 'inherit',
        env: { ...process.env, HAQ_LOCALSTACK_ENDPOINT: ls.endpoint, HAQ_LOCALSTACK_LOG: ls.logFile },
      });
      child.on('exit', (c, signal) => ok(c ?? (signal ? 1 : 0)));
      child.on('error', () => ok(127));
      // Ctrl-C or a CI timeout: stop the tests, then LocalStack (finally below), keeping its log.
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => child.kill(signal));
    });
  } finally {
    if (code !== 0) console.error(logExcerpt(ls.logFile, new Date(Date.now() - (performance.now() - startedMs)), new Date(), 80));
    await ls.release({ failed: code !== 0 });
  }
  return code;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [verb, sep, ...rest] = process.argv.slice(2);
  if (verb !== 'run' || sep !== '--' || rest.length === 0) {
    console.error('usage: tsx test/localstack/harness.ts run -- <command...>');
    process.exit(2);
  }
  runCommand(rest).then(
    (code) => process.exit(code),
    (err) => {
      console.error(String(err instanceof Error ? err.message : err));
      process.exit(1);
    },
  );
}
