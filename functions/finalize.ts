/**
 * Finalize: publishes a finished search to the results bucket under its own prefix,
 * policies/<model>/<target>/<constraint>/<searchId>/{policy.json, report.html,
 * model.quant.onnx}, then latest.json for (model, target, constraint). Another search's
 * objects are never written. Marks status.json succeeded and releases the lock.
 *
 * The search selected its policy by validation top-1, which is therefore optimistically
 * biased; when the data folder has a test split, the FP32 model, the policy and the uniform
 * references are also scored on it (same evaluator session) as held-out figures.
 */
import { HaqError } from '../shared/errors';
import { costPolicy } from '../shared/hardware/cost-table';
import type { CostTable } from '../shared/hardware/types';
import { resultKeys, searchKeys } from '../shared/keys';
import type { Split } from '../shared/data/dataset';
import type { LayerTable } from '../shared/onnx/types';
import type { QuantEvaluator } from '../shared/quant/evaluator';
import { exportQuantizedModel } from '../shared/quant/export';
import { policyLayers } from '../shared/quant/recovery';
import { Policy, type LayerBits } from '../shared/quant/policy';
import { renderReport, type ReportData } from '../shared/report/report';
import { createBudgetModel, policyCost, withinBudget } from '../shared/search/budget';
import { BestPolicy, EvaluationResult, SearchHistory } from '../shared/search/results';
import { getJson, putJson, type ObjectStore } from '../shared/store/object-store';
import type { SearchConfig } from '../shared/config';
import type { MetricName } from '../shared/data/metrics';
import { parse } from '../shared/validate';
import { FinalizeInput, type FinalizeOutput } from './lib/contracts';
import { releaseLock } from './lib/lock';
import { instrument, lambdaHandler, type HandlerDeps } from './lib/runtime';
import { EvaluatorCache, quantSettings, quantizationRecord, testSplitOf, readCalibration, readCostTable, readLayers, readSearchConfig } from './lib/search-context';
import { lockScope, writeStatus } from './lib/status';

const uniformBits = (layers: LayerTable, bits: number, activations: boolean): LayerBits[] =>
  layers.layers.map((l) => ({ name: l.name, wBits: bits, aBits: activations ? bits : null }));

/** The largest uniform bitwidth (all layers, no pinning) whose cost is within the budget, or null. */
export function bestUniformBits(config: SearchConfig, layers: LayerTable, costTable: CostTable): number | null {
  const budget = createBudgetModel({ ...config.constraint, minBits: 1, maxBits: 8, pinFirstLast: false }, layers, costTable);
  for (let b = 8; b >= 1; b--) {
    if (withinBudget(budget, policyCost(budget, uniformBits(layers, b, budget.activations)))) return b;
  }
  return null;
}

/**
 * Best top-1 per strategy among the policies already published for this model, target and
 * constraint (other searches, e.g. `haq search --strategy random` into the same folder),
 * with this search's own result. At most the 200 newest-listed policies are read.
 */
export async function strategyComparison(
  results: ObjectStore,
  prefix: string,
  searchId: string,
  own: { strategy: string; top1: number; costRatio: number },
): Promise<Array<{ strategy: string; top1: number; costRatio: number | null }>> {
  const best = new Map<string, { strategy: string; top1: number; costRatio: number | null }>([[own.strategy, { ...own }]]);
  const keys = (await results.list(prefix)).filter((k) => k.endsWith('/policy.json') && !k.includes(`/${searchId}/`)).slice(-200);
  for (const key of keys) {
    try {
      const m = (await getJson(results, key, Policy)).metrics ?? {};
      // The metric's score (older policies have only top1).
      const score = typeof m.score === 'number' ? m.score : m.top1;
      if (typeof m.strategy !== 'string' || typeof score !== 'number') continue;
      const prev = best.get(m.strategy);
      if (!prev || score > prev.top1) best.set(m.strategy, { strategy: m.strategy, top1: score, costRatio: typeof m.costRatio === 'number' ? m.costRatio : null });
    } catch {
      // an unreadable neighbour is not this search's problem
    }
  }
  return [...best.values()].sort((a, b) => a.strategy.localeCompare(b.strategy));
}

/** The metric's score on the held-out test split of the FP32 model, the selected policy and the uniform references. */
export interface HeldOutFigures {
  samples: number;
  accuracyMode: 'labels' | 'fidelity';
  fp32: EvaluationResult;
  best: EvaluationResult;
  uniform8: EvaluationResult;
  bestUniform: EvaluationResult | null;
}

/**
 * Scores the policies on the test split with the search's own evaluator (one session, the
 * policy switch is a feed change). The same Split object throughout, so fidelity mode
 * computes the FP32 reference predictions once.
 */
