/**
 * `haq policies list [--model M] [--target T] [--constraint C] [--json]` and
 * `haq policies get MODEL --target T --constraint C [--search ID] [--out DIR] [--json]`:
 * the policies searches wrote to the results bucket
 * (policies/<model>/<target>/<constraint>/<searchId>/{policy.json,report.html,model.quant.onnx}
 * and latest.json per model/target/constraint, shared/keys.ts `resultKeys`).
 *
 * The bucket comes from --bucket, else HAQ_RESULTS_BUCKET, else the deployed stack's
 * CloudFormation outputs (--stack, HAQ_STACK, default "Haq"). The store functions take any
 * ObjectStore, so they run the same against a local folder.
 */
import type { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { InvalidInputError, ObjectNotFoundError } from '../../shared/errors';
import { resultKeys } from '../../shared/keys';
import { Policy, ConstraintKind, policyTop1 } from '../../shared/quant/policy';
import { getJson, type ObjectStore } from '../../shared/store/object-store';
import { S3Store } from '../../shared/store/s3-store';
import type { Comparison } from '../../functions/compare';
import { awsClientSettings, unreachableEndpointError } from '../aws-clients';
import { action, formatTable, printJson } from '../output';
import { summaryText } from '../search-summary';

/** One stored search result: policies/<model>/<target>/<constraint>/<searchId>/. */
export interface PolicyEntry {
  model: string;
  target: string;
  constraint: string;
  searchId: string;
  /** latest.json of this model/target/constraint points at this search. */
  latest: boolean;
  /** File names present in the search's folder (policy.json, report.html, model.quant.onnx). */
  files: string[];
}

export interface PolicyFilter {
  model?: string;
  target?: string;
  constraint?: string;
}

/** latest.json: at least the search id it points at (Finalize may add more). */
export const LatestPointer = z.object({ searchId: z.string().min(1) }).passthrough();

/** The files Finalize writes per search. */
export type PolicyFile = 'policy.json' | 'report.html' | 'model.quant.onnx';

/**
 * `latency:0.5` (the search CLI's form) or `latency-0.5` (the results-bucket label) ->
 * the label. Anything else is an InvalidInputError that shows both forms.
 */
export function constraintLabel(value: string): string {
  const m = /^(\w+)[:-]([0-9]*\.?[0-9]+)$/.exec(value.trim());
  const kind = m ? ConstraintKind.safeParse(m[1]) : undefined;
  const ratio = m ? Number(m[2]) : NaN;
  if (!m || !kind?.success || !(ratio > 0 && ratio <= 1)) {
    throw new InvalidInputError(
      `constraint "${value}" is not <kind>:<ratio> with kind latency, energy or size and 0 < ratio <= 1, e.g. latency:0.5 (or latency-0.5)`,
      { value },
    );
  }
  return resultKeys.constraintLabel(kind.data, ratio);
}

/** A key segment given on the command line: no '/' and no empty value. */
function segment(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (!value || value.includes('/')) throw new InvalidInputError(`${flag} "${value}" must be a non-empty name without '/'`, { value });
  return value;
}

/** Every stored search result matching the filter, sorted by model, target, constraint, search id. */
export async function listPolicies(store: ObjectStore, filter: PolicyFilter = {}): Promise<PolicyEntry[]> {
  const model = segment(filter.model, '--model');
  const target = segment(filter.target, '--target');
  const constraint = filter.constraint === undefined ? undefined : constraintLabel(filter.constraint);
  // Narrowest prefix the filter allows (S3 lists by prefix only).
  const prefix = model === undefined ? 'policies/' : target === undefined ? `policies/${model}/` : constraint === undefined ? `policies/${model}/${target}/` : resultKeys.prefix(model, target, constraint);
  const keys = await store.list(prefix);

  const groups = new Map<string, PolicyEntry>();
  const latestKeys: string[] = [];
  for (const key of keys) {
    const parts = key.split('/');
    if (parts[0] !== 'policies') continue;
    if (parts.length === 5 && parts[4] === 'latest.json') latestKeys.push(key);
    if (parts.length !== 6) continue;
    const [, m, t, c, searchId, file] = parts;
    if ((model && m !== model) || (target && t !== target) || (constraint && c !== constraint)) continue;
    const id = `${m}/${t}/${c}/${searchId}`;
    const entry = groups.get(id) ?? { model: m, target: t, constraint: c, searchId, latest: false, files: [] };
    entry.files.push(file);
    groups.set(id, entry);
  }
  for (const key of latestKeys) {
    const [, m, t, c] = key.split('/');
    const pointer = await getJson(store, key, LatestPointer);
    const entry = groups.get(`${m}/${t}/${c}/${pointer.searchId}`);
    if (entry) entry.latest = true;
  }
  return [...groups.values()]
    .filter((e) => e.files.includes('policy.json'))
    .map((e) => ({ ...e, files: e.files.sort() }))
    .sort((a, b) => `${a.model}/${a.target}/${a.constraint}/${a.searchId}`.localeCompare(`${b.model}/${b.target}/${b.constraint}/${b.searchId}`));
}

export interface GetPolicyRequest {
  model: string;
  target: string;
  /** `latency:0.5` or `latency-0.5`. */
  constraint: string;
  /** A search id; default: the one latest.json points at. */
  searchId?: string;
}

export interface StoredPolicy {
  model: string;
  target: string;
  constraint: string;
  searchId: string;
  policy: Policy;
  /** Keys of the files present for this search. */
  keys: Partial<Record<PolicyFile, string>>;
}

/** Reads one policy (the latest for model/target/constraint unless a search id is given). */
export async function getPolicy(store: ObjectStore, request: GetPolicyRequest): Promise<StoredPolicy> {
  const model = segment(request.model, 'MODEL')!;
  const target = segment(request.target, '--target')!;
  const constraint = constraintLabel(request.constraint);
  let searchId = segment(request.searchId, '--search');
  if (searchId === undefined) {
    const latestKey = resultKeys.latest(model, target, constraint);
    try {
      searchId = (await getJson(store, latestKey, LatestPointer)).searchId;
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
      const known = await listPolicies(store, { model });
      const hint = known.length
        ? `stored for ${model}: ${[...new Set(known.map((e) => `--target ${e.target} --constraint ${e.constraint}`))].join('; ')}`
        : `no policies are stored for model ${model} (run \`haq policies list\`)`;
      throw new ObjectNotFoundError(latestKey, `${store.location}; ${hint}`);
    }
  }
  const policyKey = resultKeys.policy(model, target, constraint, searchId);
  const policy = await getJson(store, policyKey, Policy);
  const keys: StoredPolicy['keys'] = { 'policy.json': policyKey };
  if (await store.exists(resultKeys.report(model, target, constraint, searchId))) keys['report.html'] = resultKeys.report(model, target, constraint, searchId);
  if (await store.exists(resultKeys.quantModel(model, target, constraint, searchId))) keys['model.quant.onnx'] = resultKeys.quantModel(model, target, constraint, searchId);
  return { model, target, constraint, searchId, policy, keys };
}

/** Copies the policy's files to a local folder; returns the paths written. */
export async function downloadPolicy(store: ObjectStore, stored: StoredPolicy, outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const [file, key] of Object.entries(stored.keys)) {
    const path = join(outDir, file);
    await writeFile(path, await store.get(key!));
    written.push(path);
  }
  return written;
}

