import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/**
 * `scheduler`: an EventBridge Scheduler schedule (AWS's recommended scheduler: time zones,
 * flexible windows). `rule`: a scheduled EventBridge rule, which LocalStack community fires
 * (its Scheduler stores schedules but never runs them).
 */
export type ScheduleKind = 'scheduler' | 'rule';

export interface TriggersProps {
  models: s3.IBucket;
  search: sfn.IStateMachine;
  sweep: sfn.IStateMachine;
  /** `cron(...)` or `rate(...)`, the same syntax for both kinds. */
  sweepSchedule: string;
  /** IANA time zone of the cron (Scheduler only; rules run in UTC). */
  sweepTimeZone: string;
  scheduleKind: ScheduleKind;
  /** Key of the sweep configuration in the models bucket. */
  sweepConfigKey: string;
  /** Whether the sweep schedule starts enabled. */
  sweepEnabled: boolean;
}

/** The upload event pattern's key match: a model file directly in its models/<name>/ folder. */
export const modelKeyWildcard = 'models/*/model.onnx';

/**
 * - ModelUploaded: S3 "Object Created" for models/<name>/model.onnx in the models bucket
 *   starts the search state machine with the bucket and key in its input (Prepare reads
 *   search.json beside the model and takes the per-model lock).
 * - The sweep schedule starts the sweep state machine with the sweep config's key.
 * Both inputs keep a unique `id` (the event or schedule execution id): LocalStack names
 * the execution after it.
 */
export class Triggers extends Construct {
  readonly modelUploaded: events.Rule;
  readonly sweepRule?: events.Rule;
  readonly sweepSchedule?: scheduler.CfnSchedule;

  constructor(scope: Construct, id: string, props: TriggersProps) {
    super(scope, id);

    this.modelUploaded = new events.Rule(this, 'ModelUploaded', {
      description: `Starts a haq search when ${modelKeyWildcard} is uploaded to the models bucket`,
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [props.models.bucketName] },
          object: { key: events.Match.wildcard(modelKeyWildcard) },
        },
      },
      targets: [
        new targets.SfnStateMachine(props.search, {
          // The S3 event's shape, trimmed to what Prepare reads (functions/lib/search-input.ts):
          // the search id is derived from the event id and the key.
          input: events.RuleTargetInput.fromObject({
            id: events.EventField.eventId,
            time: events.EventField.time,
            source: events.EventField.source,
            'detail-type': events.EventField.detailType,
            detail: {
              bucket: { name: events.EventField.fromPath('$.detail.bucket.name') },
              object: { key: events.EventField.fromPath('$.detail.object.key') },
            },
          }),
          retryAttempts: 4,
          maxEventAge: Duration.hours(2),
        }),
      ],
    });

    const sweepInput = (idField: string, timeField: string) => ({
      id: idField,
      source: 'schedule',
      configKey: props.sweepConfigKey,
      scheduledTime: timeField,
    });

    if (props.scheduleKind === 'rule') {
      this.sweepRule = new events.Rule(this, 'SweepRule', {
        description: 'Starts the haq hardware sweep on a schedule',
        schedule: events.Schedule.expression(props.sweepSchedule),
        enabled: props.sweepEnabled,
        targets: [
          new targets.SfnStateMachine(props.sweep, {
            input: events.RuleTargetInput.fromObject(sweepInput(events.EventField.eventId, events.EventField.time)),
            retryAttempts: 4,
            maxEventAge: Duration.hours(2),
          }),
        ],
      });
    } else {
      const stack = Stack.of(this);
      const role = new iam.Role(this, 'SweepScheduleRole', {
        assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
        }),
        description: 'EventBridge Scheduler: start the haq sweep state machine',
      });
      props.sweep.grantStartExecution(role);
      this.sweepSchedule = new scheduler.CfnSchedule(this, 'SweepSchedule', {
        description: 'Starts the haq hardware sweep on a schedule',
        scheduleExpression: props.sweepSchedule,
        scheduleExpressionTimezone: props.sweepTimeZone,
        flexibleTimeWindow: { mode: 'OFF' },
        state: props.sweepEnabled ? 'ENABLED' : 'DISABLED',
        target: {
          arn: props.sweep.stateMachineArn,
          roleArn: role.roleArn,
          // Scheduler context attributes, filled at each run.
          input: JSON.stringify(sweepInput('<aws.scheduler.execution-id>', '<aws.scheduler.scheduled-time>')),
          retryPolicy: { maximumRetryAttempts: 4, maximumEventAgeInSeconds: 7200 },
        },
      });
    }
  }
}
