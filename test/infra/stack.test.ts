/**
 * The CDK stack, synthesized once (bundling included: esbuild runs for every handler) and
 * checked fact by fact: cdk-nag, the upload rule, the sweep schedule, bucket protections, IAM,
 * the deployed ASL, the functions and their bundles. A second synth, without bundling, covers
 * the `scheduleKind=rule` variant LocalStack uses.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { deployConfigFromContext, type DeployConfigInput } from '../../infra/config';
import { onnxruntimeImportPattern } from '../../infra/bundling';
import { functionSpecs, substitutionName } from '../../infra/function-specs';
import { HaqStack, outputNames } from '../../infra/haq-stack';
import { aslFiles, placeholders } from '../../infra/constructs/workflows';
import { modelKeyWildcard } from '../../infra/constructs/triggers';
import { tempDir } from '../helpers/tmp';

const root = resolve(import.meta.dirname, '../..');
const cdkContext = JSON.parse(readFileSync(join(root, 'cdk.json'), 'utf8')).context as Record<string, unknown>;

interface Synthesized {
  template: Template;
  json: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string }> };
  outdir: string;
  app: App;
  nagError?: Error;
}

function synth(options: DeployConfigInput, outdir: string, bundling: boolean): Synthesized {
  const context: Record<string, unknown> = { ...cdkContext, ...options };
  if (!bundling) context['aws:cdk:bundling-stacks'] = [];
  const app = new App({ context, outdir });
  const config = deployConfigFromContext((k) => app.node.tryGetContext(k));
  const stack = new HaqStack(app, config.stackName, { config, projectRoot: root });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  let nagError: Error | undefined;
  try {
    app.synth();
  } catch (err) {
    nagError = err as Error;
  }
  // Read the template from the cloud assembly: Template.fromStack would synthesize (and bundle) again.
  const json = JSON.parse(readFileSync(join(outdir, `${stack.artifactId}.template.json`), 'utf8'));
  return { template: Template.fromJSON(json), json, outdir, app, nagError };
}

const logicalIdOf = (s: Synthesized, type: string, pathPart: string): string => {
  const ids = Object.keys(s.json.Resources).filter((id) => s.json.Resources[id].Type === type && id.includes(pathPart));
  assert.equal(ids.length, 1, `one ${type} whose logical id contains ${pathPart}, found ${ids.join(', ') || 'none'}`);
  return ids[0];
};
const resourcesOf = (s: Synthesized, type: string) =>
  Object.entries(s.json.Resources).filter(([, r]) => r.Type === type);

let main: Synthesized;
let ruleVariant: Synthesized;

const dirs = [tempDir('haq-cdk'), tempDir('haq-cdk')];
before(() => {
  main = synth({ stackName: 'HaqTest' }, dirs[0].dir, true);
  ruleVariant = synth({ stackName: 'HaqRule', scheduleKind: 'rule', sweepSchedule: 'rate(1 day)', architecture: 'x86_64' }, dirs[1].dir, false);
});
after(() => dirs.forEach((d) => d.cleanup()));

describe('cdk-nag AwsSolutions', () => {
  it('reports no finding that is not acknowledged (both schedule kinds)', () => {
    assert.equal(main.nagError, undefined, main.nagError?.message);
    assert.equal(ruleVariant.nagError, undefined, ruleVariant.nagError?.message);
    const report = join(main.outdir, 'validation-report.json');
    if (existsSync(report)) {
      const parsed = JSON.parse(readFileSync(report, 'utf8')) as { pluginReports: Array<{ violations: unknown[] }> };
      assert.deepEqual(parsed.pluginReports.flatMap((p) => p.violations), []);
    }
  });

  it('gives every acknowledgement a reason', () => {
    const acks = main.app.node
      .findAll()
      .flatMap((c) => c.node.metadata)
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.entries(m.data as Record<string, unknown>));
    assert.ok(acks.length >= 10, `expected the acknowledgements in the manifest, found ${acks.length}`);
    for (const [id, reason] of acks) {
      assert.ok(typeof reason === 'string' && reason.length > 30, `acknowledgement ${id} needs a reason, got ${JSON.stringify(reason)}`);
    }
  });
});

describe('upload trigger', () => {
  it('matches Object Created for models/*/model.onnx in the models bucket and starts the search', () => {
    const models = logicalIdOf(main, 'AWS::S3::Bucket', 'Models');
    const search = logicalIdOf(main, 'AWS::StepFunctions::StateMachine', 'Search');
    main.template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.s3'],
        'detail-type': ['Object Created'],
        detail: { bucket: { name: [{ Ref: models }] }, object: { key: [{ wildcard: 'models/*/model.onnx' }] } },
      },
      Targets: [Match.objectLike({ Arn: { Ref: search } })],
    });
    assert.equal(modelKeyWildcard, 'models/*/model.onnx');
  });

  it('passes the event id, bucket and key in the S3 event shape Prepare parses', () => {
    const [, rule] = resourcesOf(main, 'AWS::Events::Rule').find(([, r]) => (r.Properties?.EventPattern as object | undefined) !== undefined)!;
    const target = (rule.Properties!.Targets as Array<{ InputTransformer: { InputPathsMap: Record<string, string>; InputTemplate: string } }>)[0];
    const paths = target.InputTransformer.InputPathsMap;
    // Fill the template as EventBridge would, with one sample event.
    const sample: Record<string, string> = {
      '$.id': 'ev-123',
      '$.time': '2026-01-01T00:00:00Z',
      '$.source': 'aws.s3',
      '$.detail-type': 'Object Created',
      '$.detail.bucket.name': 'models-bucket',
      '$.detail.object.key': 'models/lenet/model.onnx',
    };
    let text = target.InputTransformer.InputTemplate;
    for (const [name, path] of Object.entries(paths)) {
      assert.ok(path in sample, `unexpected input path ${path}`);
      text = text.replaceAll(`<${name}>`, JSON.stringify(sample[path]));
    }
    const input = JSON.parse(text);
    assert.equal(input.id, 'ev-123');
    assert.deepEqual(input.detail, { bucket: { name: 'models-bucket' }, object: { key: 'models/lenet/model.onnx' } });
  });

  it('turns on EventBridge notifications on the bucket itself (no Custom:: resource)', () => {
    main.template.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    for (const s of [main, ruleVariant]) {
      const custom = Object.values(s.json.Resources).filter((r) => r.Type.startsWith('Custom::') || r.Type === 'AWS::CloudFormation::CustomResource');
      assert.deepEqual(custom.map((r) => r.Type), []);
    }
  });
});

