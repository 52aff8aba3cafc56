/**
 * Deploys the CDK app (infra/) to LocalStack the way `cdk deploy` would, without bootstrap:
 *   1. `cdk synth` into a temporary folder, with LocalStack's context (x86_64 functions for the
 *      host executor, a scheduled EventBridge rule instead of Scheduler, a test stack name, 2
 *      iterations of each search Map state at once as in the embedded runner);
 *   2. each file asset of <stack>.assets.json zipped (folders) and put where the template
 *      expects it (the bootstrap assets bucket name, created here);
 *   3. CloudFormation CreateStack with the synthesized template, minus the bootstrap-version
 *      parameter and rule (no CDKToolkit stack here), then the stack's outputs.
 * Why not cdklocal: it needs `cdk bootstrap` (an ECR repository, roles, an SSM parameter)
 * and *.localhost.localstack.cloud names that resolve only with internet DNS; this uses the
 * very template and assets `cdk deploy` would, in a few seconds.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStackEventsCommand,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { outputNames } from '../../infra/haq-stack';
import { repoRoot } from '../aws-clients';
import { localMapConcurrency } from '../embedded/asl';
import { accountId, region, type LocalStackEndpoint } from './process';
import { zipDirectory } from './zip';

const run = promisify(execFile);

export interface DeployedStack {
  stackName: string;
  outputs: Record<string, string>;
  modelsBucket: string;
  workBucket: string;
  resultsBucket: string;
  searchStateMachineArn: string;
  sweepStateMachineArn: string;
  /** Physical function names by logical id prefix (Prepare, Evaluate, ...). */
  functionNames: Record<string, string>;
  synthMs: number;
  deployMs: number;
}

/** CDK context for LocalStack (infra/config.ts): overridable per deploy. */
export const localStackContext = (stackName: string): Record<string, string> => ({
  stackName,
  architecture: process.arch === 'arm64' ? 'arm64' : 'x86_64',
  scheduleKind: 'rule',
  sweepEnabled: 'false',
  logLevel: 'WARN',
  destroyInputBuckets: 'true',
  mapConcurrency: String(localMapConcurrency),
});

interface AssetManifest {
  files?: Record<string, { source: { path: string; packaging?: 'file' | 'zip' }; destinations: Record<string, { bucketName: string; objectKey: string }> }>;
}

const fillPlaceholders = (s: string) =>
  s.replaceAll('${AWS::AccountId}', accountId).replaceAll('${AWS::Region}', region).replaceAll('${AWS::Partition}', 'aws');

export async function synth(outDir: string, context: Record<string, string>, env: Record<string, string>): Promise<void> {
  const args = ['synth', '--quiet', '--output', outDir, ...Object.entries(context).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  try {
    await run(join(repoRoot, 'node_modules/.bin/cdk'), args, { cwd: repoRoot, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`cdk synth failed: ${e.message}\n${(e.stderr ?? '').slice(-4000)}`);
  }
}

/** The bucket `cdk bootstrap` would create (default qualifier); the template's assets point at it. */
export const bootstrapAssetsBucket = `cdk-hnb659fds-assets-${accountId}-${region}`;

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((err) => {
    if (!/BucketAlready/.test(String(err?.name))) throw err;
  });
}

/** Uploads every file asset (zipping folders) to the bucket and key the template names; returns the bootstrap assets bucket. */
export async function publishAssets(s3: S3Client, cdkOut: string, stackName: string): Promise<string> {
  const manifest = JSON.parse(readFileSync(join(cdkOut, `${stackName}.assets.json`), 'utf8')) as AssetManifest;
  const buckets = new Set<string>();
  for (const asset of Object.values(manifest.files ?? {})) {
    const source = join(cdkOut, asset.source.path);
    const body = statSync(source).isDirectory() ? zipDirectory(source) : readFileSync(source);
    for (const dest of Object.values(asset.destinations)) {
      const bucket = fillPlaceholders(dest.bucketName);
      if (!buckets.has(bucket)) {
        await ensureBucket(s3, bucket);
        buckets.add(bucket);
      }
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: fillPlaceholders(dest.objectKey), Body: body }));
    }
  }
  await ensureBucket(s3, bootstrapAssetsBucket);
  return bootstrapAssetsBucket;
}

/** The synthesized template without the CDK bootstrap check (no CDKToolkit stack on LocalStack). */
export function withoutBootstrapCheck(template: Record<string, any>): Record<string, any> {
  const out = structuredClone(template);
  delete out.Parameters?.BootstrapVersion;
  if (out.Parameters && Object.keys(out.Parameters).length === 0) delete out.Parameters;
  delete out.Rules?.CheckBootstrapVersion;
  if (out.Rules && Object.keys(out.Rules).length === 0) delete out.Rules;
  return out;
}

