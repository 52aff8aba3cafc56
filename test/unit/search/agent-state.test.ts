import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SearchConfig } from '../../../shared/config';
import { isPinned, layerCost } from '../../../shared/search/budget';
import { createSearchContext } from '../../../shared/search/context';
import { STATE_SIZE } from '../../../shared/search/embedding';
import { actionToBits } from '../../../shared/search/bits';
import { agentStateSize, rollout, rolloutStates } from '../../../shared/search/strategies';
import { createDdpg } from '../../../shared/agent/ddpg';
import { Rng } from '../../../shared/rng';
import { tinyCostTable, tinyLayers } from './fixtures';

const layers = tinyLayers();
const table = tinyCostTable(layers);
const context = (budgetState: boolean, pinFirstLast = true) =>
  createSearchContext(
    's',
    SearchConfig.parse({ model: 'm', modelKey: 'k', dataPrefix: 'p', strategy: 'ddpg', constraint: { kind: 'latency', ratio: 0.4 }, pinFirstLast, ddpg: { hidden: [8], budgetState } }),
    layers,
    table,
  );

describe('agent state', () => {
  it("is HAQ's 10 features by default", () => {
    const ctx = context(false);
    assert.equal(agentStateSize(ctx), STATE_SIZE);
    const states = rolloutStates(ctx, ctx.embedding.steps.map(() => 0.5));
    assert.ok(states.every((s) => s.length === STATE_SIZE));
  });

  for (const pin of [true, false]) {
    it(`with budgetState adds the decided layers' cost and the rest's at minBits over the budget (pinFirstLast ${pin})`, () => {
      const ctx = context(true, pin);
      const { budget } = ctx;
      assert.equal(agentStateSize(ctx), STATE_SIZE + 2);
      const actions = ctx.embedding.steps.map((_, t) => (t * 0.37) % 1);
      const states = rolloutStates(ctx, actions);
      const bits = actions.map((a) => actionToBits(a, ctx.config));
      ctx.embedding.steps.forEach((step, t) => {
        let spent = 0;
        let rest = 0;
        for (let i = 0; i < layers.layers.length; i++) {
          const [w, a] = isPinned(budget, i) ? [8, 8] : i < step.layer ? [bits[2 * i], bits[2 * i + 1]] : [budget.minBits, budget.minBits];
          if (i < step.layer) spent += layerCost(budget, i, w, a);
          else rest += layerCost(budget, i, w, a);
        }
        assert.ok(Math.abs(states[t][STATE_SIZE] - spent / budget.budget) < 1e-6, `step ${t} spent`);
        assert.ok(Math.abs(states[t][STATE_SIZE + 1] - rest / budget.budget) < 1e-6, `step ${t} rest`);
      });
      assert.equal(states[0][STATE_SIZE], 0);
    });
  }

  it('the rollout acts on the same states the replay stores', () => {
    const ctx = context(true);
    const agent = createDdpg(agentStateSize(ctx), ctx.hyper, new Rng(1));
    const { actions } = rollout(ctx, agent, ctx.config.warmupEpisodes + 1);
    const states = rolloutStates(ctx, actions);
    assert.equal(states.length, ctx.embedding.steps.length);
    assert.ok(states.every((s) => s.length === STATE_SIZE + 2 && s.every(Number.isFinite)));
  });
});
