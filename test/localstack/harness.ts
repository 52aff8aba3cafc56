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
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const venvPython = join(repoRoot, 'test/localstack/.venv/bin/python');
export const region = 'us-east-1';
/** LocalStack's default account; any credentials are accepted. */
export const accountId = '000000000000';

/** Services the suite uses (CloudFormation deploys the CDK app; the rest is the event path). */
export const defaultServices = ['s3', 'stepfunctions', 'lambda', 'events', 'iam', 'sts', 'logs', 'cloudformation', 'ssm', 'kms'];

export interface AwsClientConfig {
  endpoint: string;
  region: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

export interface LocalStackHandle {
  endpoint: string;
  port: number;
  clientConfig: AwsClientConfig;
  /** Environment for child processes (CLI, cdklocal): endpoint, region, test credentials. */
  awsEnv: Record<string, string>;
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

export const clientConfigFor = (endpoint: string): AwsClientConfig => ({
  endpoint,
  region,
  forcePathStyle: true,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});

export const awsEnvFor = (endpoint: string): Record<string, string> => ({
  AWS_ENDPOINT_URL: endpoint,
  AWS_ENDPOINT_URL_S3: endpoint,
  AWS_S3_FORCE_PATH_STYLE: 'true',
  AWS_REGION: region,
  AWS_DEFAULT_REGION: region,
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  CDK_DEFAULT_ACCOUNT: accountId,
  CDK_DEFAULT_REGION: region,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? ok(address.port) : fail(new Error('no port'))));
    });
  });
}

/** The environment LocalStack runs with: loopback only, no DNS server, no telemetry, our executor. */
export function localStackEnv(port: number, dataDir: string, services: string[]): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GATEWAY_LISTEN: `127.0.0.1:${port}`,
    LOCALSTACK_HOST: `127.0.0.1:${port}`,
    OVERRIDE_IN_DOCKER: '0',
    DNS_ADDRESS: '0',
    SKIP_SSL_CERT_DOWNLOAD: '1',
    DISABLE_EVENTS: '1',
    FILESYSTEM_ROOT: join(dataDir, 'fs'),
    TMPDIR: join(dataDir, 'tmp'),
    SERVICES: services.join(','),
    CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES: '1',
    LAMBDA_RUNTIME_EXECUTOR: 'haq-node',
    // Node start-up plus onnxruntime's native load can exceed the 10 s default on 2 busy cores.
    LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT: '60',
    HAQ_LAMBDA_NODE: process.execPath,
    HAQ_LAMBDA_NODE_MODULES: join(repoRoot, 'node_modules'),
    PYTHONUNBUFFERED: '1',
  };
}

async function waitHealthy(endpoint: string, child: ChildProcess, logFile: string, services: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`LocalStack exited (${child.exitCode ?? child.signalCode}) before it was healthy; log ${logFile}:\n${tail(logFile, 30)}`);
    }
    try {
      const res = await fetch(`${endpoint}/_localstack/health`);
      if (res.ok) {
        const body = (await res.json()) as { services: Record<string, string> };
        const missing = services.filter((s) => !['available', 'running'].includes(body.services[s] ?? ''));
        if (missing.length === 0) return;
        last = `services not ready: ${missing.join(', ')}`;
      }
    } catch (err) {
      last = String(err);
    }
    await sleep(250);
  }
  throw new Error(`LocalStack at ${endpoint} not healthy after ${timeoutMs} ms (${last}); log ${logFile}:\n${tail(logFile, 30)}`);
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

export function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
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
  if (!existsSync(venvPython)) throw new Error(`LocalStack is not installed: run 'bash test/localstack/setup.sh' (no ${venvPython})`);
  const port = opts.port ?? (await freePort());
  const services = opts.services ?? defaultServices;
  const dataDir = mkdtempSync(join(tmpdir(), 'haq-localstack-'));
  mkdirSync(join(dataDir, 'fs'));
  mkdirSync(join(dataDir, 'tmp'));
  const logFile = join(dataDir, 'localstack.log');
  const out = openSync(logFile, 'a');
  const child = spawn(venvPython, ['-m', 'localstack.runtime.main'], {
    cwd: dataDir,
    env: localStackEnv(port, dataDir, services),
    stdio: ['ignore', out, out],
    detached: true, // its own process group, so stop() reaches every thread and child
  });
  closeSync(out);
  const endpoint = `http://127.0.0.1:${port}`;
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
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (failed) console.error(`LocalStack log kept at ${keepLog(logFile)}`);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitHealthy(endpoint, child, logFile, services, opts.startTimeoutMs ?? 120_000);
  } catch (err) {
    await stop(true);
    throw err;
  }
  return {
    endpoint,
    port,
    clientConfig: clientConfigFor(endpoint),
    awsEnv: awsEnvFor(endpoint),
    logFile,
    release: ({ failed = false } = {}) => stop(failed),
  };
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
    endpoint: external,
    port: Number(new URL(external).port),
    clientConfig: clientConfigFor(external),
    awsEnv: awsEnvFor(external),
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
