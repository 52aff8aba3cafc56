/**
 * Finalize: publishes a finished search to the results bucket under its own prefix,
 * policies/<model>/<target>/<constraint>/<searchId>/{policy.json, report.html,
 * model.quant.onnx}, then latest.json for (model, target, constraint). Another search's
 * objects are never written. Marks status.json succeeded and releases the lock.
 *
 * The final choice was evaluated before (Act's `select` mode planned the candidates, the
 * SelectCandidates Map scored each on the selection and test splits): Finalize reads those
 * evaluations, picks the policy and the uniform references on the selection split
 * (shared/search/selection.ts), and reports every figure per split with its standard error.
 */
import type { Estimate } from '../shared/data/metrics';
import { costPolicy } from '../shared/hardware/cost-table';
import { resultKeys, searchKeys } from '../shared/keys';
import { exportQuantizedModel } from '../shared/quant/export';
import { policyLayers } from '../shared/quant/recovery';
import { Policy } from '../shared/quant/policy';
import { renderReport, type ReportData, type ReportRow, type SplitScores } from '../shared/report/report';
import { createSearchContext } from '../shared/search/context';
import { loadEvaluation } from '../shared/search/rounds';
import { EvaluationResult, RoundPolicies, SearchHistory } from '../shared/search/results';
import { configuredReward } from '../shared/search/reward';
import { CandidateResult, chooseFinal, SelectionPlan, type ScoredCandidate } from '../shared/search/selection';
import { getJson, putJson, type ObjectStore } from '../shared/store/object-store';
import { parse } from '../shared/validate';
import { FinalizeInput, type FinalizeOutput } from './lib/contracts';
import { releaseLock } from './lib/lock';
import { instrument, lambdaHandler, type HandlerDeps } from './lib/runtime';
import { quantSettings, quantizationRecord, readCalibration, readCostTable, readLayers, readSearchConfig, searchRecovery } from './lib/search-context';
import { CorruptObjectError } from '../shared/errors';
import { lockScope, writeStatus } from './lib/status';

/**
 * Best score per strategy among the policies already published for this model, target and
 * constraint (other searches, e.g. `haq search --strategy random` into the same folder),
 * with this search's own result. At most the 200 newest-listed policies are read.
 */
export async function strategyComparison(
  results: ObjectStore,
  prefix: string,
  searchId: string,
  own: { strategy: string; score: number; costRatio: number },
): Promise<Array<{ strategy: string; score: number; costRatio: number | null }>> {
  const best = new Map<string, { strategy: string; score: number; costRatio: number | null }>([[own.strategy, { ...own }]]);
  const keys = (await results.list(prefix)).filter((k) => k.endsWith('/policy.json') && !k.includes(`/${searchId}/`)).slice(-200);
  for (const key of keys) {
    try {
      const m = (await getJson(results, key, Policy)).metrics ?? {};
      // The metric's validation score (older policies have only top1).
      const score = typeof m.score === 'number' ? m.score : m.top1;
      if (typeof m.strategy !== 'string' || typeof score !== 'number') continue;
      const prev = best.get(m.strategy);
      if (!prev || score > prev.score) best.set(m.strategy, { strategy: m.strategy, score, costRatio: typeof m.costRatio === 'number' ? m.costRatio : null });
    } catch {
      // an unreadable neighbour is not this search's problem
    }
  }
  return [...best.values()].sort((a, b) => a.strategy.localeCompare(b.strategy));
}

const estimate = (e: EvaluationResult | null): Estimate | null => (e ? { value: e.score, se: e.scoreSe } : null);
const scoresOf = (c: ScoredCandidate): SplitScores => ({ val: estimate(c.val), select: estimate(c.select), test: estimate(c.test) });
/** An evaluation as policy.json records it (no timing: the same search gives the same bytes). */
const figures = ({ seconds: _seconds, ...e }: EvaluationResult) => e;