// ---------------------------------------------------------------------------------------
// Finding the bucket

/** The stack outputs the CLI reads (infra/haq-stack.ts `outputNames`). */
export type StackOutputName = 'ModelsBucketName' | 'ResultsBucketName' | 'WorkBucketName';

export interface BucketSource {
  flag?: string;
  envVar: string;
  output: StackOutputName;
  stack?: string;
  env?: NodeJS.ProcessEnv;
  /** Reads a stack's outputs (default: CloudFormation DescribeStacks). */
  describeStack?: (stackName: string) => Promise<Record<string, string>>;
}

/** --bucket, else the environment variable, else the stack's CloudFormation output. */
export async function resolveBucket(source: BucketSource): Promise<string> {
  const env = source.env ?? process.env;
  if (source.flag) return source.flag;
  if (env[source.envVar]) return env[source.envVar]!;
  const stack = source.stack ?? env.HAQ_STACK ?? 'Haq';
  let outputs: Record<string, string>;
  try {
    outputs = await (source.describeStack ?? describeStackOutputs)(stack);
  } catch (err) {
    const unreachable = unreachableEndpointError(err, env);
    if (unreachable) throw unreachable;
    if (err instanceof InvalidInputError) throw err; // HAQ_ENDPOINT itself is wrong
    throw new InvalidInputError(
      `no bucket given: pass --bucket, set ${source.envVar}, or deploy the stack (reading stack ${stack}'s outputs failed: ${(err as Error).message})`,
      { stack },
    );
  }
  const bucket = outputs[source.output];
  if (!bucket) throw new InvalidInputError(`stack ${stack} has no output ${source.output}: pass --bucket or set ${source.envVar}`, { stack });
  return bucket;
}