describe('sweep schedule', () => {
  it('scheduler kind: an EventBridge Scheduler schedule starts the sweep with the config key and a unique id', () => {
    const sweep = logicalIdOf(main, 'AWS::StepFunctions::StateMachine', 'Sweep');
    main.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 ? * SUN *)',
      State: 'ENABLED',
      Target: Match.objectLike({ Arn: { Ref: sweep } }),
    });
    const [[, schedule]] = resourcesOf(main, 'AWS::Scheduler::Schedule');
    const input = JSON.parse((schedule.Properties!.Target as { Input: string }).Input);
    assert.equal(input.configKey, 'sweeps/default.json');
    assert.equal(input.id, '<aws.scheduler.execution-id>');
    main.template.resourceCountIs('AWS::Events::Rule', 1); // only the upload rule
  });

  it('rule kind (LocalStack): a scheduled EventBridge rule with the configured expression instead', () => {
    const sweep = logicalIdOf(ruleVariant, 'AWS::StepFunctions::StateMachine', 'Sweep');
    ruleVariant.template.resourceCountIs('AWS::Scheduler::Schedule', 0);
    ruleVariant.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 day)',
      Targets: [Match.objectLike({ Arn: { Ref: sweep }, InputTransformer: Match.objectLike({ InputPathsMap: Match.objectLike({ id: '$.id' }) }) })],
    });
  });
});

