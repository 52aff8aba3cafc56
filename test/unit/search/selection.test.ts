/**
 * Honest selection and baselines (shared/search/selection.ts) over the synthetic search of
 * fixtures.ts: the candidates are the top-k distinct policies by validation reward, the
 * uniform references are the most accurate uniform policies in budget (not the widest), and
 * the final choice is made on the selection split.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CARVE_FRACTION, carveIndices, carveSelection, takeSamples } from '../../../shared/data/selection-split';
import { InvalidDataError } from '../../../shared/errors';
import { searchKeys } from '../../../shared/keys';
import { splitFromTensor } from '../../../shared/quant/evaluator';
import type { LayerBits } from '../../../shared/quant/policy';
import { isPinned, policyCost, withinBudget } from '../../../shared/search/budget';
import { createSearchContext } from '../../../shared/search/context';
import { runSearchLoop } from '../../../shared/search/loop';
import { SearchHistory, type EvaluationResult } from '../../../shared/search/results';
import { planSelectionStep } from '../../../shared/search/rounds';
import { chooseFinal, planSelection, uniformFrontier, withinNoise, type SelectionPlan } from '../../../shared/search/selection';
import { FsStore } from '../../../shared/store/fs-store';
import { getJson } from '../../../shared/store/object-store';
import { tempDir } from '../../helpers/tmp';
import { evaluation, FP32_TOP1, prepareSearch, simulate, syntheticTop1 } from './fixtures';

const tmp = tempDir('haq-selection');
after(() => tmp.cleanup());

async function searched(strategy: 'random' | 'uniform', ratio = 0.45) {
  const store = new FsStore(`${tmp.dir}/${strategy}-${ratio}`);
  const { layers, table, config } = await prepareSearch(store, 's', { strategy, constraint: { kind: 'latency', ratio }, episodes: 20, selectTopK: 4 });
  await runSearchLoop(store, 's', { simulate: (p) => simulate(table, layers, p), evaluate: (p) => evaluation(syntheticTop1(p.layers)) });
  const ctx = createSearchContext('s', config, layers, table);
  const history = (await getJson(store, searchKeys.history('s'), SearchHistory)).episodes;
  return { store, ctx, history };
}

/** Scores for a plan: validation = the synthetic top-1, selection and test = it plus a per-candidate offset. */
function scoresFor(plan: SelectionPlan, offset: (i: number) => { select: number; test: number }): Array<{ val: EvaluationResult; select: EvaluationResult; test: EvaluationResult }> {
  return plan.candidates.map((c, i) => {
    const top1 = c.bits ? syntheticTop1(c.bits as LayerBits[]) : FP32_TOP1;
    const o = c.kind === 'fp32' ? { select: 0, test: 0 } : offset(i);
    return { val: evaluation(top1), select: evaluation(Math.min(100, top1 + o.select)), test: evaluation(Math.min(100, top1 + o.test)) };
  });
}