/** A deployed stack's outputs (--stack, else HAQ_STACK, else Haq), as one error line when they cannot be read. */
export async function stackOutputs(stack?: string, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, string>> {
  const name = stack ?? env.HAQ_STACK ?? 'Haq';
  try {
    return await describeStackOutputs(name);
  } catch (err) {
    const unreachable = unreachableEndpointError(err, env);
    if (unreachable) throw unreachable;
    if (err instanceof InvalidInputError) throw err; // HAQ_ENDPOINT itself is wrong
    throw new InvalidInputError(`cannot read stack ${name}'s outputs (${(err as Error).message}): deploy it, or pass --stack`, { stack: name });
  }
}

async function describeStackOutputs(stackName: string): Promise<Record<string, string>> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const client = new CloudFormationClient(awsClientSettings());
  const out = await client.send(new DescribeStacksCommand({ StackName: stackName })).finally(() => client.destroy());
  const stack = out.Stacks?.[0];
  if (!stack) throw new Error(`stack ${stackName} not found`);
  return Object.fromEntries((stack.Outputs ?? []).filter((o) => o.OutputKey && o.OutputValue).map((o) => [o.OutputKey!, o.OutputValue!]));
}

/** An S3 store for the CLI, at HAQ_ENDPOINT when set (cli/aws-clients.ts). */
export function cliS3Store(bucket: string, env: NodeJS.ProcessEnv = process.env): S3Store {
  return new S3Store(bucket, new S3Client(awsClientSettings(env)));
}

/**
 * The AWS SDK's errors a user can fix, as one InvalidInputError line saying how; anything
 * else is returned unchanged.
 */
export function explainAwsError(err: unknown, bucket: string): unknown {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (!e || typeof e !== 'object') return err;
  const unreachable = unreachableEndpointError(err);
  if (unreachable) return unreachable;
  if (e.message === 'Region is missing') {
    return new InvalidInputError('no AWS region is configured: set AWS_REGION (e.g. AWS_REGION=us-east-1) or a profile with a region');
  }
  if (e.name === 'CredentialsProviderError') {
    return new InvalidInputError(`no AWS credentials found (${e.message}): set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`);
  }
  if (e.name === 'NoSuchBucket') {
    return new InvalidInputError(`bucket ${bucket} does not exist: check --bucket, the environment variable, or the stack's outputs`, { bucket });
  }
  if (e.name === 'AccessDenied' || e.$metadata?.httpStatusCode === 403) {
    return new InvalidInputError(`access to s3://${bucket} was denied (${e.message ?? e.name}): use credentials that may read and write this bucket`, { bucket });
  }
  return err;
}

/** Runs `fn` and rethrows AWS errors with `explainAwsError`. */
export async function withAwsHints<T>(bucket: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw explainAwsError(err, bucket);
  }
}

// ---------------------------------------------------------------------------------------
// Commands

interface CommonOptions {
  bucket?: string;
  stack?: string;
  json?: boolean;
}

