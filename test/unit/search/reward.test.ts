import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInputError } from '../../../shared/errors';
import { checkRewardFits, defaultReward, rewardOf, type RewardName } from '../../../shared/search/reward';
import { mergeShards } from '../../../shared/search/shards';
import type { EvaluationResult } from '../../../shared/search/results';
import { meanEstimate, proportionSe } from '../../../shared/data/metrics';
import { expectClose } from '../../helpers/expect-close';

const result = (o: Partial<EvaluationResult>): EvaluationResult => ({
  top1: 80,
  top1Se: 1,
  top5: null,
  mode: 'labels',
  samples: 100,
  seconds: 0,
  metric: 'top1',
  score: 80,
  scoreSe: 1,
  crossEntropy: { value: 0.5, se: 0.01 },
  kl: { value: 0.2, se: 0.01 },
  sqnrDb: { value: 20, se: 0.1 },
  cosine: { value: 0.99, se: 0.001 },
  ...o,
});

describe('rewards', () => {
  const fp32 = result({ top1: 90, crossEntropy: { value: 0.3, se: 0.01 }, kl: { value: 0, se: 0 }, sqnrDb: { value: 150, se: 0 }, cosine: { value: 1, se: 0 } });
  const table: Array<[RewardName, number]> = [
    ['top1', 0.1 * (80 - 90)], // HAQ
    ['ce', -10 * (0.5 - 0.3)],
    ['kl', -10 * 0.2],
    ['sqnr', 0.1 * 20],
    ['cosine', 100 * (0.99 - 1)],
    ['blend', 0.5 * 0.1 * (80 - 90) + 0.5 * -10 * (0.5 - 0.3)],
  ];
  for (const [name, want] of table) {
    it(`${name}: ${want.toFixed(3)}`, () => expectClose(rewardOf(name, result({}), fp32), want, { atol: 1e-12 }));
  }

  it('blend in fidelity mode (no labels) halves top-1 agreement and the KL divergence', () => {
    const fidelity = (o: Partial<EvaluationResult>) => result({ mode: 'fidelity', crossEntropy: null, ...o });
    expectClose(rewardOf('blend', fidelity({}), fidelity({ top1: 100, kl: { value: 0, se: 0 } })), 0.5 * 0.1 * (80 - 100) + 0.5 * -10 * 0.2, { atol: 1e-12 });
    assert.throws(() => rewardOf('blend', result({ crossEntropy: null }), fp32), /reward ce needs the cross-entropy/);
  });

  it('a reward whose signal is missing is a clear InvalidInputError', () => {
    assert.throws(() => rewardOf('ce', result({ crossEntropy: null }), fp32), (e: Error) => e instanceof InvalidInputError && /reward ce needs the cross-entropy against labels/.test(e.message));
    assert.throws(() => checkRewardFits('ce', { hasLabels: false, classifier: true }), /--reward ce needs labels/);
    assert.throws(() => checkRewardFits('kl', { hasLabels: true, classifier: false }), /--reward kl needs a classifier output/);
    assert.throws(() => checkRewardFits('top1', { hasLabels: false, classifier: false }), /--reward top1 needs a classifier output \[N, classes\] or labels/);
    checkRewardFits('sqnr', { hasLabels: false, classifier: false });
    checkRewardFits('top1', { hasLabels: true, classifier: false });
    assert.throws(() => checkRewardFits('blend', { hasLabels: false, classifier: false }), /--reward blend needs a classifier output \[N, classes\] or labels/);
    checkRewardFits('blend', { hasLabels: true, classifier: false });
    checkRewardFits('blend', { hasLabels: false, classifier: true });
  });

  it('defaults to the top-1/cross-entropy blend for a labelled classifier, KL without labels, else the metric', () => {
    assert.equal(defaultReward('top1', { hasLabels: true }), 'blend');
    assert.equal(defaultReward('top1', { hasLabels: false }), 'kl');
    for (const hasLabels of [true, false]) {
      assert.equal(defaultReward('sqnr', { hasLabels }), 'sqnr');
      assert.equal(defaultReward('cosine', { hasLabels }), 'cosine');
    }
  });
});

describe('mergeShards', () => {
  it('equals the evaluation of the whole split: sample-weighted means, pooled standard errors', () => {
    const ce = [0.1, 0.5, 0.2, 0.9, 0.3, 0.4, 1.2];
    const hits = [1, 0, 1, 1, 0, 1, 1];
    const part = (from: number, to: number): EvaluationResult => {
      const n = to - from;
      const top1 = (100 * hits.slice(from, to).reduce((a, b) => a + b, 0)) / n;
      return result({ samples: n, top1, top1Se: proportionSe(top1, n), score: top1, scoreSe: proportionSe(top1, n), crossEntropy: meanEstimate(ce.slice(from, to)), kl: null, sqnrDb: null, cosine: null });
    };
    const merged = mergeShards([part(0, 3), part(3, 7)]);
    const whole = part(0, 7);
    expectClose(merged.top1!, whole.top1!, { atol: 1e-12 });
    expectClose(merged.top1Se!, whole.top1Se!, { atol: 1e-12 });
    expectClose(merged.crossEntropy!.value, whole.crossEntropy!.value, { atol: 1e-12 });
    expectClose(merged.crossEntropy!.se, whole.crossEntropy!.se, { atol: 1e-12 });
    assert.equal(merged.kl, null);
    assert.equal(merged.samples, 7);
    assert.equal(merged.score, merged.top1);
  });

  it('SQNR: the mean noise-to-signal ratio of equal-power shards', () => {
    const a = result({ samples: 10, metric: 'sqnr', sqnrDb: { value: 10, se: 0.5 } });
    const b = result({ samples: 30, metric: 'sqnr', sqnrDb: { value: 20, se: 0.5 } });
    const m = mergeShards([a, b]);
    expectClose(m.sqnrDb!.value, -10 * Math.log10((10 * 0.1 + 30 * 0.01) / 40), { atol: 1e-12 });
    assert.equal(m.score, m.sqnrDb!.value);
  });
});
