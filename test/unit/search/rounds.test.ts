import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Strategy, type SearchConfigInput } from '../../../shared/config';
import { BudgetInfeasibleError, InvalidInputError, ObjectNotFoundError } from '../../../shared/errors';
import { searchKeys } from '../../../shared/keys';
import { FsStore } from '../../../shared/store/fs-store';
import { getJson, putJson, type ObjectStore } from '../../../shared/store/object-store';
import { createBudgetModel, isPinned, policyCost, withinBudget } from '../../../shared/search/budget';
import { runSearchLoop, type LoopSteps } from '../../../shared/search/loop';
import { BestPolicy, RoundPolicies, SearchHistory } from '../../../shared/search/results';
import { actRound, initSearch, reward, updateRound } from '../../../shared/search/rounds';
import { tempDir } from '../../helpers/tmp';
import { buildCostTable, costPolicy } from '../../../shared/hardware/cost-table';
import { resolveTarget } from '../../../shared/hardware/targets';
import { evaluation, prepareSearch, simulate, syntheticTop1, tinyLayers } from './fixtures';

const STRATEGIES = Strategy.options;
const tmp = tempDir('haq-search');
after(() => tmp.cleanup());
let counter = 0;
const freshStore = (): FsStore => new FsStore(`${tmp.dir}/s${counter++}`);

async function run(overrides: Partial<SearchConfigInput>, store: ObjectStore = freshStore(), id = 'search-1') {
  const { layers, table } = await prepareSearch(store, id, overrides);
  const summary = await runSearchLoop(store, id, {
    simulate: (p) => simulate(table, layers, p),
    evaluate: (p) => evaluation(syntheticTop1(p.layers)),
  });
  return { store, id, summary, layers, table };
}

async function allPolicies(store: ObjectStore, id: string, rounds: number): Promise<string[]> {
  const out: string[] = [];
  for (let r = 0; r < rounds; r++) out.push(new TextDecoder().decode(await store.get(searchKeys.policies(id, r))));
  return out;
}