export async function evaluateHeldOut(
  evaluator: QuantEvaluator,
  test: Split,
  policies: { best: { layers: LayerBits[] }; uniform8: LayerBits[]; bestUniform: LayerBits[] | null },
  metric: MetricName | undefined,
): Promise<HeldOutFigures> {
  const fp32 = await evaluator.evaluateFp32(test, { metric });
  const best = await evaluator.evaluate(policies.best, test, { metric });
  const u8 = await evaluator.evaluate({ layers: policies.uniform8 }, test, { metric });
  const ub = policies.bestUniform === null ? null : policies.bestUniform === policies.uniform8 ? u8 : await evaluator.evaluate({ layers: policies.bestUniform }, test, { metric });
  return { samples: fp32.samples, accuracyMode: fp32.mode, fp32, best, uniform8: u8, bestUniform: ub };
}

export const makeHandler = (deps: HandlerDeps & { evaluators?: EvaluatorCache }) => {
  const evaluators = deps.evaluators ?? new EvaluatorCache();
  return instrument('finalize', deps, async (event: unknown): Promise<FinalizeOutput> => {
    const { searchId } = parse(FinalizeInput, event, 'Finalize input');
    const { work, models, results } = deps.stores;
    const config = await readSearchConfig(deps.stores, searchId);
    const [layers, costTable, baseline, history] = await Promise.all([
      readLayers(deps.stores, searchId),
      readCostTable(deps.stores, searchId),
      getJson(work, searchKeys.baseline(searchId), EvaluationResult),
      getJson(work, searchKeys.history(searchId), SearchHistory),
    ]);
    if (!(await work.exists(searchKeys.best(searchId)))) {
      throw new HaqError(`search ${searchId} evaluated ${history.episodes.length} policies and none was within the ${config.constraint.kind} budget ${config.constraint.ratio}`);
    }
    const best = await getJson(work, searchKeys.best(searchId), BestPolicy);
    const activations = config.constraint.kind !== 'size';
    const calibration = activations ? await readCalibration(deps.stores, searchId) : null;

    // Uniform references: 8/8, and the largest uniform bitwidth within the budget.
    const ctx = await evaluators.get(deps.stores, searchId);
    const u8Bits = uniformBits(layers, 8, activations);
    const u8Sim = costPolicy(costTable, { layers: u8Bits });
    const u8Eval = await ctx.evaluator.evaluate({ layers: u8Bits }, ctx.val, { metric: ctx.metric });
    const ub = bestUniformBits(config, layers, costTable);
    const ubBits = ub === null ? null : ub === 8 ? u8Bits : uniformBits(layers, ub, activations);
    const ubSim = ubBits ? costPolicy(costTable, { layers: ubBits }) : null;
    const ubEval = ubBits ? (ub === 8 ? u8Eval : await ctx.evaluator.evaluate({ layers: ubBits }, ctx.val, { metric: ctx.metric })) : null;

    // Held-out: the test split, when the data folder has one (not limited by evalSamples).
    const test = await testSplitOf(deps.stores, ctx);
    const held = test ? await evaluateHeldOut(ctx.evaluator, test, { best: best.policy, uniform8: u8Bits, bestUniform: ubBits }, ctx.metric) : null;

    const bestSim = costPolicy(costTable, best.policy);
    // The uniform references as policy.json metrics and the report show them.
    const uniform8 = {
      top1: u8Eval.top1,
      testTop1: held?.uniform8.top1 ?? null,
      score: u8Eval.score,
      testScore: held?.uniform8.score ?? null,
      latencyMs: u8Sim.latencyMs,
      energyUj: u8Sim.energyUj,
      sizeBytes: u8Sim.sizeBytes,
    };
    const bestUniform =
      ub === null
        ? null
        : {
            bits: ub,
            top1: ubEval!.top1,
            testTop1: held?.bestUniform?.top1 ?? null,
            score: ubEval!.score,
            testScore: held?.bestUniform?.score ?? null,
            latencyMs: ubSim!.latencyMs,
            energyUj: ubSim!.energyUj,
            sizeBytes: ubSim!.sizeBytes,
          };
    const target = costTable.target.name;
    const constraint = resultKeys.constraintLabel(config.constraint.kind, config.constraint.ratio);
    const policy: Policy = {
      ...best.policy,
      model: { name: config.model, hash: layers.modelHash },
      target,
      constraint: config.constraint,
      quantization: quantizationRecord(config, calibration),
      metrics: {
        ...(best.policy.metrics ?? {}),
        searchId,
        strategy: config.strategy,
        seed: config.seed,
        episode: best.episode,
        top1: best.top1,
        top1Fp32: best.top1Fp32,
        metric: baseline.metric,
        rewardName: config.reward,
        score: best.score,
        scoreFp32: best.scoreFp32,
        valSamples: baseline.samples,
        // Held-out test split (null: the data folder has no test-inputs.npy).
        testTop1: held?.best.top1 ?? null,
        testTop1Fp32: held?.fp32.top1 ?? null,
        testScore: held?.best.score ?? null,
        testScoreFp32: held?.fp32.score ?? null,
        testSamples: held?.samples ?? null,
        testAccuracyMode: held?.accuracyMode ?? null,
        reward: best.reward,
        accuracyMode: baseline.mode,
        latencyMs: bestSim.latencyMs,
        energyUj: bestSim.energyUj,
        sizeBytes: bestSim.sizeBytes,
        uniform8,
        bestUniform,
      },
    };

    const modelBytes = await models.get(config.modelKey);
    const recovered = ctx.recovery ? await policyLayers(ctx.recovery, policy.layers) : undefined;
    const exported = exportQuantizedModel(modelBytes, layers, policy, calibration, { ...quantSettings(config), recovered });

    const report: ReportData = {
      searchId,
      model: config.model,
      target,
      constraint: config.constraint,
      strategy: config.strategy,
      seed: config.seed,
      metric: baseline.metric,
      baselineTop1: baseline.score,
      accuracyMode: baseline.mode,
      layers: policy.layers.map((l, i) => ({
        name: l.name,
        wBits: l.wBits,
        aBits: l.aBits,
        latencyMs: bestSim.layers[i].latencyMs,
        latency8Ms: u8Sim.layers[i].latencyMs,
        energyUj: bestSim.layers[i].energyUj,
        energy8Uj: u8Sim.layers[i].energyUj,
        sizeBytes: bestSim.layers[i].sizeBytes,
        size8Bytes: u8Sim.layers[i].sizeBytes,
      })),
      best: {
        top1: best.score,
        testTop1: held?.best.score ?? null,
        reward: best.reward,
        episode: best.episode,
        latencyMs: bestSim.latencyMs,
        energyUj: bestSim.energyUj,
        sizeBytes: bestSim.sizeBytes,
      },
      uniform8: { ...uniform8, top1: uniform8.score, testTop1: uniform8.testScore },
      bestUniform: bestUniform ? { ...bestUniform, top1: bestUniform.score, testTop1: bestUniform.testScore } : null,
      validationSamples: baseline.samples,
      heldOut: held ? { samples: held.samples, accuracyMode: held.accuracyMode, baselineTop1: held.fp32.score } : null,
      history: history.episodes.filter((e) => !e.probe).map((e) => ({ episode: e.episode, reward: e.reward, top1: e.score, costRatio: e.costRatio })),
      float: { ops: layers.skipped.map(({ name, op, macs, reason }) => ({ name, op, macs, reason })), quantizedMacs: layers.totals.macs },
    };
    report.strategies = await strategyComparison(results, resultKeys.prefix(config.model, target, constraint), searchId, {
      strategy: config.strategy,
      top1: best.score,
      costRatio: best.costRatio,
    });
    const html = await renderReport(report);

    const keys = {
      policy: resultKeys.policy(config.model, target, constraint, searchId),
      report: resultKeys.report(config.model, target, constraint, searchId),
      quantModel: resultKeys.quantModel(config.model, target, constraint, searchId),
      latest: resultKeys.latest(config.model, target, constraint),
    };
    await results.put(keys.quantModel, exported.bytes, { contentType: 'application/octet-stream' });
    await results.put(keys.report, html, { contentType: 'text/html; charset=utf-8' });
    await putJson(results, keys.policy, policy);
    // latest.json last: it only ever points at a complete set of objects.
    await putJson(results, keys.latest, {
      searchId,
      policy: keys.policy,
      report: keys.report,
      quantModel: keys.quantModel,
      top1: best.top1,
      top1Fp32: best.top1Fp32,
      testTop1: held?.best.top1 ?? null,
      metric: baseline.metric,
      score: best.score,
      testScore: held?.best.score ?? null,
      reward: best.reward,
      finishedAt: deps.now().toISOString(),
    });
    await writeStatus(work, searchId, { state: 'succeeded', bestReward: best.reward }, deps.now());
    await releaseLock(work, lockScope(config), searchId);
    return { searchId, model: config.model, target, constraint, keys, top1: best.top1, top1Fp32: best.top1Fp32, metric: baseline.metric, score: best.score, reward: best.reward };
  });
};

export const handler = lambdaHandler('finalize', makeHandler);
