import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge, acknowledgeWildcardResources } from '../nag';
import { Construct } from 'constructs';
import { join } from 'node:path';
import { onnxruntimeCopyCommands, sharedBundleSettings, type LambdaArch } from '../bundling';
import { bucketEnvNames, functionSpecs, type BucketRole, type FunctionSpec, type PrefixAccess } from '../function-specs';

export interface FunctionsProps {
  /** Repository root: entries, package-lock.json and node_modules are found from here. */
  projectRoot: string;
  buckets: Record<BucketRole, s3.IBucket>;
  architecture: LambdaArch;
  /** Powertools log level (POWERTOOLS_LOG_LEVEL) and Lambda's application log level. */
  logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  logRetention: logs.RetentionDays;
  /** Handler names that fail once per key with a TransientError (HAQ_INJECT_FAULT; tests only). */
  injectFaults?: string[];
  /** Which functions to build (default: all of infra/function-specs.ts). */
  specs?: FunctionSpec[];
}

/** Powertools service name (POWERTOOLS_SERVICE_NAME) and metrics namespace. */
export const powertoolsServiceName = 'haq';
export const metricsNamespace = 'haq';

/**
 * One NodejsFunction per handler in functions/, bundled locally with esbuild (no Docker),
 * each with its own role that may touch only its prefixes, its own log group, X-Ray on.
 */
export class Functions extends Construct {
  readonly byId: Record<string, NodejsFunction> = {};
  readonly specs: FunctionSpec[];

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    this.specs = props.specs ?? functionSpecs;
    for (const spec of this.specs) this.byId[spec.id] = this.build(spec, props);
  }

  get all(): NodejsFunction[] {
    return Object.values(this.byId);
  }

  private build(spec: FunctionSpec, props: FunctionsProps): NodejsFunction {
    const logGroup = new logs.LogGroup(this, `${spec.id}Logs`, {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, `${spec.id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `haq ${spec.id} function`,
    });
    logGroup.grantWrite(role);

    const environment: Record<string, string> = {
      POWERTOOLS_SERVICE_NAME: powertoolsServiceName,
      POWERTOOLS_METRICS_NAMESPACE: metricsNamespace,
      POWERTOOLS_LOG_LEVEL: props.logLevel,
      HAQ_FUNCTION: spec.id,
    };
    // depsFromEnv (functions/lib/runtime.ts) needs all three names; access is per prefix below.
    for (const bucketRole of Object.keys(bucketEnvNames) as BucketRole[]) {
      environment[bucketEnvNames[bucketRole]] = props.buckets[bucketRole].bucketName;
    }
    const prefixResources: string[] = [];
    for (const [bucketRole, access] of Object.entries(spec.access) as Array<[BucketRole, PrefixAccess]>) {
      prefixResources.push(...grantPrefixes(role, props.buckets[bucketRole], access));
    }
    if (props.injectFaults?.length) {
      // Fault-injection tests only: each named handler fails once per key (marker under faults/).
      environment.HAQ_INJECT_FAULT = props.injectFaults.join(',');
      prefixResources.push(...grantPrefixes(role, props.buckets.work, { write: ['faults/'] }));
    }
    acknowledgeWildcardResources(
      role,
      [...new Set(prefixResources)],
      'S3 object access is limited to named key prefixes (<bucket>/<prefix>*), the narrowest grant an object key allows.',
    );
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.',
    );

    const arch = props.architecture;
    const fn = new NodejsFunction(this, spec.id, {
      entry: join(props.projectRoot, spec.entry),
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: join(props.projectRoot, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      memorySize: spec.memorySizeMb,
      timeout: Duration.seconds(spec.timeoutSeconds),
      description: spec.description,
      role,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel[props.logLevel],
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      tracing: lambda.Tracing.ACTIVE,
      environment,
      bundling: {
        ...sharedBundleSettings,
        format: OutputFormat.ESM,
        forceDockerBundling: false,
        // Copies onnxruntime-node (one platform's binary) beside any bundle that imports it.
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (inputDir: string, outputDir: string) => onnxruntimeCopyCommands(inputDir, outputDir, arch),
        },
      },
    });

    acknowledge(fn, 'AwsSolutions-L1', 'nodejs22.x is the runtime this project targets (Node 22 LTS); newer runtimes are adopted deliberately.');
    return fn;
  }
}

/**
 * Least-privilege S3 access to key prefixes: GetObject/PutObject/DeleteObject on
 * `<bucket>/<prefix>*` only, ListBucket only for those prefixes. `StringLikeIfExists`:
 * HeadObject of a missing key is then answered 404 (not 403), which ObjectStore.exists needs.
 * Returns the object ARNs granted (for the cdk-nag acknowledgement).
 */
export function grantPrefixes(grantee: iam.IGrantable, bucket: s3.IBucket, access: PrefixAccess): string[] {
  const objects = (prefixes: string[]) => prefixes.map((p) => bucket.arnForObjects(`${p}*`));
  const add = (statement: iam.PolicyStatement) => grantee.grantPrincipal.addToPrincipalPolicy(statement);
  if (access.read?.length) {
    add(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: objects(access.read) }));
    add(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLikeIfExists: { 's3:prefix': access.read.map((p) => `${p}*`) } },
      }),
    );
  }
  if (access.write?.length) add(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: objects(access.write) }));
  if (access.delete?.length) add(new iam.PolicyStatement({ actions: ['s3:DeleteObject'], resources: objects(access.delete) }));
  return objects([...(access.read ?? []), ...(access.write ?? []), ...(access.delete ?? [])]);
}