describe('search rounds', () => {
  it('reward is 0.1 x (top1 - top1_fp32)', () => {
    assert.equal(reward(70, 75), -0.5);
    assert.equal(reward(75, 75), 0);
  });

  for (const strategy of STRATEGIES) {
    for (const kind of ['latency', 'energy', 'size'] as const) {
      it(`${strategy} / ${kind}: every candidate policy is in budget, pinned, and the best is the highest reward`, async () => {
        const { store, id, summary, layers, table } = await run({ strategy, constraint: { kind, ratio: 0.4 }, episodes: 10, warmupEpisodes: 3, parallel: 2 });
        assert.equal(summary.done, true);
        assert.ok(summary.episodesDone <= 10);
        const m = createBudgetModel({ kind, ratio: 0.4, minBits: 2, maxBits: 8, pinFirstLast: true }, layers, kind === 'size' ? null : table);
        const history = await getJson(store, searchKeys.history(id), SearchHistory);
        assert.equal(history.episodes.length, summary.episodesDone);
        assert.deepEqual(history.episodes.map((e) => e.episode), [...Array(summary.episodesDone).keys()]);
        for (const e of history.episodes.filter((x) => !x.probe)) {
          const bits = e.bits.map(([w, a], i) => ({ name: layers.layers[i].name, wBits: w, aBits: a }));
          assert.ok(withinBudget(m, policyCost(m, bits)), `episode ${e.episode} over budget: ${e.costRatio}`);
          assert.ok(bits.every((b, i) => !isPinned(m, i) || (b.wBits === 8 && (kind === 'size' ? b.aBits === null : b.aBits === 8))));
          assert.ok(bits.every((b) => (kind === 'size') === (b.aBits === null)));
        }
        const best = await getJson(store, searchKeys.best(id), BestPolicy);
        const top = Math.max(...history.episodes.filter((x) => !x.probe).map((e) => e.reward));
        assert.equal(best.reward, top);
        assert.equal(summary.bestReward, top);
        assert.ok(withinBudget(m, policyCost(m, best.policy.layers)));
        assert.equal(best.policy.constraint?.ratio, 0.4);
      });
    }
  }

  it('every strategy stays in budget on the real bismo-edge and bitfusion cost tables', async () => {
    for (const [targetName, kind] of [['bismo-edge', 'latency'], ['bitfusion', 'energy']] as const) {
      const layers = tinyLayers();
      const table = buildCostTable(layers, resolveTarget(targetName));
      const m0 = createBudgetModel({ kind, ratio: 1, minBits: 2, maxBits: 8, pinFirstLast: true }, layers, table);
      const ratio = Math.min(1, Math.ceil((m0.minCost / m0.fullCost + 0.1) * 100) / 100);
      for (const strategy of STRATEGIES) {
        const store = freshStore();
        await prepareSearch(store, 'real', { strategy, constraint: { kind, ratio }, episodes: 6, warmupEpisodes: 2, parallel: 3, hardware: targetName });
        await putJson(store, searchKeys.costTable('real'), table);
        const summary = await runSearchLoop(store, 'real', {
          simulate: (p) => costPolicy(table, p),
          evaluate: (p) => evaluation(syntheticTop1(p.layers)),
        });
        const best = await getJson(store, searchKeys.best('real'), BestPolicy);
        const sim = costPolicy(table, best.policy);
        const all8 = costPolicy(table, { layers: layers.layers.map((l) => ({ name: l.name, wBits: 8, aBits: 8 })) });
        const used = kind === 'latency' ? sim.latencyMs / all8.latencyMs : sim.energyUj! / all8.energyUj!;
        assert.ok(used <= ratio * (1 + 1e-9), `${strategy} on ${targetName}: ${used} > ${ratio}`);
        assert.ok(summary.done && summary.episodesDone > 0);
      }
    }
  });

  it('uniform first tries the largest (b, b) that fits', async () => {
    const { store, id, layers, table } = await run({ strategy: 'uniform', constraint: { kind: 'latency', ratio: 0.4 }, episodes: 3 });
    const m = createBudgetModel({ kind: 'latency', ratio: 0.4, minBits: 2, maxBits: 8, pinFirstLast: true }, layers, table);
    const first = (await getJson(store, searchKeys.policies(id, 0), RoundPolicies)).policies[0].layers;
    const b = first[1].wBits;
    assert.ok(first.slice(1, -1).every((l) => l.wBits === b && l.aBits === b));
    const bigger = first.map((l, i) => (isPinned(m, i) ? l : { ...l, wBits: b + 1, aBits: b + 1 }));
    assert.ok(!withinBudget(m, policyCost(m, bigger)));
  });

  it('greedy finds a better policy than uniform on the synthetic model', async () => {
    const over = { constraint: { kind: 'latency' as const, ratio: 0.3 }, episodes: 40 };
    const g = await run({ ...over, strategy: 'greedy' });
    const u = await run({ ...over, strategy: 'uniform' });
    assert.ok(g.summary.bestReward! > u.summary.bestReward!, `greedy ${g.summary.bestReward} vs uniform ${u.summary.bestReward}`);
  });

  // Every strategy, and DDPG with the budget features in its state.
  const VARIANTS: Array<{ label: string; over: Partial<SearchConfigInput> }> = [
    ...STRATEGIES.map((strategy) => ({ label: strategy, over: { strategy } })),
    { label: 'ddpg with budgetState', over: { strategy: 'ddpg', ddpg: { hidden: [24, 24], batchSize: 16, budgetState: true } } },
  ];
  for (const { label, over: variant } of VARIANTS) {
    const strategy = variant.strategy;
    it(`${label} is deterministic: the same seed gives byte-identical policies and checkpoints`, async () => {
      const over = { ...variant, episodes: 14, warmupEpisodes: 3, parallel: 2 };
      const a = await run(over);
      const b = await run(over);
      const rounds = a.summary.nextRound;
      assert.deepEqual(await allPolicies(a.store, a.id, rounds), await allPolicies(b.store, b.id, rounds));
      assert.deepEqual(await a.store.get(searchKeys.agent(a.id, rounds)), await b.store.get(searchKeys.agent(b.id, rounds)));
      if (strategy === 'ddpg' || strategy === 'random') {
        const c = await run({ ...over, seed: 7 });
        assert.notDeepEqual(await allPolicies(a.store, a.id, rounds), await allPolicies(c.store, c.id, rounds));
      }
    });
  }

  it('gives the B policies of a round distinct noise draws', async () => {
    const { store, id } = await run({ strategy: 'ddpg', episodes: 8, warmupEpisodes: 2, parallel: 4 });
    for (const r of [0, 1]) {
      const rp = await getJson(store, searchKeys.policies(id, r), RoundPolicies);
      assert.equal(rp.policies.length, 4);
      const acts = new Set(rp.actions!.map((a) => a.join(',')));
      assert.equal(acts.size, 4);
    }
  });

  for (const { label, over: variant } of VARIANTS) {
    it(`${label} resumes from round r to exactly the uninterrupted result`, async () => {
      const over = { ...variant, episodes: 13, warmupEpisodes: 2, parallel: 2 };
      const full = await run(over);
      // Interrupted: stop after round 3, then copy only what a new run would see and resume.
      const first = freshStore();
      const { layers, table } = await prepareSearch(first, 'search-1', over);
      const steps: LoopSteps = { simulate: (p) => simulate(table, layers, p), evaluate: (p) => evaluation(syntheticTop1(p.layers)) };
      const stopped = await runSearchLoop(first, 'search-1', steps, { stopAfterRound: 3 });
      assert.equal(stopped.done, false);
      const second = freshStore();
      for (const key of await first.list('searches/search-1/')) {
        const roundOf = /round-(\d+)\.bin$/.exec(key);
        if (roundOf && Number(roundOf[1]) !== 4) continue; // only the checkpoint of round 4 survives
        await second.put(key, await first.get(key));
      }
      const resumed = await runSearchLoop(second, 'search-1', steps, { startRound: stopped.nextRound });
      assert.deepEqual(resumed, full.summary);
      const rounds = full.summary.nextRound;
      assert.deepEqual(await allPolicies(second, 'search-1', rounds), await allPolicies(full.store, full.id, rounds));
      assert.deepEqual(await second.get(searchKeys.best('search-1')), await full.store.get(searchKeys.best(full.id)));
      assert.deepEqual(await second.get(searchKeys.history('search-1')), await full.store.get(searchKeys.history(full.id)));
    });
  }

  it('act and update are idempotent: a retry rewrites the same bytes, a finished round is not redone', async () => {
    const store = freshStore();
    const id = 's-idem';
    const { layers, table } = await prepareSearch(store, id, { strategy: 'ddpg', episodes: 6, warmupEpisodes: 0, parallel: 2 });
    await initSearch(store, id);
    const p1 = await actRound(store, id, 0);
    const bytes1 = await store.get(searchKeys.policies(id, 0));
    const p2 = await actRound(store, id, 0);
    assert.deepEqual(p2, p1);
    assert.deepEqual(await store.get(searchKeys.policies(id, 0)), bytes1);
    for (let i = 0; i < p1.policies.length; i++) {
      await putJson(store, searchKeys.simulation(id, 0, i), simulate(table, layers, p1.policies[i]));
      await putJson(store, searchKeys.evaluation(id, 0, i), evaluation(syntheticTop1(p1.policies[i].layers)));
    }
    const s1 = await updateRound(store, id, 0);
    const agent1 = await store.get(searchKeys.agent(id, 1));
    assert.ok(s1.updates > 0, 'warm-up 0: the first round trains');
    // Retry after the summary exists: returned as stored, nothing recomputed.
    await store.put(searchKeys.evaluation(id, 0, 0), JSON.stringify(evaluation(1)));
    assert.deepEqual(await updateRound(store, id, 0), s1);
    // Retry after a crash before the summary was written: recomputed to the same bytes.
    await store.put(searchKeys.evaluation(id, 0, 0), JSON.stringify(evaluation(syntheticTop1(p1.policies[0].layers))));
    await store.delete(searchKeys.roundSummary(id, 0));
    assert.deepEqual(await updateRound(store, id, 0), s1);
    assert.deepEqual(await store.get(searchKeys.agent(id, 1)), agent1);
    const history = await getJson(store, searchKeys.history(id), SearchHistory);
    assert.equal(history.episodes.length, 2, 'the retried round is not appended twice');
  });

  it('merges evaluation shards when the workflow splits the validation set', async () => {
    const store = freshStore();
    const id = 's-shards';
    await prepareSearch(store, id, { strategy: 'random', episodes: 1, evalShards: 2 });
    await initSearch(store, id);
    await actRound(store, id, 0);
    await putJson(store, searchKeys.evaluationShard(id, 0, 0, 0), { ...evaluation(80), samples: 300 });
    await putJson(store, searchKeys.evaluationShard(id, 0, 0, 1), { ...evaluation(60), samples: 100 });
    const s = await updateRound(store, id, 0);
    assert.ok(Math.abs(s.rewards[0] - reward(75, 90)) < 1e-12, `${s.rewards[0]}`);
  });

  it('reports clear errors: infeasible budget, missing checkpoint, acting after the end', async () => {
    const store = freshStore();
    await prepareSearch(store, 'bad', { constraint: { kind: 'latency', ratio: 0.01 } });
    await assert.rejects(initSearch(store, 'bad'), (e: Error) => e instanceof BudgetInfeasibleError && /smallest feasible latency ratio/.test(e.message));
    const { store: s2, id, summary } = await run({ strategy: 'random', episodes: 2 });
    await assert.rejects(actRound(s2, id, 7), ObjectNotFoundError);
    await assert.rejects(actRound(s2, id, summary.nextRound), (e: Error) => e instanceof InvalidInputError && /is done: 2 of 2 episodes/.test(e.message));
  });
});
