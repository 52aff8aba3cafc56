/**
 * LocalStack as a host process (no Docker): the Python package test/localstack/setup.sh
 * installs into test/localstack/.venv, listening on loopback only, Lambda functions run by
 * our `haq-node` runtime executor (test/localstack/plugin/) as host Node processes. Used by
 * `haq local up|down|status` and by the LocalStack test suite's harness.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../aws-clients';

export const venvPython = join(repoRoot, 'test/localstack/.venv/bin/python');
export const setupScript = join(repoRoot, 'test/localstack/setup.sh');
export const region = 'us-east-1';
/** LocalStack's default account; any credentials are accepted. */
export const accountId = '000000000000';

/** Services the stack uses (CloudFormation deploys the CDK app; the rest is the event path). */
export const defaultServices = ['s3', 'stepfunctions', 'lambda', 'events', 'iam', 'sts', 'logs', 'cloudformation', 'ssm', 'kms'];

export interface AwsClientConfig {
  endpoint: string;
  region: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** A running LocalStack as its clients see it. */
export interface LocalStackEndpoint {
  endpoint: string;
  clientConfig: AwsClientConfig;
  /** Environment for child processes (CLI, cdk): endpoint, region, test credentials. */
  awsEnv: Record<string, string>;
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

export const endpointFor = (endpoint: string): LocalStackEndpoint => ({ endpoint, clientConfig: clientConfigFor(endpoint), awsEnv: awsEnvFor(endpoint) });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Whether a TCP port on loopback is free to listen on. */
export async function portIsFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const server = createServer();
    server.once('error', () => ok(false));
    server.listen(port, '127.0.0.1', () => server.close(() => ok(true)));
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

/** Installs LocalStack into the virtualenv (idempotent: ~0 s when current); its output goes to `stdio`. */
export function runSetup(stdio: 'inherit' | 'ignore' = 'inherit'): void {
  const r = spawnSync('bash', [setupScript], { stdio: ['ignore', stdio === 'inherit' ? process.stderr : 'ignore', stdio === 'inherit' ? process.stderr : 'ignore'] });
  if (r.status !== 0) throw new Error(`LocalStack setup failed (bash ${setupScript} exited ${r.status ?? r.signal})`);
}

/**
 * Starts `python -m localstack.runtime.main` in its own process group (so one signal reaches
 * LocalStack and every Lambda process it started), its output appended to `logFile`.
 */
export function spawnLocalStack(opts: { port: number; dataDir: string; logFile: string; services?: string[]; detached?: boolean }) {
  if (!existsSync(venvPython)) throw new Error(`LocalStack is not installed: run 'bash test/localstack/setup.sh' (no ${venvPython})`);
  mkdirSync(join(opts.dataDir, 'fs'), { recursive: true });
  mkdirSync(join(opts.dataDir, 'tmp'), { recursive: true });
  const out = openSync(opts.logFile, 'a');
  const child = spawn(venvPython, ['-m', 'localstack.runtime.main'], {
    cwd: opts.dataDir,
    env: localStackEnv(opts.port, opts.dataDir, opts.services ?? defaultServices),
    stdio: ['ignore', out, out],
    detached: true,
  });
  closeSync(out);
  return child;
}

/** Waits until every service answers on the health endpoint; `alive()` false means LocalStack exited. */
export async function waitHealthy(endpoint: string, alive: () => boolean, logFile: string, services: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`LocalStack exited before it was healthy; log ${logFile}:\n${tail(logFile, 30)}`);
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

export function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    /* already gone */
  }
}

/** SIGTERM to a process group, SIGKILL after `graceMs`; resolves when its leader is gone. */
export async function stopProcessGroup(pid: number, graceMs = 10_000): Promise<void> {
  signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  signalGroup(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(50);
}

/**
 * Processes whose working folder is inside `dir` (LocalStack's Lambda processes run in
 * their function's code folder under its data folder); Linux /proc only, else none.
 */
export function processesUnder(dir: string): number[] {
  if (!existsSync('/proc')) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return pids;
}
