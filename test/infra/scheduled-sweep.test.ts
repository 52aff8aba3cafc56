/**
 * The scheduled sweep's input ({ id, source, configKey, scheduledTime }, infra/constructs/
 * triggers.ts) reaches Compare's plan step, which reads the sweep config from the models
 * store. Real handler over filesystem stores.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeHandler } from '../../functions/compare';
import { silentLogger } from '../../functions/lib/runtime';
import { ObjectNotFoundError } from '../../shared/errors';
import { sweepKeys } from '../../shared/keys';
import { FsStore } from '../../shared/store/fs-store';
import { putJson } from '../../shared/store/object-store';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-sweep-input');
after(() => tmp.cleanup());

describe('scheduled sweep input', () => {
  const stores = {
    models: new FsStore(join(tmp.dir, 'models')),
    work: new FsStore(join(tmp.dir, 'work')),
    results: new FsStore(join(tmp.dir, 'results')),
  };
  const compare = makeHandler({ stores, logger: silentLogger(), now: () => new Date(0), faults: [] });
  const scheduleInput = (configKey: string) => ({ id: 'ev-1', source: 'schedule', configKey, scheduledTime: '2026-01-04T03:00:00Z' });

  it('plans the sweep from the config key in the models bucket', async () => {
    await putJson(stores.models, 'sweeps/default.json', {
      sweepId: 'weekly',
      models: ['lenet', 'mlp'],
      targets: ['bismo-edge', 'bitfusion'],
      constraints: ['latency:0.5'],
      config: { episodes: 10 },
    });
    const out = (await compare({ mode: 'plan', sweep: scheduleInput('sweeps/default.json'), executionId: 'exec-1' })) as { sweepId: string; items: number[] };
    assert.equal(out.sweepId, 'weekly');
    assert.deepEqual(out.items, [0, 1, 2, 3]);
    assert.ok(await stores.work.exists(sweepKeys.plan('weekly')));
  });

  it('fails with ObjectNotFoundError naming a missing config key', async () => {
    await assert.rejects(compare({ mode: 'plan', sweep: scheduleInput('sweeps/missing.json') }), (err: Error) => err instanceof ObjectNotFoundError && /sweeps\/missing\.json/.test(err.message));
  });
});
