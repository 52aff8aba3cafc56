/**
 * Ten model uploads at once on the deployed stack: ten searches start, all finish, and each
 * result belongs to its own upload (model name, constraint and seed from its own
 * search.json), under its own prefix: no cross-talk.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { resultKeys, searchKeys } from '../../shared/keys';
import { Policy } from '../../shared/quant/policy';
import { SearchConfig } from '../../shared/config';
import { getJson, uniqueSuffix } from './aws';
import type { DeployedStack } from '../../cli/localstack/deploy';
import { listKeys, tinySearch, uploadModel, waitForSearch } from './haq';
import { failureReport, type LocalStackHandle } from './harness';
import { closeStackSession, openStackSession } from './stack-session';

const uploads = 10;
// Unique per run, so that the suite can run again on the same LocalStack.
const suffix = uniqueSuffix();

describe('concurrent uploads on the deployed stack', () => {
  let ls: LocalStackHandle;
  let stack: DeployedStack;
  let s3: S3Client;
  let sfn: SFNClient;

  before(async () => ({ ls, stack, s3, sfn } = await openStackSession()));
  after(() => closeStackSession({ ls, s3, sfn }));

  it(`${uploads} uploads at once all finish, each with its own result`, async () => {
    // Distinct constraint ratio and seed per upload: a result carrying another upload's
    // values would show cross-talk.
    const specs = Array.from({ length: uploads }, (_, i) => ({
      name: `e2e-many-${suffix}-${i}`,
      constraint: { kind: 'latency' as const, ratio: 0.5 + i * 0.04 },
      search: tinySearch({ seed: 100 + i, constraint: { kind: 'latency', ratio: 0.5 + i * 0.04 }, episodes: 2, warmupEpisodes: 2 }),
    }));
    const started = await Promise.all(specs.map((s) => uploadModel(s3, stack, s.name, { search: s.search })));
    const searches = await Promise.all(started.map((u) => waitForSearch(sfn, stack, u.modelKey, u.uploadedAt, 1_200_000)));

    assert.equal(new Set(searches.map((s) => s.searchId)).size, uploads, 'one search per upload');
    for (const [i, search] of searches.entries()) {
      const spec = specs[i];
      assert.equal(search.status, 'SUCCEEDED', `${spec.name}: ${failureReport(ls, search)}`);
      const config = SearchConfig.parse(await getJson(s3, stack.workBucket, searchKeys.config(search.searchId)));
      assert.equal(config.model, spec.name);
      assert.equal(config.seed, spec.search.seed);
      assert.deepEqual(config.constraint, spec.constraint);

      const constraint = resultKeys.constraintLabel('latency', spec.constraint.ratio);
      const keys = await listKeys(s3, stack.resultsBucket, `policies/${spec.name}/`);
      assert.deepEqual(
        keys,
        [
          resultKeys.policy(spec.name, 'bismo-edge', constraint, search.searchId),
          resultKeys.quantModel(spec.name, 'bismo-edge', constraint, search.searchId),
          resultKeys.report(spec.name, 'bismo-edge', constraint, search.searchId),
          resultKeys.latest(spec.name, 'bismo-edge', constraint),
        ].sort(),
        `${spec.name}'s results, and only its own`,
      );
      const policy = Policy.parse(await getJson(s3, stack.resultsBucket, resultKeys.policy(spec.name, 'bismo-edge', constraint, search.searchId)));
      assert.equal(policy.model?.name, spec.name);
      assert.deepEqual(policy.constraint, spec.constraint);
      assert.equal(policy.metrics?.searchId, search.searchId);
      assert.equal(policy.metrics?.seed, spec.search.seed);
    }
  });
});