describe('buckets', () => {
  it('block public access, encrypt, and deny non-TLS requests on every bucket', () => {
    const buckets = resourcesOf(main, 'AWS::S3::Bucket');
    assert.equal(buckets.length, 4); // models, work, results, access logs
    for (const [id, bucket] of buckets) {
      assert.deepEqual(
        bucket.Properties!.PublicAccessBlockConfiguration,
        { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
        id,
      );
      const encryption = bucket.Properties!.BucketEncryption as { ServerSideEncryptionConfiguration: Array<{ ServerSideEncryptionByDefault: { SSEAlgorithm: string } }> };
      assert.equal(encryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm, 'AES256', id);
      main.template.hasResourceProperties('AWS::S3::BucketPolicy', {
        Bucket: { Ref: id },
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  it('versions and retains the results bucket; expires old search objects in the work bucket', () => {
    const results = logicalIdOf(main, 'AWS::S3::Bucket', 'Results');
    assert.deepEqual(main.json.Resources[results].Properties!.VersioningConfiguration, { Status: 'Enabled' });
    assert.equal(main.json.Resources[results].DeletionPolicy, 'Retain');
    main.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'searches/', ExpirationInDays: 30, Status: 'Enabled' })]),
      },
    });
  });

  it('rejects bad context values naming the key', () => {
    assert.throws(() => deployConfigFromContext((k) => (k === 'scheduleKind' ? 'cron' : undefined)), /InvalidInputError|scheduleKind/);
  });
});

describe('IAM', () => {
  const statements = (s: Synthesized) =>
    [...resourcesOf(s, 'AWS::IAM::Policy'), ...resourcesOf(s, 'AWS::IAM::Role')].flatMap(([id, r]) => {
      const docs = r.Type === 'AWS::IAM::Policy'
        ? [r.Properties!.PolicyDocument]
        : ((r.Properties!.Policies as Array<{ PolicyDocument: unknown }> | undefined) ?? []).map((p) => p.PolicyDocument);
      return (docs as Array<{ Statement: Array<{ Action: string | string[]; Resource?: unknown }> }>).flatMap((d) => d.Statement.map((st) => ({ id, st })));
    });

  it('grants no wildcard action anywhere (no "*", no "s3:*", no "s3:Get*")', () => {
    const all = [...statements(main), ...statements(ruleVariant)];
    assert.ok(all.length > 20);
    for (const { id, st } of all) {
      for (const action of [st.Action].flat()) assert.ok(!action.includes('*'), `${id} grants ${action}`);
    }
  });

  it('lets each function touch only its buckets: Simulate, Act and Update see the work bucket alone', () => {
    const models = logicalIdOf(main, 'AWS::S3::Bucket', 'Models');
    const results = logicalIdOf(main, 'AWS::S3::Bucket', 'Results');
    for (const fn of ['Simulate', 'Act', 'Update']) {
      const policy = logicalIdOf(main, 'AWS::IAM::Policy', `${fn}Role`);
      const text = JSON.stringify(main.json.Resources[policy].Properties!.PolicyDocument);
      assert.ok(!text.includes(models) && !text.includes(results), `${fn} may reach the models or results bucket: ${text}`);
      assert.ok(text.includes('/searches/*'), `${fn} needs searches/: ${text}`);
    }
    const finalize = JSON.stringify(main.json.Resources[logicalIdOf(main, 'AWS::IAM::Policy', 'FinalizeRole')].Properties!.PolicyDocument);
    assert.ok(finalize.includes('/policies/*') && finalize.includes(results), 'Finalize writes policies/ in the results bucket');
  });

  it('the recovered weights (work bucket, cache/recovery/): Prepare writes them, Evaluate and Finalize read them, the others never see them', () => {
    const work = logicalIdOf(main, 'AWS::S3::Bucket', 'Work');
    const policyOf = (fn: string) => main.json.Resources[logicalIdOf(main, 'AWS::IAM::Policy', `${fn}Role`)].Properties!.PolicyDocument as { Statement: Array<{ Action: string | string[]; Resource?: unknown }> };
    const actionsOn = (fn: string) =>
      policyOf(fn)
        .Statement.filter((st) => JSON.stringify(st.Resource ?? '').includes(work) && JSON.stringify(st).includes('cache/recovery/'))
        .flatMap((st) => [st.Action].flat())
        .sort();
    const cases: Array<{ fn: string; actions: string[] }> = [
      { fn: 'Prepare', actions: ['s3:GetObject', 's3:ListBucket', 's3:PutObject'] },
      { fn: 'Evaluate', actions: ['s3:GetObject', 's3:ListBucket'] },
      { fn: 'Finalize', actions: ['s3:GetObject', 's3:ListBucket'] },
      { fn: 'Simulate', actions: [] },
      { fn: 'Act', actions: [] },
      { fn: 'Update', actions: [] },
    ];
    for (const c of cases) assert.deepEqual(actionsOn(c.fn), c.actions, c.fn);
  });
});

