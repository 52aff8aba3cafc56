/**
 * The CDK app (`npx cdk synth|deploy`, see cdk.json): one HaqStack, options from context
 * (infra/config.ts), cdk-nag's AwsSolutions checks on every synth (a finding that is not
 * acknowledged with a reason fails the synth).
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployConfigFromContext } from './config';
import { HaqStack } from './haq-stack';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const app = new App();
const config = deployConfigFromContext((key) => app.node.tryGetContext(key));
new HaqStack(app, config.stackName, {
  config,
  projectRoot,
  description: 'haq: hardware-aware mixed-precision quantization (HAQ) searches on Step Functions and Lambda',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
