import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { acknowledge } from '../nag';
import { Construct } from 'constructs';

export interface StorageProps {
  /** Days a search's working objects (searches/<id>/...: rounds, checkpoints, replay) are kept. */
  workRetentionDays: number;
  /** Days server access logs are kept. */
  accessLogRetentionDays: number;
  /**
   * Whether the models and work buckets are deleted with the stack (they must then be empty:
   * no autoDeleteObjects, which would be a Custom:: resource). The results bucket is always
   * retained: results must never be lost.
   */
  destroyInputBuckets: boolean;
}

/**
 * The three buckets (DESIGN.md "Object layout") plus one for S3 server access logs.
 * - models:  models/<name>/{model.onnx,search.json,data/*.npy} and sweep configs; every
 *            Object Created event goes to EventBridge (the search trigger).
 * - work:    searches/<id>/... (status, layers, cost table, rounds, agent checkpoints);
 *            expired after `workRetentionDays`.
 * - results: policies/<model>/<target>/<constraint>/<id>/..., sweeps/<id>/...; versioned.
 * All: Block Public Access, TLS-only bucket policy, SSE-S3 encryption, bucket-owner-enforced
 * object ownership (no ACLs), access logs to the log bucket.
 */
export class Storage extends Construct {
  readonly models: s3.Bucket;
  readonly work: s3.Bucket;
  readonly results: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const common = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    } satisfies s3.BucketProps;

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      ...common,
      // S3 log delivery writes with the bucket owner's ownership; ACLs stay disabled.
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(props.accessLogRetentionDays) }],
    });
    acknowledge(this.accessLogs, 'AwsSolutions-S1', 'This is the access-log bucket itself; logging it into itself would loop.');
    const inputRemoval = props.destroyInputBuckets ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;

    this.models = new s3.Bucket(this, 'Models', {
      ...common,
      versioned: true,
      removalPolicy: inputRemoval,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'models/',
      lifecycleRules: [
        { id: 'expire-old-model-versions', noncurrentVersionExpiration: Duration.days(30) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
    // S3 -> EventBridge on the bucket itself. `eventBridgeEnabled: true` would add the
    // Custom::S3BucketNotifications resource (a Lambda-backed custom resource that LocalStack
    // community skips); the CloudFormation property works on AWS and on LocalStack.
    (this.models.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
      eventBridgeConfiguration: { eventBridgeEnabled: true },
    };

    this.work = new s3.Bucket(this, 'Work', {
      ...common,
      removalPolicy: inputRemoval,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'work/',
      lifecycleRules: [
        // Round objects, checkpoints and replay buffers are only needed while a search runs
        // (and to resume it); its results live in the results bucket.
        { id: 'expire-searches', prefix: 'searches/', expiration: Duration.days(props.workRetentionDays) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    this.results = new s3.Bucket(this, 'Results', {
      ...common,
      versioned: true,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'results/',
      lifecycleRules: [
        // Overwritten or deleted results keep every old version (never expired), in a cheaper
        // storage class after 30 days.
        {
          id: 'noncurrent-versions-to-ia',
          noncurrentVersionTransitions: [{ storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) }],
        },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });
  }
}