const resultsStore = async (opts: CommonOptions): Promise<S3Store> =>
  cliS3Store(await resolveBucket({ flag: opts.bucket, envVar: 'HAQ_RESULTS_BUCKET', output: 'ResultsBucketName', stack: opts.stack }));

/** One sweep's comparison in the results bucket. */
export interface StoredSweep {
  sweepId: string;
  searches: number;
  failed: number;
  files: string[];
}

/** Every sweep with a comparison in the results bucket (sweeps/<id>/comparison.json). */
export async function listSweeps(store: ObjectStore): Promise<StoredSweep[]> {
  const keys = await store.list('sweeps/');
  const ids = [...new Set(keys.map((k) => k.split('/')).filter((p) => p.length === 3 && p[2] === 'comparison.json').map((p) => p[1]))].sort();
  const out: StoredSweep[] = [];
  for (const sweepId of ids) {
    const c = await getJson(store, resultKeys.sweep(sweepId), StoredComparison);
    out.push({ sweepId, searches: c.rows.length, failed: c.rows.filter((r) => r.error || r.state !== 'succeeded').length, files: keys.filter((k) => k.startsWith(`sweeps/${sweepId}/`)).map((k) => k.split('/')[2]) });
  }
  return out;
}

/** comparison.json as far as these commands read it (functions/compare.ts writes it). */
const StoredComparison = z
  .object({
    sweepId: z.string(),
    targets: z.array(z.string()),
    rows: z.array(z.object({ state: z.string(), error: z.object({ name: z.string(), message: z.string() }).nullable().optional() }).passthrough()),
  })
  .passthrough();

/**
 * What `haq policies get` prints: the search, the policy's hardware cost, then the search's own
 * summary (the metric ± standard error on validation, selection and test, the uniform
 * references, the gain, the layers); a policy.json without per-split evaluations shows its
 * top-1 ± standard error on the splits it records.
 */
export function policyText(stored: StoredPolicy): string {
  const m = stored.policy.metrics ?? {};
  const cost = ['latencyMs', 'energyUj', 'sizeBytes']
    .filter((k) => typeof m[k] === 'number')
    .map((k) => `${k}=${Number((m[k] as number).toFixed(4))}`)
    .join(' ');
  const head = [`${stored.model} on ${stored.target}, ${stored.constraint}, search ${stored.searchId}`, cost];
  const { constraint } = stored.policy;
  if (m.evaluations && constraint) return [...head, summaryText({ ...stored.policy, constraint })].filter(Boolean).join('\n');
  const top1 = (['val', 'test'] as const).flatMap((split) => {
    const e = policyTop1(stored.policy, split);
    if (!e) return [];
    const figure = e.se === null ? `${e.value.toFixed(2)} (no sample count recorded: no standard error)` : `${e.value.toFixed(2)} ± ${e.se.toFixed(2)}`;
    return [`top-1 % ${split === 'val' ? 'validation' : 'test'}: ${figure}`];
  });
  return [...head, ...top1, formatTable(['layer', 'wBits', 'aBits'], stored.policy.layers.map((l) => [l.name, l.wBits, l.aBits ?? 'float']))].filter(Boolean).join('\n');
}