describe('state machines', () => {
  for (const [name, file] of Object.entries(aslFiles)) {
    it(`${name}: deploys ${file} unchanged, every placeholder substituted`, () => {
      const text = readFileSync(join(root, file), 'utf8');
      const id = logicalIdOf(main, 'AWS::StepFunctions::StateMachine', name === 'search' ? 'Search' : 'Sweep');
      const props = main.json.Resources[id].Properties!;
      assert.equal(props.DefinitionString, text);
      const subs = props.DefinitionSubstitutions as Record<string, unknown>;
      assert.deepEqual(Object.keys(subs).sort(), placeholders(text));
      for (const spec of functionSpecs) {
        if (!(substitutionName(spec) in subs)) continue;
        const fnId = logicalIdOf(main, 'AWS::Lambda::Function', `Functions${spec.id}`);
        assert.deepEqual(subs[substitutionName(spec)], { 'Fn::GetAtt': [fnId, 'Arn'] });
      }
      if (name === 'search') assert.equal(subs.MapConcurrency, '16', 'Map iterations at once on AWS: a number once substituted');
      assert.deepEqual(props.TracingConfiguration, { Enabled: true });
      assert.equal((props.LoggingConfiguration as { Level: string }).Level, 'ALL');
    });
  }

  it('every function placeholder in the ASL files has a function spec, and every spec is used', () => {
    const used = new Set(Object.values(aslFiles).flatMap((f) => placeholders(readFileSync(join(root, f), 'utf8'))));
    for (const spec of functionSpecs) assert.ok(used.has(substitutionName(spec)), `${spec.id} is not used by any ASL file`);
    for (const name of used) {
      if (name.endsWith('FunctionArn')) assert.ok(functionSpecs.some((s) => substitutionName(s) === name), `${name} has no spec`);
    }
  });

  it('lets the search start itself (continue-as-new) and the sweep run and watch searches', () => {
    const search = logicalIdOf(main, 'AWS::StepFunctions::StateMachine', 'Search');
    const policyOf = (role: string) => JSON.stringify(main.json.Resources[logicalIdOf(main, 'AWS::IAM::Policy', role)].Properties!.PolicyDocument);
    const searchPolicy = policyOf('WorkflowsSearchRole');
    assert.match(searchPolicy, /"Action":"states:StartExecution","Effect":"Allow","Resource":\{"Fn::Join":\["",\["arn:",\{"Ref":"AWS::Partition"\},":states:",\{"Ref":"AWS::Region"\},":",\{"Ref":"AWS::AccountId"\},":stateMachine:HaqTest-search"\]\]\}/);
    assert.equal(main.json.Resources[search].Properties!.StateMachineName, 'HaqTest-search');
    const sweepPolicy = policyOf('WorkflowsSweepRole');
    assert.ok(sweepPolicy.includes(`"Action":"states:StartExecution","Effect":"Allow","Resource":{"Ref":"${search}"}`), sweepPolicy);
    assert.ok(sweepPolicy.includes(':execution:HaqTest-search:*'), 'describe/stop search executions');
    assert.ok(sweepPolicy.includes('StepFunctionsGetEventsForStepFunctionsExecutionRule'), 'the .sync managed rule');
    for (const fn of ['Prepare', 'Evaluate', 'RecordFailure']) {
      assert.ok(searchPolicy.includes(`{"Fn::GetAtt":["${logicalIdOf(main, 'AWS::Lambda::Function', `Functions${fn}`)}","Arn"]}`), `search invokes ${fn}`);
    }
    assert.ok(!searchPolicy.includes(logicalIdOf(main, 'AWS::Lambda::Function', 'FunctionsCompare')), 'search does not invoke Compare');
  });

  it('exports bucket names and state machine ARNs', () => {
    for (const name of Object.values(outputNames)) main.template.hasOutput(name, {});
  });
});