describe('planSelection', () => {
  it('takes the top-k distinct in-budget policies by validation reward, then the uniform references, 8/8 and FP32', async () => {
    const { ctx, history } = await searched('random');
    const plan = planSelection(ctx, history, 4);
    const search = plan.candidates.filter((c) => c.kind === 'search');
    assert.equal(search.length, 4);
    const rewards = search.map((c) => c.reward!);
    assert.deepEqual(rewards, [...rewards].sort((a, b) => b - a), 'best reward first');
    const top = Math.max(...history.filter((e) => !e.probe).map((e) => e.reward));
    assert.equal(rewards[0], top);
    assert.equal(new Set(search.map((c) => JSON.stringify(c.bits))).size, 4, 'distinct policies');
    // Every other policy of the search has a reward no higher than the k-th candidate's, or repeats a candidate.
    const keys = new Set(search.map((c) => c.bits!.map((b) => `${b.wBits}/${b.aBits}`).join(',')));
    for (const e of history) if (!keys.has(e.bits.map(([w, a]) => `${w}/${a}`).join(','))) assert.ok(e.reward <= rewards[3]);
    assert.deepEqual(
      plan.candidates.slice(4).map((c) => c.kind).filter((k, i, a) => a.indexOf(k) === i),
      ['uniform-pinned', 'uniform-unpinned', 'uniform8', 'fp32'],
    );
    assert.ok(search.every((c) => !c.evaluateVal) && plan.candidates.slice(4).every((c) => c.evaluateVal));
  });

  it('uniform references: every frontier pair fits, and no wider activation fits at the same weight width', async () => {
    const { ctx } = await searched('random');
    const b = ctx.budget;
    for (const pinned of [true, false]) {
      const frontier = uniformFrontier(b, pinned);
      assert.ok(frontier.length > 1, 'several uniform policies fit');
      for (const bits of frontier) {
        assert.ok(withinBudget(b, policyCost(b, bits)));
        const free = bits.filter((_, i) => !(pinned && isPinned(b, i)));
        assert.ok(free.every((x) => x.wBits === free[0].wBits && x.aBits === free[0].aBits), 'uniform');
        assert.ok(bits.every((x, i) => !(pinned && isPinned(b, i)) || (x.wBits === 8 && x.aBits === 8)), 'pinned as the search pins');
        const a = free[0].aBits!;
        if (a < b.maxBits) {
          const wider = bits.map((x, i) => (pinned && isPinned(b, i) ? x : { ...x, aBits: a + 1 }));
          assert.ok(!withinBudget(b, policyCost(b, wider)), `(${free[0].wBits}, ${a + 1}) would fit too`);
        }
      }
    }
  });

  it('planSelectionStep writes selection/plan.json and a retry writes the same bytes', async () => {
    const { store } = await searched('random', 0.5);
    await planSelectionStep(store, 's');
    const first = await store.get(searchKeys.selectionPlan('s'));
    await planSelectionStep(store, 's');
    assert.deepEqual(await store.get(searchKeys.selectionPlan('s')), first);
  });
});

