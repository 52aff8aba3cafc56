/**
 * The product's side of the end-to-end tests: upload a zoo model the way a user does
 * (data, search.json, then model.onnx, whose upload starts the search), find the search
 * execution it started, read status.json and the results.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetExecutionHistoryCommand, type HistoryEvent, type SFNClient } from '@aws-sdk/client-sfn';
import { waitForSearch as waitForSearchExecution, type FinishedSearch } from '../../cli/deployed';
import { modelKeys, searchKeys } from '../../shared/keys';
import type { SearchConfigInput } from '../../shared/config';
import type { DeployedStack } from '../../cli/localstack/deploy';
import { repoRoot } from './harness';

export const zooModelPath = join(repoRoot, 'models/zoo/fmnist-cnn/model.onnx');
export const zooDataDir = join(repoRoot, 'models/zoo/data');
/** The splits a search reads (Prepare: calib + val); test-* stay home. */
export const searchDataFiles = ['calib-inputs.npy', 'val-inputs.npy', 'val-labels.npy'];

/** A search small enough for LocalStack on 2 cores: 4 episodes in 2 rounds of 2. */
export const tinySearch = (overrides: Partial<SearchConfigInput> = {}): Partial<SearchConfigInput> => ({
  hardware: 'bismo-edge',
  constraint: { kind: 'latency', ratio: 0.6 },
  strategy: 'ddpg',
  episodes: 4,
  warmupEpisodes: 2,
  parallel: 2,
  seed: 7,
  evalSamples: 200,
  calibSamples: 64,
  ...overrides,
});

/** Uploads models/<name>/{data/*, search.json} and then model.onnx (the trigger). */
export async function uploadModel(
  s3: S3Client,
  stack: DeployedStack,
  name: string,
  opts: { model?: Uint8Array; search?: Partial<SearchConfigInput> | null; data?: boolean } = {},
): Promise<{ modelKey: string; uploadedAt: Date }> {
  const put = (Key: string, Body: Uint8Array | string) => s3.send(new PutObjectCommand({ Bucket: stack.modelsBucket, Key, Body }));
  if (opts.data !== false) {
    await Promise.all(searchDataFiles.map((file) => put(modelKeys.data(name, file), readFileSync(join(zooDataDir, file)))));
  }
  if (opts.search !== null) await put(modelKeys.searchConfig(name), JSON.stringify(opts.search ?? tinySearch()));
  const uploadedAt = new Date(Date.now() - 1000); // LocalStack's clock has second resolution
  const modelKey = modelKeys.model(name);
  await put(modelKey, opts.model ?? readFileSync(zooModelPath));
  return { modelKey, uploadedAt };
}

export type { FinishedSearch };

/** Waits for the search execution an upload of `modelKey` started (cli/deployed.ts). */
export const waitForSearch = (sfn: SFNClient, stack: DeployedStack, modelKey: string, since: Date, timeoutMs = 600_000): Promise<FinishedSearch> =>
  waitForSearchExecution(sfn, stack.searchStateMachineArn, modelKey, since, { timeoutMs });

/** Every event of an execution (for retried and failed task assertions). */
export async function executionHistory(sfn: SFNClient, executionArn: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 1000 }));
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** Every key under a prefix. */
export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    keys.push(...(out.Contents ?? []).map((c) => c.Key!));
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

export const statusKey = (searchId: string) => searchKeys.status(searchId);