async function waitForStack(cfn: CloudFormationClient, stackName: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = Stacks?.[0];
    const status = stack?.StackStatus ?? 'UNKNOWN';
    if (status === 'CREATE_COMPLETE') return stack!;
    if (!status.endsWith('IN_PROGRESS')) {
      const { StackEvents } = await cfn.send(new DescribeStackEventsCommand({ StackName: stackName }));
      const failures = (StackEvents ?? [])
        .filter((e) => e.ResourceStatus?.endsWith('FAILED'))
        .map((e) => `${e.LogicalResourceId} (${e.ResourceType}): ${e.ResourceStatusReason}`);
      throw new Error(`stack ${stackName} ended ${status}: ${stack?.StackStatusReason ?? ''}\n${failures.join('\n')}`);
    }
    if (Date.now() > deadline) throw new Error(`stack ${stackName} still ${status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Synthesizes infra/ and creates the stack on LocalStack; returns its buckets, machines and functions. */
export async function deployHaqStack(
  ls: LocalStackEndpoint,
  opts: { stackName?: string; context?: Record<string, string>; timeoutMs?: number } = {},
): Promise<DeployedStack> {
  const stackName = opts.stackName ?? 'HaqTest';
  const cdkOut = mkdtempSync(join(tmpdir(), 'haq-cdk-out-'));
  const s3 = new S3Client(ls.clientConfig);
  const cfn = new CloudFormationClient(ls.clientConfig);
  try {
    const synthStart = performance.now();
    await synth(cdkOut, { ...localStackContext(stackName), ...opts.context }, ls.awsEnv);
    const synthMs = performance.now() - synthStart;
    const deployStart = performance.now();
    const assetsBucket = await publishAssets(s3, cdkOut, stackName);
    const template = withoutBootstrapCheck(JSON.parse(readFileSync(join(cdkOut, `${stackName}.template.json`), 'utf8')));
    // The template exceeds TemplateBody's 51,200 bytes: pass it by URL, as `cdk deploy` does.
    const templateKey = `${stackName}-${Date.now()}.template.json`;
    await s3.send(new PutObjectCommand({ Bucket: assetsBucket, Key: templateKey, Body: JSON.stringify(template) }));
    await cfn.send(
      new CreateStackCommand({
        StackName: stackName,
        TemplateURL: `${ls.endpoint}/${assetsBucket}/${templateKey}`,
        Capabilities: ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM', 'CAPABILITY_AUTO_EXPAND'],
      }),
    );
    await waitForStack(cfn, stackName, opts.timeoutMs ?? 300_000);
    const described = await describeHaqStack(ls, stackName);
    for (const name of Object.values(outputNames)) {
      if (!described?.outputs[name]) throw new Error(`stack ${stackName} has no output ${name} (have ${Object.keys(described?.outputs ?? {}).join(', ')})`);
    }
    return { ...described!, synthMs, deployMs: performance.now() - deployStart };
  } finally {
    s3.destroy();
    cfn.destroy();
    rmSync(cdkOut, { recursive: true, force: true });
  }
}

/** Reads a deployed stack's outputs (after `deployHaqStack` in this or an earlier test file). */
export async function describeHaqStack(ls: LocalStackEndpoint, stackName: string): Promise<DeployedStack | null> {
  const cfn = new CloudFormationClient(ls.clientConfig);
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName })).catch(() => ({ Stacks: [] }));
    const stack = Stacks?.[0];
    if (stack?.StackStatus !== 'CREATE_COMPLETE') return null;
    const outputs = Object.fromEntries((stack.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
    const { StackResources } = await cfn.send(new DescribeStackResourcesCommand({ StackName: stackName }));
    const functionNames: Record<string, string> = {};
    for (const r of StackResources ?? []) {
      const m = /^Functions([A-Za-z]+?)[0-9A-F]{8}$/.exec(r.LogicalResourceId ?? '');
      if (r.ResourceType === 'AWS::Lambda::Function' && m && r.PhysicalResourceId) functionNames[m[1]] = r.PhysicalResourceId;
    }
    return {
      stackName,
      outputs,
      modelsBucket: outputs[outputNames.modelsBucket],
      workBucket: outputs[outputNames.workBucket],
      resultsBucket: outputs[outputNames.resultsBucket],
      searchStateMachineArn: outputs[outputNames.searchStateMachine],
      sweepStateMachineArn: outputs[outputNames.sweepStateMachine],
      functionNames,
      synthMs: 0,
      deployMs: 0,
    };
  } finally {
    cfn.destroy();
  }
}

/** The suite's stack: deployed once per LocalStack, shared by the test files that run on it. */
export async function useHaqStack(ls: LocalStackEndpoint, stackName = 'HaqTest'): Promise<DeployedStack> {
  const existing = await describeHaqStack(ls, stackName);
  if (existing) return existing;
  const deployed = await deployHaqStack(ls, { stackName });
  console.log(`deployed ${stackName}: synth ${(deployed.synthMs / 1000).toFixed(1)} s, deploy ${(deployed.deployMs / 1000).toFixed(1)} s`);
  return deployed;
}