export function register(program: Command): void {
  const policies = program.command('policies').description('list and fetch the policies searches stored in the results bucket');
  const common = (c: Command) =>
    c
      .option('--bucket <name>', 'results bucket (default: $HAQ_RESULTS_BUCKET, else the stack output ResultsBucketName)')
      .option('--stack <name>', 'CloudFormation stack to read outputs from (default: $HAQ_STACK or Haq)')
      .option('--json', 'print JSON');

  common(
    policies
      .command('list')
      .description('every stored policy: model, target, constraint, search id, whether it is the latest')
      .option('--model <name>', 'only this model')
      .option('--target <name>', 'only this hardware target')
      .option('--constraint <c>', 'only this constraint, e.g. latency:0.5'),
  ).action(
    action(async (opts: CommonOptions & PolicyFilter) => {
      const store = await resultsStore(opts);
      const entries = await withAwsHints(store.bucket, () => listPolicies(store, opts));
      if (opts.json) return printJson({ bucket: store.bucket, policies: entries });
      if (!entries.length) {
        process.stdout.write(`no policies in s3://${store.bucket}${opts.model ? ` for model ${opts.model}` : ''}\n`);
        return;
      }
      const rows = entries.map((e) => [e.model, e.target, e.constraint, e.searchId, e.latest ? 'yes' : '', e.files.join(',')]);
      process.stdout.write(`${formatTable(['model', 'target', 'constraint', 'search', 'latest', 'files'], rows)}\n`);
    }),
  );

  common(policies.command('sweeps').description('every sweep comparison in the results bucket: sweep id, searches, failed')).action(
    action(async (opts: CommonOptions) => {
      const store = await resultsStore(opts);
      const sweeps = await withAwsHints(store.bucket, () => listSweeps(store));
      if (opts.json) return printJson({ bucket: store.bucket, sweeps });
      if (!sweeps.length) {
        process.stdout.write(`no sweeps in s3://${store.bucket}\n`);
        return;
      }
      process.stdout.write(`${formatTable(['sweep', 'searches', 'failed', 'files'], sweeps.map((s) => [s.sweepId, s.searches, s.failed, s.files.join(',')]))}\n`);
    }),
  );

  common(
    policies
      .command('sweep')
      .description("one sweep's comparison: print its table, or download comparison.json and report.html with --out")
      .argument('<sweepId>', 'the sweep id (haq policies sweeps lists them)')
      .option('--out <dir>', 'download comparison.json and report.html into this folder'),
  ).action(
    action(async (sweepId: string, opts: CommonOptions & { out?: string }) => {
      const store = await resultsStore(opts);
      const id = segment(sweepId, 'sweep id')!;
      const comparison = await withAwsHints(store.bucket, async () => {
        if (!(await store.exists(resultKeys.sweep(id)))) {
          const known = (await listSweeps(store)).map((s) => s.sweepId);
          throw new ObjectNotFoundError(resultKeys.sweep(id), `s3://${store.bucket} (sweeps there: ${known.join(', ') || 'none'})`);
        }
        return getJson(store, resultKeys.sweep(id), StoredComparison);
      });
      const written: string[] = [];
      if (opts.out) {
        const dir = resolve(opts.out);
        await mkdir(dir, { recursive: true });
        for (const [key, file] of [
          [resultKeys.sweep(id), 'comparison.json'],
          [resultKeys.sweepReport(id), 'report.html'],
        ]) {
          await writeFile(join(dir, file), await withAwsHints(store.bucket, () => store.get(key)));
          written.push(join(dir, file));
        }
      }
      if (opts.json) return printJson({ ...comparison, bucket: store.bucket, written });
      const { comparisonText } = await import('../sweep-table');
      process.stdout.write(`${[`sweep ${id}`, comparisonText(comparison as unknown as Comparison), ...written.map((p) => `wrote ${p}`)].join('\n')}\n`);
    }),
  );

  common(
    policies
      .command('get')
      .description('one policy (the latest unless --search): print it, or download its files with --out')
      .argument('<model>', 'model name (the folder under models/)')
      .requiredOption('--target <name>', 'hardware target, e.g. bismo-edge')
      .requiredOption('--constraint <c>', 'constraint, e.g. latency:0.5 or latency-0.5')
      .option('--search <id>', 'a specific search id (default: latest.json)')
      .option('--out <dir>', 'download policy.json, report.html and model.quant.onnx into this folder'),
  ).action(
    action(async (model: string, opts: CommonOptions & { target: string; constraint: string; search?: string; out?: string }) => {
      const store = await resultsStore(opts);
      const { stored, written } = await withAwsHints(store.bucket, async () => {
        const stored = await getPolicy(store, { model, target: opts.target, constraint: opts.constraint, searchId: opts.search });
        return { stored, written: opts.out ? await downloadPolicy(store, stored, resolve(opts.out)) : [] };
      });
      if (opts.json) return printJson({ ...stored, bucket: store.bucket, written });
      process.stdout.write(`${[policyText(stored), ...written.map((p) => `wrote ${p}`)].join('\n')}\n`);
    }),
  );
}
