import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LayerBits } from '../../../shared/quant/policy';
import { createBudgetModel, isPinned, policyCost, withinBudget, type BudgetSpec } from '../../../shared/search/budget';
import { knapsackBits, predictDrops } from '../../../shared/search/greedy';
import {
  bitsKey,
  hybridCandidate,
  hybridLevels,
  hybridProbeCount,
  hybridProbePlan,
  neighbour,
  predictedLoss,
  uniformFitBits,
} from '../../../shared/search/hybrid';
import { syntheticTop1, tinyCostTable, tinyLayers } from './fixtures';

const layers = tinyLayers();
const table = tinyCostTable(layers);
const spec = (over: Partial<BudgetSpec> = {}): BudgetSpec => ({ kind: 'latency', ratio: 0.4, minBits: 2, maxBits: 8, pinFirstLast: true, ...over });
const uniformBits = (m: ReturnType<typeof createBudgetModel>, b: number): LayerBits[] =>
  m.layerNames.map((name, i) => (isPinned(m, i) ? { name, wBits: 8, aBits: 8 } : { name, wBits: b, aBits: b }));

/** Probe rewards measured on the synthetic accuracy (0.1 x top-1, like HAQ's reward up to a constant). */
function probeRewards(m: ReturnType<typeof createBudgetModel>, count: number): number[] {
  return hybridProbePlan(m)
    .slice(0, count)
    .map((p) => 0.1 * syntheticTop1(p.bits));
}

describe('hybrid', () => {
  it('probes minBits first, then the widest uniform level that fits and the levels around it', () => {
    const m = createBudgetModel(spec(), layers, table);
    const fit = uniformFitBits(m);
    assert.ok(withinBudget(m, policyCost(m, uniformBits(m, fit))));
    assert.ok(fit === m.maxBits || !withinBudget(m, policyCost(m, uniformBits(m, fit + 1))));
    const levels = hybridLevels(m);
    assert.equal(levels[0], 2);
    assert.equal(levels[1], fit);
    assert.deepEqual([...levels].sort((a, b) => a - b), [2, 3, 4, 5, 6, 7]);
    assert.deepEqual(hybridLevels(createBudgetModel(spec({ ratio: 1 }), layers, table)), [2, 7, 6, 5, 4, 3]);
  });

  it('spends at most 40 % of the episodes on probes, reference first', () => {
    const m = createBudgetModel(spec(), layers, table);
    assert.equal(hybridProbeCount(m, 100), 40);
    assert.equal(hybridProbeCount(m, 10), 4);
    assert.equal(hybridProbeCount(m, 1000), hybridProbePlan(m).length);
    const plan = hybridProbePlan(m);
    assert.equal(plan[0].layer, null);
    assert.deepEqual([plan[1].layer, plan[1].kind, plan[1].level], [1, 'weight', 2]);
  });

  for (const step of [1, -1] as const) {
    it(`a neighbour moves one term ${step > 0 ? 'up' : 'down'} and stays in budget`, () => {
      const m = createBudgetModel(spec(), layers, table);
      const drops = predictDrops(m, hybridProbePlan(m), probeRewards(m, 40));
      const start = knapsackBits(m, drops);
      let moves = 0;
      for (let layer = 1; layer < layers.layers.length - 1; layer++) {
        for (const kind of [0, 1] as const) {
          const n = neighbour(m, drops, start, { layer, kind }, step);
          if (!n) continue;
          moves++;
          assert.ok(withinBudget(m, policyCost(m, n)));
          const before = kind === 0 ? start[layer].wBits : start[layer].aBits!;
          const after = kind === 0 ? n[layer].wBits : n[layer].aBits!;
          assert.equal(after, before + step, `layer ${layer} kind ${kind}`);
          assert.ok(n.every((b, i) => !isPinned(m, i) || (b.wBits === 8 && b.aBits === 8)));
        }
      }
      assert.ok(moves > 0);
    });
  }

  it('proposes the knapsack answer first, then unevaluated neighbours of the best policy by predicted loss', () => {
    const m = createBudgetModel(spec(), layers, table);
    const probes = hybridProbePlan(m);
    const rewards = probeRewards(m, 40);
    const drops = predictDrops(m, probes, rewards);
    const first = hybridCandidate(m, probes, rewards, [], 0);
    assert.equal(bitsKey(first), bitsKey(knapsackBits(m, drops)));
    const evaluated = [{ bits: first, reward: 0.1 * syntheticTop1(first) }];
    const next = [0, 1, 2].map((k) => hybridCandidate(m, probes, rewards, evaluated, k));
    assert.equal(new Set([bitsKey(first), ...next.map(bitsKey)]).size, 4, 'distinct, none evaluated before');
    const losses = next.map((b) => predictedLoss(m, drops, b));
    assert.ok(losses[0] <= losses[1] && losses[1] <= losses[2], `${losses}`);
    for (const b of next) assert.ok(withinBudget(m, policyCost(m, b)));
  });
});
