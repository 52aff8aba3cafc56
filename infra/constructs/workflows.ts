import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { acknowledge, acknowledgeWildcardResources } from '../nag';
import { Construct } from 'constructs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface WorkflowsProps {
  projectRoot: string;
  /** Function by id (Prepare, Simulate, ...): fills `${<id>FunctionArn}`. */
  functions: Record<string, lambda.IFunction>;
  logRetention: logs.RetentionDays;
  /** Fills the search's `${MapConcurrency}`: iterations of each Map state at once. */
  mapConcurrency: number;
}

/** The ASL files, relative to the repository root. */
export const aslFiles = { search: 'statemachines/search.asl.json', sweep: 'statemachines/sweep.asl.json' } as const;

/** Every `${Name}` placeholder in an ASL text, sorted and unique. */
export function placeholders(asl: string): string[] {
  return [...new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))].sort();
}

/**
 * The search and sweep state machines, deployed from statemachines/*.asl.json unchanged
 * (DefinitionString is the file's text; DefinitionSubstitutions fill the placeholders, a
 * textual replacement done before the definition is parsed),
 * with ALL-level execution logs in their own log groups and X-Ray tracing.
 */
export class Workflows extends Construct {
  readonly search: sfn.StateMachine;
  readonly sweep: sfn.StateMachine;
  /** Fixed names: the search machine starts itself (continue-as-new) by its own ARN. */
  readonly searchName: string;
  readonly sweepName: string;

  constructor(scope: Construct, id: string, props: WorkflowsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.searchName = `${stack.stackName}-search`;
    this.sweepName = `${stack.stackName}-sweep`;
    const searchArn = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: this.searchName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    const searchExecutionsArn = stack.formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${this.searchName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    const searchText = readFileSync(join(props.projectRoot, aslFiles.search), 'utf8');
    const sweepText = readFileSync(join(props.projectRoot, aslFiles.sweep), 'utf8');

    const functionSubstitutions = (text: string) => {
      const out: Record<string, string> = {};
      for (const name of placeholders(text)) {
        const m = /^(.+)FunctionArn$/.exec(name);
        if (!m) continue;
        const fn = props.functions[m[1]];
        if (!fn) throw new Error(`${name} in the ASL has no function ${m[1]} in infra/function-specs.ts`);
        out[name] = fn.functionArn;
      }
      return out;
    };
    // The ASL's Task Resource is the unqualified function ARN: invoke exactly those (no ":*").
    const grantInvokes = (machine: sfn.StateMachine, text: string) => {
      const arns = Object.values(functionSubstitutions(text));
      machine.addToRolePolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: arns }));
    };

    this.search = new sfn.StateMachine(this, 'Search', {
      stateMachineName: this.searchName,
      definitionBody: sfn.DefinitionBody.fromString(searchText),
      // An unquoted placeholder: the substitution is textual, so MaxConcurrency stays a number.
      definitionSubstitutions: { ...functionSubstitutions(searchText), MapConcurrency: String(props.mapConcurrency) },
      tracingEnabled: true,
      logs: { destination: this.logGroup('SearchLogs', this.searchName, props.logRetention), level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    grantInvokes(this.search, searchText);
    // Continue-as-new: the search starts a new execution of itself.
    this.search.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [searchArn] }));

    this.sweep = new sfn.StateMachine(this, 'Sweep', {
      stateMachineName: this.sweepName,
      definitionBody: sfn.DefinitionBody.fromString(sweepText),
      definitionSubstitutions: { ...functionSubstitutions(sweepText), SearchStateMachineArn: this.search.stateMachineArn },
      tracingEnabled: true,
      logs: { destination: this.logGroup('SweepLogs', this.sweepName, props.logRetention), level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    grantInvokes(this.sweep, sweepText);
    // startExecution.sync:2 on the search machine: start, poll/stop its executions, and the
    // managed rule Step Functions uses to hear of their completion.
    this.sweep.addToRolePolicy(new iam.PolicyStatement({ actions: ['states:StartExecution'], resources: [this.search.stateMachineArn] }));
    this.sweep.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['states:DescribeExecution', 'states:StopExecution'], resources: [searchExecutionsArn] }),
    );
    this.sweep.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [
          stack.formatArn({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventsForStepFunctionsExecutionRule' }),
        ],
      }),
    );
    acknowledgeWildcardResources(
      this.sweep,
      [searchExecutionsArn],
      'Search executions are named at run time (<searchId> or <searchId>-r<round>); the grant is limited to the search machine.',
    );
    for (const machine of [this.search, this.sweep]) {
      acknowledge(
        machine,
        'AwsSolutions-IAM5[Resource::*]',
        'CloudWatch Logs log delivery (logs:CreateLogDelivery, ...) and X-Ray actions support no resource-level permissions.',
      );
    }
  }

  private logGroup(id: string, machineName: string, retention: logs.RetentionDays): logs.LogGroup {
    // /aws/vendedlogs/ keeps the CloudWatch Logs resource policy small (AWS recommendation).
    return new logs.LogGroup(this, id, {
      logGroupName: `/aws/vendedlogs/states/${machineName}`,
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }
}