export const makeHandler = (deps: HandlerDeps) =>
  instrument('finalize', deps, async (event: unknown): Promise<FinalizeOutput> => {
    const { searchId } = parse(FinalizeInput, event, 'Finalize input');
    const { work, models, results } = deps.stores;
    const config = await readSearchConfig(deps.stores, searchId);
    const [layers, costTable, history, plan] = await Promise.all([
      readLayers(deps.stores, searchId),
      readCostTable(deps.stores, searchId),
      getJson(work, searchKeys.history(searchId), SearchHistory),
      getJson(work, searchKeys.selectionPlan(searchId), SelectionPlan),
    ]);
    const ctx = createSearchContext(searchId, config, layers, costTable);
    const activations = config.constraint.kind !== 'size';
    const calibration = activations ? await readCalibration(deps.stores, searchId) : null;

    // The candidates' evaluations; a search candidate's validation one is its round's.
    const evaluated = [];
    for (let i = 0; i < plan.candidates.length; i++) {
      const c = plan.candidates[i];
      const r = await getJson(work, searchKeys.selectionResult(searchId, i), CandidateResult);
      const val = r.val ?? (c.round !== null && c.index !== null ? await loadEvaluation(work, ctx, c.round, c.index) : null);
      if (!val) throw new CorruptObjectError(`selection candidate ${i} of ${searchId} has no validation evaluation; re-run the search`);
      evaluated.push({ val, select: r.select, test: r.test, selectSource: r.selectSource });
    }
    const choice = chooseFinal(plan, evaluated, configuredReward(config.reward));
    const best = choice.best;
    const round = await getJson(work, searchKeys.policies(searchId, best.candidate.round!), RoundPolicies);
    const chosen = round.policies[best.candidate.index!];

    const selectSource = evaluated[0].selectSource;
    const cost = (c: ScoredCandidate) => costPolicy(costTable, { layers: c.candidate.bits! });
    const pinned = (c: ScoredCandidate) => c.candidate.kind === 'uniform-pinned' && config.pinFirstLast;
    // A uniform policy's width: that of its free layers (a pinned model of two layers has none: 8/8).
    const width = (c: ScoredCandidate) => c.candidate.bits![pinned(c) && c.candidate.bits!.length > 2 ? 1 : 0];
    const bitsLabel = (c: ScoredCandidate) => `${width(c).wBits}/${width(c).aBits ?? 'float'}`;
    const reference = (c: ScoredCandidate | null) => {
      if (!c) return null;
      const sim = cost(c);
      return {
        wBits: width(c).wBits,
        aBits: width(c).aBits,
        pinned: pinned(c),
        costRatio: c.candidate.costRatio,
        latencyMs: sim.latencyMs,
        energyUj: sim.energyUj,
        sizeBytes: sim.sizeBytes,
        val: figures(c.val),
        select: figures(c.select),
        test: c.test ? figures(c.test) : null,
      };
    };
    const bestSim = costPolicy(costTable, chosen);
    const u8Sim = cost(choice.uniform8);
    const fp32 = choice.fp32;
    const refName = choice.reference === null ? null : choice.reference === choice.uniformPinned ? 'uniformPinned' : 'uniformUnpinned';
    const target = costTable.target.name;
    const constraint = resultKeys.constraintLabel(config.constraint.kind, config.constraint.ratio);
    const metric = best.val.metric;
    const policy: Policy = {
      ...chosen,
      model: { name: config.model, hash: layers.modelHash },
      target,
      constraint: config.constraint,
      quantization: quantizationRecord(config, calibration),
      metrics: {
        ...(chosen.metrics ?? {}),
        searchId,
        strategy: config.strategy,
        seed: config.seed,
        episode: best.candidate.episode,
        metric,
        rewardName: configuredReward(config.reward),
        // The validation reward the search gave this policy.
        reward: best.candidate.reward,
        // Validation (the reward's split), selection (the final choice) and test (held out).
        top1: best.val.top1,
        top1Fp32: fp32.val.top1,
        score: best.val.score,
        scoreSe: best.val.scoreSe,
        scoreFp32: fp32.val.score,
        valSamples: best.val.samples,
        accuracyMode: best.val.mode,
        selectTop1: best.select.top1,
        selectScore: best.select.score,
        selectScoreSe: best.select.scoreSe,
        selectScoreFp32: fp32.select.score,
        selectSamples: best.select.samples,
        selectSource,
        testTop1: best.test?.top1 ?? null,
        testTop1Fp32: fp32.test?.top1 ?? null,
        testScore: best.test?.score ?? null,
        testScoreSe: best.test?.scoreSe ?? null,
        testScoreFp32: fp32.test?.score ?? null,
        testSamples: best.test?.samples ?? null,
        testAccuracyMode: best.test?.mode ?? null,
        // Every signal of the policy and of FP32 per split, with standard errors.
        evaluations: {
          val: figures(best.val),
          select: figures(best.select),
          test: best.test ? figures(best.test) : null,
          fp32: { val: figures(fp32.val), select: figures(fp32.select), test: fp32.test ? figures(fp32.test) : null },
        },
        latencyMs: bestSim.latencyMs,
        energyUj: bestSim.energyUj,
        sizeBytes: bestSim.sizeBytes,
        uniform8: reference(choice.uniform8),
        uniformPinned: reference(choice.uniformPinned),
        uniformUnpinned: reference(choice.uniformUnpinned),
        reference: refName,
        gain: choice.gain,
        selection: {
          topK: plan.topK,
          candidates: choice.searchCandidates.map((c) => ({
            episode: c.candidate.episode,
            reward: c.candidate.reward,
            costRatio: c.candidate.costRatio,
            val: estimate(c.val),
            select: estimate(c.select),
            test: estimate(c.test),
            chosen: c === best,
          })),
        },
      },
    };

    const modelBytes = await models.get(config.modelKey);
    const recovery = searchRecovery(deps.stores, config, layers, calibration);
    const recovered = recovery ? await policyLayers(recovery, policy.layers) : undefined;
    const exported = exportQuantizedModel(modelBytes, layers, policy, calibration, { ...quantSettings(config), recovered });

    const row = (label: string, c: ScoredCandidate): ReportRow => {
      const sim = cost(c);
      return { label, latencyMs: sim.latencyMs, energyUj: sim.energyUj, sizeBytes: sim.sizeBytes, scores: scoresOf(c) };
    };
    const refLabel = (c: ScoredCandidate) => `uniform ${bitsLabel(c)}${pinned(c) ? ', first/last 8/8' : config.pinFirstLast ? ', unpinned' : ''} (best in budget)`;
    const report: ReportData = {
      searchId,
      model: config.model,
      target,
      constraint: config.constraint,
      strategy: config.strategy,
      seed: config.seed,
      metric,
      reward: config.reward,
      accuracyMode: best.val.mode,
      splits: {
        val: { samples: best.val.samples },
        select: { samples: best.select.samples, source: selectSource },
        test: best.test ? { samples: best.test.samples, accuracyMode: best.test.mode } : null,
      },
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
      fp32: scoresOf(fp32),
      best: {
        label: `haq ${config.strategy} (episode ${best.candidate.episode})`,
        latencyMs: bestSim.latencyMs,
        energyUj: bestSim.energyUj,
        sizeBytes: bestSim.sizeBytes,
        scores: scoresOf(best),
        episode: best.candidate.episode!,
        reward: best.candidate.reward!,
      },
      uniform8: row('uniform 8/8', choice.uniform8),
      pinFirstLast: config.pinFirstLast,
      uniformPinned: choice.uniformPinned ? row(refLabel(choice.uniformPinned), choice.uniformPinned) : null,
      uniformUnpinned: choice.uniformUnpinned ? row(refLabel(choice.uniformUnpinned), choice.uniformUnpinned) : null,
      gain: choice.gain && choice.reference ? { ...choice.gain, reference: refLabel(choice.reference) } : null,
      candidates: choice.searchCandidates.map((c) => ({ episode: c.candidate.episode!, reward: c.candidate.reward!, costRatio: c.candidate.costRatio, scores: scoresOf(c), chosen: c === best })),
      topK: plan.topK,
      history: history.episodes.filter((e) => !e.probe).map((e) => ({ episode: e.episode, reward: e.reward, score: e.score, costRatio: e.costRatio })),
      float: { ops: layers.skipped.map(({ name, op, macs, reason }) => ({ name, op, macs, reason })), quantizedMacs: layers.totals.macs },
    };
    report.strategies = await strategyComparison(results, resultKeys.prefix(config.model, target, constraint), searchId, {
      strategy: config.strategy,
      score: best.val.score,
      costRatio: best.candidate.costRatio,
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
      top1: best.val.top1,
      top1Fp32: fp32.val.top1,
      testTop1: best.test?.top1 ?? null,
      metric,
      score: best.val.score,
      selectScore: best.select.score,
      testScore: best.test?.score ?? null,
      reward: best.candidate.reward,
      finishedAt: deps.now().toISOString(),
    });
    await writeStatus(work, searchId, { state: 'succeeded', bestReward: best.candidate.reward }, deps.now());
    await releaseLock(work, lockScope(config), searchId);
    return {
      searchId,
      model: config.model,
      target,
      constraint,
      keys,
      top1: best.val.top1,
      top1Fp32: fp32.val.top1,
      metric,
      score: best.val.score,
      selectScore: best.select.score,
      testScore: best.test?.score ?? null,
      reward: best.candidate.reward!,
    };
  });

export const handler = lambdaHandler('finalize', makeHandler);
