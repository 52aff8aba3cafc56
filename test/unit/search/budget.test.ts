import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BudgetInfeasibleError, InvalidInputError } from '../../../shared/errors';
import type { LayerBits } from '../../../shared/quant/policy';
import { createBudgetModel, isPinned, minimalBits, policyCost, repairBits, withinBudget, type BudgetSpec } from '../../../shared/search/budget';
import { tinyCostTable, tinyLayers } from './fixtures';

const layers = tinyLayers();
const table = tinyCostTable(layers);
const spec = (over: Partial<BudgetSpec> = {}): BudgetSpec => ({ kind: 'latency', ratio: 0.5, minBits: 2, maxBits: 8, pinFirstLast: true, ...over });
const uniform = (w: number, a: number | null): LayerBits[] => layers.layers.map((l) => ({ name: l.name, wBits: w, aBits: a }));

describe('budget', () => {
  it('sums per-layer costs from the grids [wBits-1][aBits-1]', () => {
    const m = createBudgetModel(spec(), layers, table);
    const expected = table.layers.reduce((s, l) => s + l.latencyMs[3][5], 0);
    assert.equal(policyCost(m, uniform(4, 6)), expected);
    assert.equal(m.fullCost, table.layers.reduce((s, l) => s + l.latencyMs[7][7], 0));
    assert.equal(m.budget, 0.5 * m.fullCost);
    assert.equal(m.unit, 'ms');
  });

  it('uses params x wBits / 8 bytes in size mode, with float activations', () => {
    const m = createBudgetModel(spec({ kind: 'size', ratio: 0.5 }), layers, null);
    assert.equal(m.activations, false);
    assert.equal(m.fullCost, layers.totals.params);
    assert.equal(policyCost(m, uniform(4, null)), layers.totals.params / 2);
    const repaired = repairBits(m, uniform(8, null));
    assert.ok(repaired.every((b) => b.aBits === null));
    assert.ok(withinBudget(m, policyCost(m, repaired)));
  });

  it('repairs from the last layer backwards, activation before weight, and keeps first/last at 8', () => {
    const m = createBudgetModel(spec({ ratio: 0.9 }), layers, table);
    const out = repairBits(m, uniform(8, 8));
    assert.deepEqual(out[0], { name: 'conv1', wBits: 8, aBits: 8 });
    assert.deepEqual(out[5], { name: 'fc', wBits: 8, aBits: 8 });
    // The walk starts at conv4 (last free layer), lowering its activation first.
    assert.ok(out[4].aBits! <= 7, JSON.stringify(out));
    assert.ok(out[4].aBits! <= out[4].wBits);
    assert.ok(withinBudget(m, policyCost(m, out)));
    // One step fewer would not have met the budget: the repair stops as soon as it fits.
    assert.ok(!withinBudget(m, policyCost(m, uniform(8, 8))));
  });

  it('leaves an in-budget policy alone, apart from the pins', () => {
    const m = createBudgetModel(spec({ ratio: 0.5 }), layers, table);
    const bits = uniform(3, 3);
    const out = repairBits(m, bits);
    assert.deepEqual(out.slice(1, 5), bits.slice(1, 5));
    assert.deepEqual([out[0].wBits, out[5].aBits], [8, 8]);
  });

  it('pins only when asked', () => {
    const m = createBudgetModel(spec({ pinFirstLast: false, ratio: 0.3 }), layers, table);
    assert.equal(isPinned(m, 0), false);
    assert.ok(minimalBits(m).every((b) => b.wBits === 2 && b.aBits === 2));
    const out = repairBits(m, uniform(8, 8));
    assert.ok(out[5].wBits < 8 || out[5].aBits! < 8);
  });

  it('throws BudgetInfeasibleError naming the smallest feasible ratio', () => {
    const m = createBudgetModel(spec({ ratio: 1 }), layers, table);
    const minRatio = m.minCost / m.fullCost;
    const err = (() => {
      try {
        createBudgetModel(spec({ ratio: minRatio * 0.9 }), layers, table);
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(err instanceof BudgetInfeasibleError);
    assert.equal(err.name, 'BudgetInfeasibleError');
    assert.ok(err.message.includes(minRatio.toFixed(4)), err.message);
    assert.ok(err.message.includes('tiny-serial'), err.message);
    // Pinned (the default), the message names the way below the pinned floor.
    assert.match(err.message, /\(the free layers at 2 bits, the first and last pinned at 8\/8\); .*--no-pin-first-last/);
    // Unpinned the floor is lower, every layer at minBits, and there is no such hint.
    const free = createBudgetModel(spec({ ratio: 1, pinFirstLast: false }), layers, table);
    assert.ok(free.minCost < m.minCost);
    assert.throws(
      () => createBudgetModel(spec({ ratio: (free.minCost / free.fullCost) * 0.9, pinFirstLast: false }), layers, table),
      (e: Error) => e instanceof BudgetInfeasibleError && /\(all layers at 2 bits\); use a ratio of at least [0-9.]+$/.test(e.message),
    );
    // Just above the smallest ratio is feasible and the repair reaches it.
    const tight = createBudgetModel(spec({ ratio: minRatio * 1.0001 }), layers, table);
    assert.ok(withinBudget(tight, policyCost(tight, repairBits(tight, uniform(8, 8)))));
  });

  it('rejects a cost table for another model, a missing energy model and a bad bit range', () => {
    const other = { ...table, layers: table.layers.slice(1) };
    assert.throws(() => createBudgetModel(spec(), layers, other), (e: Error) => e instanceof InvalidInputError && /rebuild the cost table/.test(e.message));
    const noEnergy = { ...table, layers: table.layers.map((l) => ({ ...l, energyUj: null })) };
    assert.throws(() => createBudgetModel(spec({ kind: 'energy' }), layers, noEnergy), /has no energy model/);
    assert.throws(() => createBudgetModel(spec({ minBits: 6, maxBits: 4 }), layers, table), /bit range 6\.\.4/);
    assert.throws(() => createBudgetModel(spec({ kind: 'latency' }), layers, null), /needs the target's cost table/);
  });

  it('repair meets a feasible budget or the budget throws (property)', () => {
    const bitsArb = fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 })), { minLength: 6, maxLength: 6 });
    fc.assert(
      fc.property(
        bitsArb,
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.constantFrom<'latency' | 'energy' | 'size'>('latency', 'energy', 'size'),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        (pairs, ratio, kind, minBits, pin) => {
          let m;
          try {
            m = createBudgetModel(spec({ kind, ratio, minBits, pinFirstLast: pin }), layers, table);
          } catch (e) {
            return e instanceof BudgetInfeasibleError && (e as BudgetInfeasibleError).minRatio > ratio;
          }
          const bits = pairs.map(([w, a], i) => ({ name: layers.layers[i].name, wBits: w, aBits: kind === 'size' ? null : a }));
          const out = repairBits(m, bits);
          const okBits = out.every((b, i) => (isPinned(m, i) ? b.wBits === 8 : b.wBits >= minBits && b.wBits <= 8));
          // Never raises bits above the clamped input.
          const noRaise = out.every((b, i) => isPinned(m, i) || b.wBits <= Math.max(minBits, bits[i].wBits));
          return okBits && noRaise && withinBudget(m, policyCost(m, out));
        },
      ),
      { numRuns: 300 },
    );
  });
});
