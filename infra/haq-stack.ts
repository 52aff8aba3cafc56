import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { DeployConfig } from './config';
import { Functions } from './constructs/functions';
import { Storage } from './constructs/storage';
import { Triggers } from './constructs/triggers';
import { Workflows } from './constructs/workflows';

export interface HaqStackProps extends StackProps {
  config: DeployConfig;
  /** Repository root (functions/, statemachines/, node_modules, package-lock.json). */
  projectRoot: string;
}

/** Output names; `haq policies` and `haq upload` read them from CloudFormation. */
export const outputNames = {
  modelsBucket: 'ModelsBucketName',
  workBucket: 'WorkBucketName',
  resultsBucket: 'ResultsBucketName',
  searchStateMachine: 'SearchStateMachineArn',
  sweepStateMachine: 'SweepStateMachineArn',
} as const;

/** haq on AWS: buckets, functions, the two state machines, the upload trigger and the sweep schedule. */
export class HaqStack extends Stack {
  readonly storage: Storage;
  readonly functions: Functions;
  readonly workflows: Workflows;
  readonly triggers: Triggers;

  constructor(scope: Construct, id: string, props: HaqStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.logRetentionDays as logs.RetentionDays;

    this.storage = new Storage(this, 'Storage', {
      workRetentionDays: config.workRetentionDays,
      accessLogRetentionDays: config.accessLogRetentionDays,
      destroyInputBuckets: config.destroyInputBuckets,
    });
    const buckets = { models: this.storage.models, work: this.storage.work, results: this.storage.results };

    this.functions = new Functions(this, 'Functions', {
      projectRoot: props.projectRoot,
      buckets,
      architecture: config.architecture,
      logLevel: config.logLevel,
      logRetention,
      injectFaults: config.injectFaults,
    });

    this.workflows = new Workflows(this, 'Workflows', {
      projectRoot: props.projectRoot,
      functions: this.functions.byId,
      logRetention,
      mapConcurrency: config.mapConcurrency,
    });

    this.triggers = new Triggers(this, 'Triggers', {
      models: this.storage.models,
      search: this.workflows.search,
      sweep: this.workflows.sweep,
      sweepSchedule: config.sweepSchedule,
      sweepTimeZone: config.sweepTimeZone,
      scheduleKind: config.scheduleKind,
      sweepConfigKey: config.sweepConfigKey,
      sweepEnabled: config.sweepEnabled,
    });

    const output = (name: string, value: string, description: string) => new CfnOutput(this, name, { value, description });
    output(outputNames.modelsBucket, this.storage.models.bucketName, 'Upload models/<name>/{data/*.npy,search.json,model.onnx} here');
    output(outputNames.workBucket, this.storage.work.bucketName, 'Search working objects (searches/<id>/...)');
    output(outputNames.resultsBucket, this.storage.results.bucketName, 'Policies, reports, quantized models, sweep comparisons');
    output(outputNames.searchStateMachine, this.workflows.search.stateMachineArn, 'The search state machine');
    output(outputNames.sweepStateMachine, this.workflows.sweep.stateMachineArn, 'The hardware sweep state machine');
  }
}
