/**
 * One test file's view of the deployed stack: LocalStack (shared or started), the HaqTest
 * stack deployed once, and S3 / Step Functions clients; closed again in the file's `after`.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { useHaqStack, type DeployedStack } from '../../cli/localstack/deploy';
import { useLocalStack, type LocalStackHandle } from './harness';

export interface StackSession {
  ls: LocalStackHandle;
  stack: DeployedStack;
  s3: S3Client;
  sfn: SFNClient;
}

export async function openStackSession(): Promise<StackSession> {
  const ls = await useLocalStack();
  const stack = await useHaqStack(ls);
  return { ls, stack, s3: new S3Client(ls.clientConfig), sfn: new SFNClient(ls.clientConfig) };
}

/** Destroys the clients and releases LocalStack; safe after a failed open (fields undefined). */
export async function closeStackSession(session: Partial<StackSession>): Promise<void> {
  session.s3?.destroy();
  session.sfn?.destroy();
  await session.ls?.release();
}