describe('chooseFinal', () => {
  it('picks the best candidate on the selection split, not the best validation reward', async () => {
    const { ctx, history } = await searched('random');
    const plan = planSelection(ctx, history, 4);
    // Candidate 2 (third by validation reward) is the best on selection.
    const choice = chooseFinal(plan, scoresFor(plan, (i) => ({ select: i === 2 ? 5 : 0, test: 0 })), 'top1');
    assert.equal(choice.best.index, 2);
    assert.equal(choice.searchCandidates.length, 4);
    assert.equal(choice.fp32.candidate.kind, 'fp32');
  });

  it('the uniform reference is the most accurate in budget on selection, not the widest; the gain is against the better one on test', async () => {
    const { ctx, history } = await searched('random');
    const plan = planSelection(ctx, history, 4);
    const pinned = plan.candidates.map((c, i) => [c, i] as const).filter(([c]) => c.kind === 'uniform-pinned');
    // The widest pinned uniform comes first (w = maxBits down); make a narrower one the most accurate.
    const narrow = pinned[pinned.length - 1][1];
    // (offsets past 100 % cap at 100: the narrow one is then the best possible)
    const choice = chooseFinal(plan, scoresFor(plan, (i) => (i === narrow ? { select: 200, test: 200 } : { select: 0, test: 0 })), 'top1');
    assert.equal(choice.uniformPinned!.index, narrow);
    assert.notEqual(narrow, pinned[0][1]);
    assert.equal(choice.reference, choice.uniformPinned, 'the better reference on test');
    const g = choice.gain!;
    assert.equal(g.split, 'test');
    assert.equal(g.value, choice.best.test!.score - choice.uniformPinned!.test!.score);
    assert.equal(g.se, Math.hypot(choice.best.test!.scoreSe, choice.uniformPinned!.test!.scoreSe));
    // And the unpinned one, when it tests better.
    const unpinned = plan.candidates.findIndex((c) => c.kind === 'uniform-unpinned');
    const other = chooseFinal(plan, scoresFor(plan, (i) => (i === unpinned ? { select: 200, test: 200 } : i === narrow ? { select: 200, test: 0 } : { select: 0, test: 0 })), 'top1');
    assert.equal(other.reference, other.uniformUnpinned);
  });

  it('with reward ce the policy is chosen by cross-entropy on selection, the uniform references still by accuracy', async () => {
    const { ctx, history } = await searched('random');
    const plan = planSelection(ctx, history, 4);
    const pinned = plan.candidates.map((c, i) => [c, i] as const).filter(([c]) => c.kind === 'uniform-pinned');
    const [accurate, lowLoss] = [pinned[pinned.length - 1][1], pinned[0][1]];
    // Cross-entropy disagrees with top-1: search candidate 3 and uniform `lowLoss` have the lowest loss, candidate 1 and uniform `accurate` the best top-1.
    const withCe = (e: EvaluationResult, ce: number): EvaluationResult => ({ ...e, crossEntropy: { value: ce, se: 0.01 } });
    const results = scoresFor(plan, (i) => (i === 1 || i === accurate ? { select: 200, test: 0 } : { select: 0, test: 0 })).map((r, i) => {
      const ce = i === 3 || i === lowLoss ? 0.2 : 0.5;
      return { val: withCe(r.val, ce), select: withCe(r.select, ce), test: withCe(r.test, ce) };
    });
    const choice = chooseFinal(plan, results, 'ce');
    assert.equal(choice.best.index, 3, 'the reward (cross-entropy) picks the policy');
    assert.equal(choice.uniformPinned!.index, accurate, 'the reference is the most accurate uniform policy');
    assert.equal(chooseFinal(plan, results, 'top1').best.index, 1);
  });

  it('a difference below twice its standard error is within noise', () => {
    assert.equal(withinNoise({ value: 90, se: 0.5 }, { value: 89, se: 0.5 }), true); // 1 < 2 * 0.707
    assert.equal(withinNoise({ value: 90, se: 0.5 }, { value: 88, se: 0.5 }), false); // 2 > 1.414
  });
});

describe('the selection split carved out of val', () => {
  it('is a seeded third, disjoint from the rest, each part in file order, the same for every call', () => {
    const { reward, select } = carveIndices(300);
    assert.equal(select.length, Math.round(300 * CARVE_FRACTION));
    assert.equal(reward.length + select.length, 300);
    assert.deepEqual([...reward, ...select].sort((a, b) => a - b), [...Array(300).keys()]);
    assert.ok(reward.every((v, i) => i === 0 || v > reward[i - 1]) && select.every((v, i) => i === 0 || v > select[i - 1]));
    assert.deepEqual(carveIndices(300), { reward, select });
    assert.ok(select.some((i) => i < 100) && select.some((i) => i >= 200), 'spread over the file, not a block');
    assert.throws(() => carveIndices(1), (e: Error) => e instanceof InvalidDataError && /add select-inputs\.npy/.test(e.message));
  });

  it('moves whole samples with their labels', () => {
    const n = 9;
    const inputs = { data: Float32Array.from({ length: n * 2 }, (_, i) => Math.floor(i / 2)), dims: [n, 2] };
    const val = splitFromTensor(inputs, Int32Array.from({ length: n }, (_, i) => 100 + i));
    const { reward, select } = carveSelection(val);
    for (const part of [reward, select]) {
      for (let k = 0; k < part.samples; k++) {
        const sample = part.inputs.data[2 * k] as number;
        assert.equal(part.inputs.data[2 * k + 1], sample);
        assert.equal(part.labels![k], 100 + sample);
      }
    }
    assert.equal(select.name, 'select');
    assert.equal(takeSamples(val, [4]).labels![0], 104);
  });
});
