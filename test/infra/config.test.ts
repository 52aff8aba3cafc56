/** Deployment options from CDK context (infra/config.ts) and cdk-nag finding names (infra/nag.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deployConfigFromContext } from '../../infra/config';
import { renderForNag } from '../../infra/nag';
import { InvalidInputError } from '../../shared/errors';

const fromContext = (ctx: Record<string, unknown>) => deployConfigFromContext((k) => ctx[k]);

describe('deployConfigFromContext', () => {
  it('fills every default', () => {
    const c = fromContext({});
    assert.equal(c.stackName, 'Haq');
    assert.equal(c.architecture, 'arm64');
    assert.equal(c.scheduleKind, 'scheduler');
    assert.equal(c.sweepSchedule, 'cron(0 3 ? * SUN *)');
    assert.equal(c.sweepConfigKey, 'sweeps/default.json');
    assert.equal(c.sweepEnabled, true);
    assert.equal(c.destroyInputBuckets, false);
    assert.deepEqual(c.injectFaults, []);
    assert.equal(c.mapConcurrency, 16);
  });

  it('coerces the strings `-c key=value` gives', () => {
    const c = fromContext({ sweepEnabled: 'false', destroyInputBuckets: 'true', logRetentionDays: '7', workRetentionDays: '3', injectFaults: 'evaluate, simulate', mapConcurrency: '2' });
    assert.equal(c.sweepEnabled, false);
    assert.equal(c.destroyInputBuckets, true);
    assert.equal(c.logRetentionDays, 7);
    assert.equal(c.workRetentionDays, 3);
    assert.deepEqual(c.injectFaults, ['evaluate', 'simulate']);
    assert.equal(c.mapConcurrency, 2);
  });

  const bad: Array<[string, unknown]> = [
    ['scheduleKind', 'cron'],
    ['architecture', 'arm'],
    ['sweepSchedule', '0 3 * * *'],
    ['logRetentionDays', '8'],
    ['workRetentionDays', '0'],
    ['sweepEnabled', 'yes'],
    ['sweepConfigKey', '/abs.json'],
    ['stackName', 'has space'],
    ['logLevel', 'TRACE'],
    ['mapConcurrency', '0'],
    ['mapConcurrency', '2.5'],
  ];
  for (const [key, value] of bad) {
    it(`rejects ${key}=${String(value)} naming the key`, () => {
      assert.throws(() => fromContext({ [key]: value }), (err: Error) => err instanceof InvalidInputError && err.message.includes(key));
    });
  }
});

describe('renderForNag', () => {
  it('renders resolved tokens the way cdk-nag names findings', () => {
    assert.equal(renderForNag('arn:aws:s3:::b/*'), 'arn:aws:s3:::b/*');
    assert.equal(renderForNag({ 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Bucket1', 'Arn'] }, '/models/*']] }), '<Bucket1.Arn>/models/*');
    assert.equal(
      renderForNag({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':x']] }),
      'arn:<AWS::Partition>:states:<AWS::Region>:x',
    );
  });
});
