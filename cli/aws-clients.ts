/**
 * Where the AWS-facing commands (`haq upload`, `haq policies`, `haq local status`) send their
 * requests. By default the AWS SDK's own configuration (profile, region, credentials).
 * `HAQ_ENDPOINT` points them at an emulator instead: a URL such as http://127.0.0.1:4566,
 * or `local` for the stack `haq local up` started (its endpoint is read from the state
 * file). With an endpoint, S3 is addressed path-style, the region defaults to us-east-1 and,
 * when no AWS credentials are set, LocalStack's test credentials are used. `AWS_ENDPOINT_URL`
 * (the SDK's own setting) also works and turns on path-style S3.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidInputError } from '../shared/errors';

export interface AwsClientSettings {
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** The folder of `haq local`'s state: HAQ_LOCAL_DIR, else .localstack/local in the repository. */
export const localStateDir = (env: NodeJS.ProcessEnv = process.env): string => env.HAQ_LOCAL_DIR || join(repoRoot, '.localstack', 'local');
export const localStatePath = (env: NodeJS.ProcessEnv = process.env): string => join(localStateDir(env), 'state.json');

/** What `haq local up` records about the running stack. */
export interface LocalState {
  pid: number;
  port: number;
  endpoint: string;
  dataDir: string;
  logFile: string;
  stackName: string;
  outputs: Record<string, string>;
  startedAt: string;
}

export function readLocalState(env: NodeJS.ProcessEnv = process.env): LocalState | null {
  const path = localStatePath(env);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as LocalState;
}

/** The emulator endpoint the commands use, or undefined for AWS itself. */
export function haqEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const value = env.HAQ_ENDPOINT?.trim();
  if (!value) return undefined;
  if (value === 'local') {
    const state = readLocalState(env);
    if (!state) throw new InvalidInputError('HAQ_ENDPOINT=local but no local stack is running; start one with `npx haq local up`');
    return state.endpoint;
  }
  if (!/^https?:\/\/[^/\s]+/.test(value)) {
    throw new InvalidInputError(`HAQ_ENDPOINT=${value} is not a URL; use e.g. http://127.0.0.1:4566, or "local" for the stack of \`haq local up\``);
  }
  return value.replace(/\/+$/, '');
}

/** Settings for every AWS SDK client the CLI creates. */
export function awsClientSettings(env: NodeJS.ProcessEnv = process.env): AwsClientSettings {
  const endpoint = haqEndpoint(env);
  if (endpoint) {
    return {
      endpoint,
      forcePathStyle: true,
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
      ...(env.AWS_ACCESS_KEY_ID ? {} : { credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }),
    };
  }
  return env.AWS_ENDPOINT_URL || env.AWS_S3_FORCE_PATH_STYLE === 'true' ? { forcePathStyle: true } : {};
}

const unreachableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT']);

/**
 * A request that could not reach its endpoint, as one line saying what to start or check;
 * null for any other error.
 */
export function unreachableEndpointError(err: unknown, env: NodeJS.ProcessEnv = process.env): InvalidInputError | null {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!code || !unreachableCodes.has(code)) return null;
  const setting = env.HAQ_ENDPOINT?.trim();
  if (setting) {
    const fix = setting === 'local' ? 'start it with `npx haq local up` (`npx haq local status` says whether it runs)' : 'start the emulator there, or unset HAQ_ENDPOINT to use AWS';
    return new InvalidInputError(`cannot reach HAQ_ENDPOINT=${setting} (${code}): ${fix}`, { endpoint: setting, code });
  }
  return new InvalidInputError(`cannot reach AWS (${code}: ${(err as Error).message}): check the network, AWS_REGION and AWS_ENDPOINT_URL`, { code });
}
