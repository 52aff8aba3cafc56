import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBudgetModel, isPinned, policyCost, withinBudget, type BudgetSpec } from '../../../shared/search/budget';
import { knapsackBits, levelOrder, predictDrops, probeCount, probePlan } from '../../../shared/search/greedy';
import { Rng } from '../../../shared/rng';
import { tinyCostTable, tinyLayers } from './fixtures';

const layers = tinyLayers();
const table = tinyCostTable(layers);
const spec = (over: Partial<BudgetSpec> = {}): BudgetSpec => ({ kind: 'latency', ratio: 0.4, minBits: 2, maxBits: 8, pinFirstLast: true, ...over });

describe('greedy', () => {
  it('orders probe levels min first, then by halving the widest gap', () => {
    assert.deepEqual(levelOrder(2, 8), [2, 5, 3, 6, 4, 7]);
    assert.deepEqual(levelOrder(1, 8), [1, 4, 6, 2, 3, 5, 7]);
    assert.deepEqual(levelOrder(4, 4), []);
  });

  it('plans a reference probe then one probe per free layer, kind and level', () => {
    const m = createBudgetModel(spec(), layers, table);
    const plan = probePlan(m);
    assert.equal(plan.length, 1 + 6 * 4 * 2);
    assert.ok(plan[0].bits.every((b, i) => (isPinned(m, i) ? b.wBits === 8 : b.wBits === 8 && b.aBits === 8)));
    assert.deepEqual([plan[1].layer, plan[1].kind, plan[1].level], [1, 'weight', 2]);
    assert.equal(plan[1].bits[1].wBits, 2);
    assert.equal(probeCount(m, 100), plan.length);
    assert.equal(probeCount(m, 20), 15);
  });

  it('extrapolates drops 4x smaller per bit above the measured level, 0 at maxBits, geometric in between', () => {
    const m = createBudgetModel(spec(), layers, table);
    const plan = probePlan(m);
    // Reference 90; layer 1 weight at 2 bits -> 80 (probe 1); everything else unmeasured.
    const drops = predictDrops(m, plan, [90, 80]);
    assert.equal(drops[1][0][1], 10); // 2 bits
    assert.equal(drops[1][0][7], 0); // 8 bits
    assert.ok(Math.abs(drops[1][0][4] - 10 / 4 ** 3) < 1e-12); // 5 bits: 3 bits above the measured 2
    // With a second measurement at 5 bits (probe 1 + 12 = layer 1 weight at 5 bits): geometric between.
    const p5 = plan.findIndex((p) => p.layer === 1 && p.kind === 'weight' && p.level === 5);
    const top1 = Array<number>(p5 + 1).fill(90);
    top1[1] = 80;
    top1[p5] = 89;
    const d2 = predictDrops(m, plan, top1);
    assert.ok(Math.abs(d2[1][0][2] - 10 * (1 / 10) ** (1 / 3)) < 1e-9); // 3 bits
    assert.ok(Math.abs(d2[1][0][6] - 1 / 16) < 1e-12); // 7 bits
    assert.equal(drops[1][0][0], 10); // 1 bit: below the lowest measured level keeps its drop
    // Unmeasured layers take the mean of the measured ones.
    assert.equal(drops[2][0][1], 10);
  });

  it('knapsack stays within budget and matches brute force on a small problem', () => {
    const m = createBudgetModel(spec({ minBits: 3, maxBits: 5, ratio: 0.35 }), layers, table);
    const rng = new Rng(3);
    const drops = layers.layers.map(() => [0, 1].map(() => Array.from({ length: 8 }, (_, b) => (b + 1 >= 5 ? 0 : rng.next() * (6 - b)))));
    const bits = knapsackBits(m, drops);
    assert.ok(withinBudget(m, policyCost(m, bits)));
    const loss = (bs: typeof bits): number => bs.reduce((s, b, i) => (isPinned(m, i) ? s : s + drops[i][0][b.wBits - 1] + drops[i][1][b.aBits! - 1]), 0);
    // Brute force over the 4 free layers x 9 (w, a) options.
    let best = Infinity;
    const opts: Array<[number, number]> = [];
    for (let w = 3; w <= 5; w++) for (let a = 3; a <= 5; a++) opts.push([w, a]);
    const cur = bits.map((b) => ({ ...b }));
    const rec = (i: number): void => {
      if (i === 5) {
        if (withinBudget(m, policyCost(m, cur))) best = Math.min(best, loss(cur));
        return;
      }
      for (const [w, a] of opts) {
        cur[i] = { ...cur[i], wBits: w, aBits: a };
        rec(i + 1);
      }
    };
    rec(1);
    // The DP rounds costs up to 1/4000 of the budget per layer, so it may lose a hair of optimality.
    assert.ok(loss(bits) <= best + 1e-3, `knapsack ${loss(bits)} vs brute force ${best}`);
  });
  it('knapsack resolves the cost bits can change even when most of the cost is fixed', () => {
    // The same problem with a large bits-independent cost added to every layer (BitFusion energy
    // on a depthwise MobileNet spends 98.6 % of its 8/8 energy at 2/2 too): the same answer.
    const m = createBudgetModel(spec({ minBits: 3, maxBits: 5, ratio: 0.35 }), layers, table);
    const fixed = 200 * m.fullCost;
    const shifted = { ...m, costs: m.costs.map((l) => l.map((row) => row.map((c) => c + fixed))) };
    const n = layers.layers.length;
    Object.assign(shifted, { fullCost: m.fullCost + n * fixed, budget: m.budget + n * fixed, minCost: m.minCost + n * fixed });
    const rng = new Rng(5);
    const drops = layers.layers.map(() => [0, 1].map(() => Array.from({ length: 8 }, (_, b) => (b + 1 >= 5 ? 0 : rng.next() * (6 - b)))));
    const loss = (bs: ReturnType<typeof knapsackBits>): number => bs.reduce((s, b, i) => (isPinned(m, i) ? s : s + drops[i][0][b.wBits - 1] + drops[i][1][b.aBits! - 1]), 0);
    const plain = knapsackBits(m, drops);
    const withFixed = knapsackBits(shifted, drops);
    assert.ok(withinBudget(shifted, policyCost(shifted, withFixed)));
    assert.ok(Math.abs(loss(withFixed) - loss(plain)) < 1e-3, `with a fixed cost ${loss(withFixed)}, without ${loss(plain)}`);
  });
});
