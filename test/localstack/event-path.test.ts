/**
 * The event path the product relies on, with a trivial handler: Step Functions invoking a
 * Lambda (result, and Catch on the error name the executor reports), and an S3 upload that
 * reaches a state machine through EventBridge.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { CreateBucketCommand, PutBucketNotificationConfigurationCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateStateMachineCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { createNodeFunction, lambdaRoleArn, uniqueSuffix, waitForExecution, waitForExecutions } from './aws';
import { trivialHandler } from './fixtures/trivial-handler';
import { useLocalStack, type LocalStackHandle } from './harness';

const invokeState = (functionArn: string, payload: Record<string, unknown>) => ({
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke',
  Parameters: { FunctionName: functionArn, Payload: payload },
  OutputPath: '$.Payload',
});

describe('event path on LocalStack', () => {
  let ls: LocalStackHandle;
  let lambda: LambdaClient;
  let s3: S3Client;
  let sfn: SFNClient;
  let events: EventBridgeClient;
  let functionArn: string;
  const suffix = uniqueSuffix();

  before(async () => {
    ls = await useLocalStack();
    lambda = new LambdaClient(ls.clientConfig);
    s3 = new S3Client(ls.clientConfig);
    sfn = new SFNClient(ls.clientConfig);
    events = new EventBridgeClient(ls.clientConfig);
    functionArn = await createNodeFunction(lambda, { name: `haq-path-${suffix}`, files: [{ name: 'index.mjs', data: trivialHandler }] });
  });
  after(async () => {
    for (const c of [lambda, s3, sfn, events]) c?.destroy();
    await ls?.release();
  });

  it('a state machine invokes the function and catches its error by name', async () => {
    const definition = {
      StartAt: 'Invoke',
      States: {
        Invoke: {
          ...invokeState(functionArn, { 'value.$': '$.value', 'fail.$': '$.fail' }),
          Catch: [{ ErrorEquals: ['DomainError'], ResultPath: '$.error', Next: 'Caught' }],
          End: true,
        },
        Caught: { Type: 'Pass', End: true },
      },
    };
    const { stateMachineArn } = await sfn.send(
      new CreateStateMachineCommand({ name: `haq-path-invoke-${suffix}`, definition: JSON.stringify(definition), roleArn: lambdaRoleArn }),
    );
    const ok = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify({ value: 7, fail: null }) }));
    const okDone = await waitForExecution(sfn, ok.executionArn!);
    assert.equal(okDone.status, 'SUCCEEDED', okDone.error);
    assert.equal(JSON.parse(okDone.output!).echo, 7);

    const bad = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify({ value: 1, fail: 'DomainError' }) }));
    const badDone = await waitForExecution(sfn, bad.executionArn!);
    assert.equal(badDone.status, 'SUCCEEDED', `caught, not failed: ${badDone.error} ${badDone.cause}`);
    assert.equal(JSON.parse(badDone.output!).error.Error, 'DomainError');

    const other = await sfn.send(new StartExecutionCommand({ stateMachineArn, input: JSON.stringify({ value: 1, fail: 'OtherError' }) }));
    const otherDone = await waitForExecution(sfn, other.executionArn!);
    assert.equal(otherDone.status, 'FAILED');
    assert.equal(otherDone.error, 'OtherError');
  });

  it('an S3 upload starts a state machine through EventBridge', async () => {
    const bucket = `haq-path-${suffix}`;
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: bucket, NotificationConfiguration: { EventBridgeConfiguration: {} } }));
    const definition = {
      StartAt: 'Read',
      States: { Read: { ...invokeState(functionArn, { 'bucket.$': '$.detail.bucket.name', 'key.$': '$.detail.object.key' }), End: true } },
    };
    const { stateMachineArn } = await sfn.send(
      new CreateStateMachineCommand({ name: `haq-path-s3-${suffix}`, definition: JSON.stringify(definition), roleArn: lambdaRoleArn }),
    );
    const rule = `haq-path-${suffix}`;
    await events.send(
      new PutRuleCommand({
        Name: rule,
        EventPattern: JSON.stringify({ source: ['aws.s3'], 'detail-type': ['Object Created'], detail: { bucket: { name: [bucket] }, object: { key: [{ suffix: '.txt' }] } } }),
      }),
    );
    await events.send(new PutTargetsCommand({ Rule: rule, Targets: [{ Id: 'search', Arn: stateMachineArn, RoleArn: lambdaRoleArn }] }));

    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'skip.bin', Body: 'not matched' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'in/hello.txt', Body: 'uploaded' }));
    const [done] = await waitForExecutions(sfn, stateMachineArn!, { count: 1, timeoutMs: 60_000 });
    assert.equal(done.status, 'SUCCEEDED', done.error);
    assert.equal(JSON.parse(done.output!).object, 'uploaded');
  });
});