describe('functions', () => {
  it('run nodejs22.x on arm64 with X-Ray, JSON logs to their own log group, and the bucket names', () => {
    const fns = resourcesOf(main, 'AWS::Lambda::Function');
    assert.equal(fns.length, functionSpecs.length);
    for (const [id, fn] of fns) {
      const p = fn.Properties!;
      assert.equal(p.Runtime, 'nodejs22.x', id);
      assert.deepEqual(p.Architectures, ['arm64'], id);
      assert.deepEqual(p.TracingConfig, { Mode: 'Active' }, id);
      assert.equal(p.Handler, 'index.handler', id);
      assert.ok((p.LoggingConfig as { LogGroup?: unknown }).LogGroup, `${id} has an explicit log group`);
      const env = (p.Environment as { Variables: Record<string, unknown> }).Variables;
      for (const v of ['MODELS_BUCKET', 'WORK_BUCKET', 'RESULTS_BUCKET', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_LOG_LEVEL']) assert.ok(env[v], `${id} lacks ${v}`);
    }
    ruleVariant.template.allResourcesProperties('AWS::Lambda::Function', { Architectures: ['x86_64'] });
  });

  it('bundles: handlers without onnxruntime under 1 MB; onnxruntime ones under 60 MB with only the linux arm64 binary', () => {
    const fns = resourcesOf(main, 'AWS::Lambda::Function');
    for (const spec of functionSpecs) {
      const [, fn] = fns.find(([id]) => id.startsWith(`Functions${spec.id}`))!;
      const hash = ((fn.Properties!.Code as { S3Key: string }).S3Key).replace(/\.zip$/, '');
      const dir = join(main.outdir, `asset.${hash}`);
      const bundle = readFileSync(join(dir, 'index.mjs'), 'utf8');
      const total = dirBytes(dir);
      const importsOrt = onnxruntimeImportPattern.test(bundle);
      if (spec.onnxruntime) {
        assert.ok(importsOrt, `${spec.id} is marked onnxruntime but does not import it`);
        assert.ok(total < 60 * 2 ** 20, `${spec.id}: ${total} bytes`);
        const napi = join(dir, 'node_modules/onnxruntime-node/bin/napi-v6');
        assert.deepEqual(readdirSync(napi), ['linux']);
        assert.deepEqual(readdirSync(join(napi, 'linux')), ['arm64']);
        assert.ok(existsSync(join(napi, 'linux/arm64/onnxruntime_binding.node')));
        assert.ok(existsSync(join(dir, 'node_modules/onnxruntime-common/package.json')));
      } else {
        assert.ok(!importsOrt, `${spec.id} imports onnxruntime-node (so it carries the 25 MB runtime): import it lazily, or mark the spec onnxruntime: true`);
        // Finalize carries the report's SVG charts and the ONNX export (about 2 MB) but no runtime.
        const limit = spec.id === 'Finalize' ? 4 * 2 ** 20 : 2 ** 20;
        assert.ok(total < limit, `${spec.id}: ${total} bytes`);
        assert.ok(!existsSync(join(dir, 'node_modules')), `${spec.id} carries node_modules`);
      }
    }
  });
});

function dirBytes(dir: string): number {
  let sum = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    sum += entry.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return sum;
}
