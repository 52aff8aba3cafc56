/**
 * Small AWS helpers for the LocalStack suite: deploy a Node function from source files, wait
 * for executions, read objects. Everything takes the clients, so tests choose the endpoint.
 */
import {
  CreateFunctionCommand,
  LambdaClient,
  waitUntilFunctionActiveV2,
  type Runtime,
} from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  ListExecutionsCommand,
  SFNClient,
  type DescribeExecutionCommandOutput,
  type ExecutionListItem,
} from '@aws-sdk/client-sfn';
import { accountId, region } from './harness';
import { zip, type ZipEntry } from '../../cli/localstack/zip';

/** LocalStack accepts any role; an ARN of the right shape is enough. */
export const lambdaRoleArn = `arn:aws:iam::${accountId}:role/haq-localstack-test`;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const lambdaArn = (name: string) => `arn:aws:lambda:${region}:${accountId}:function:${name}`;

export interface NodeFunctionSpec {
  name: string;
  files: ZipEntry[];
  handler?: string;
  timeoutS?: number;
  environment?: Record<string, string>;
  runtime?: Runtime;
}

export async function createNodeFunction(lambda: LambdaClient, spec: NodeFunctionSpec): Promise<string> {
  const out = await lambda.send(
    new CreateFunctionCommand({
      FunctionName: spec.name,
      Runtime: spec.runtime ?? 'nodejs20.x',
      Handler: spec.handler ?? 'index.handler',
      Role: lambdaRoleArn,
      Timeout: spec.timeoutS ?? 10,
      Code: { ZipFile: zip(spec.files) },
      Environment: { Variables: spec.environment ?? {} },
    }),
  );
  await waitUntilFunctionActiveV2({ client: lambda, maxWaitTime: 60 }, { FunctionName: spec.name });
  return out.FunctionArn!;
}

/** Polls until the execution leaves RUNNING (Step Functions has no waiter). */
export async function waitForExecution(sfn: SFNClient, executionArn: string, timeoutMs = 120_000): Promise<DescribeExecutionCommandOutput> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const out = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    if (out.status !== 'RUNNING' && out.status !== 'PENDING_REDRIVE') return out;
    if (Date.now() > deadline) throw new Error(`execution ${executionArn} still ${out.status} after ${timeoutMs} ms`);
    await sleep(500);
  }
}

/** Polls until `count` executions of the state machine exist that satisfy `match`, then waits for them all to finish. */
export async function waitForExecutions(
  sfn: SFNClient,
  stateMachineArn: string,
  opts: { count: number; match?: (e: ExecutionListItem) => boolean; timeoutMs?: number },
): Promise<DescribeExecutionCommandOutput[]> {
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const items: ExecutionListItem[] = [];
    let nextToken: string | undefined;
    do {
      const page = await sfn.send(new ListExecutionsCommand({ stateMachineArn, nextToken }));
      items.push(...(page.executions ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    const matching = items.filter(opts.match ?? (() => true));
    if (matching.length >= opts.count && matching.every((e) => e.status !== 'RUNNING')) {
      return Promise.all(matching.map((e) => sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn! }))));
    }
    if (Date.now() > deadline) {
      const states = matching.map((e) => `${e.name}:${e.status}`).join(', ');
      throw new Error(`expected ${opts.count} finished executions of ${stateMachineArn} within ${timeoutMs} ms, have [${states}]`);
    }
    await sleep(1000);
  }
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return out.Body!.transformToString();
}

export async function getJson<T = unknown>(s3: S3Client, bucket: string, key: string): Promise<T> {
  return JSON.parse(await getText(s3, bucket, key)) as T;
}

/** A short unique suffix so tests sharing one LocalStack never collide. */
export const uniqueSuffix = (): string => `${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}`;
