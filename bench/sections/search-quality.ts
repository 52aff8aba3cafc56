/**
 * Search quality: the best validation top-1 each strategy finds with the same number of
 * evaluated policies, per zoo model, at a latency budget of 0.5 on bismo-edge and an energy
 * budget of 0.5 on bitfusion (ratios of the all-8-bit cost). Every search runs the product's
 * own rounds (shared/search) in process: real cost tables (shared/hardware), the calibrated
 * PTQ evaluator (shared/quant) on the zoo's validation split. Mean and spread over seeds.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SearchConfig, type Strategy } from '../../shared/config';
import { BudgetInfeasibleError } from '../../shared/errors';
import { loadDataset, requireSplit, type Split } from '../../shared/data/dataset';
import { buildCostTable, costPolicy } from '../../shared/hardware/cost-table';
import { resolveTarget } from '../../shared/hardware/targets';
import { searchKeys } from '../../shared/keys';
import { inspectModel } from '../../shared/onnx/inspect';
import type { ConstraintKind } from '../../shared/quant/policy';
import { calibrate } from '../../shared/quant/calibration';
import { prepareQuantEvaluator, type QuantEvaluator } from '../../shared/quant/evaluator';
import { createBudgetModel } from '../../shared/search/budget';
import { runSearchLoop } from '../../shared/search/loop';
import type { EvaluationResult } from '../../shared/search/results';
import { FsStore } from '../../shared/store/fs-store';
import { putJson } from '../../shared/store/object-store';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 60;

const STRATEGIES: Strategy[] = ['ddpg', 'random', 'greedy', 'uniform'];
const SETTINGS: Array<{ target: string; kind: ConstraintKind; ratio: number }> = [
  { target: 'bismo-edge', kind: 'latency', ratio: 0.5 },
  { target: 'bitfusion', kind: 'energy', ratio: 0.5 },
];

/** The first n samples of a split. */
function headOf(split: Split, n: number): Split {
  if (n >= split.samples) return split;
  const per = split.sampleShape.reduce((a, b) => a * b, 1);
  return {
    ...split,
    inputs: { ...split.inputs, data: split.inputs.data.subarray(0, n * per) as typeof split.inputs.data, shape: [n, ...split.sampleShape] },
    labels: split.labels ? split.labels.subarray(0, n) : null,
    samples: n,
  };
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const spread = (xs: number[]): number => (xs.length > 1 ? Math.max(...xs) - Math.min(...xs) : 0);

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const zoo = join(ctx.root, 'models', 'zoo');
  const all = readdirSync(zoo).filter((n) => existsSync(join(zoo, n, 'model.onnx'))).sort();
  // --quick: the first zoo model only (a smoke test of the section; the whole bench stays near a minute).
  const names = ctx.quick ? all.slice(0, 1) : all;
  if (names.length === 0) throw new Error(`no models under ${zoo} (expected <name>/model.onnx)`);
  const seeds = ctx.quick ? [0] : [0, 1, 2];
  const episodes = ctx.quick ? 16 : 60;
  const warmupEpisodes = ctx.quick ? 6 : 20;
  const valSamples = ctx.quick ? 300 : 1000;
  // Smaller networks than HAQ's 300-300 (the product default): a DDPG step costs ~hidden^2,
  // and 300-300 over 3 models x 2 targets x 3 seeds overruns the bench's 30-minute section limit.
  const ddpg = { hidden: ctx.quick ? [64, 64] : [128, 128] };
  // Search objects go to a private folder (checkpoints are pruned as the searches run).
  const work = mkdtempSync(join(tmpdir(), 'haq-search-quality-'));
  const dataStore = new FsStore(zoo);
  const dataset = await loadDataset(dataStore, 'data/', ['calib', 'val']);
  const val = headOf(requireSplit(dataset, 'val'), valSamples);
  const calibSplit = headOf(dataset.calib ?? requireSplit(dataset, 'val'), 256);

  const figures: Record<string, number | string | null> = {};
  const table: BenchTable = {
    title: 'Best validation top-1 (%) per strategy, same evaluation budget',
    headers: ['model', 'target', 'budget', 'FP32 top-1', ...STRATEGIES.map((s) => `${s} mean`), ...STRATEGIES.map((s) => `${s} spread`)],
    rows: [],
    note:
      `${episodes} evaluated policies per search (${warmupEpisodes} random warm-up for ddpg), ${seeds.length} seed(s), ` +
      `spread = max - min over seeds; top-1 of calibrated PTQ on the first ${val.samples} validation images; ` +
      `greedy counts its sensitivity probes in the budget; ddpg hidden ${ddpg.hidden.join('-')} (product default 300-300)`,
  };
  let ddpgWins = 0;
  let comparisons = 0;
  for (const name of names) {
    const bytes = new Uint8Array(readFileSync(join(zoo, name, 'model.onnx')));
    const layers = await inspectModel(bytes, { what: name, inputShape: [1, ...val.sampleShape] });
    const calibration = await calibrate(bytes, layers, calibSplit, {});
    const evaluator: QuantEvaluator = await prepareQuantEvaluator(bytes, layers, calibration, { threads: 1 });
    try {
      const fp32 = await evaluator.evaluateFp32(val);
      // The evaluator is deterministic: a policy seen before (another strategy or seed) is not re-run.
      const memo = new Map<string, EvaluationResult>();
      const evaluate = async (p: { layers: Array<{ wBits: number; aBits: number | null }> }): Promise<EvaluationResult> => {
        const key = p.layers.map((l) => `${l.wBits}/${l.aBits}`).join(',');
        let r = memo.get(key);
        if (!r) {
          r = await evaluator.evaluate(p as Parameters<QuantEvaluator['evaluate']>[0], val);
          memo.set(key, r);
        }
        return r;
      };
      for (const setting of SETTINGS) {
        const costTable = buildCostTable(layers, resolveTarget(setting.target));
        // A budget below the all-minimum cost (first/last layers pinned at 8 bits) is infeasible:
        // then run halfway between the smallest feasible ratio and 1, and say so in the table.
        let ratio = setting.ratio;
        try {
          createBudgetModel({ kind: setting.kind, ratio, minBits: 2, maxBits: 8, pinFirstLast: true }, layers, costTable);
        } catch (err) {
          if (!(err instanceof BudgetInfeasibleError)) throw err;
          const halfway = Math.ceil((err.minRatio + (1 - err.minRatio) / 2) * 100) / 100;
          ratio = halfway >= 1 && err.minRatio < 0.99 ? 0.99 : halfway; // keep some constraint
          ctx.log(`${name} ${setting.target}: ${err.message}; using ${ratio}`);
        }
        const best: Record<string, number[]> = {};
        for (const strategy of STRATEGIES) {
          best[strategy] = [];
          for (const seed of seeds) {
            const id = `${name}-${setting.target}-${strategy}-${seed}`;
            const store = new FsStore(join(work, id));
            const config = SearchConfig.parse({
              model: name,
              modelKey: `models/${name}/model.onnx`,
              dataPrefix: 'models/zoo/data/',
              hardware: setting.target,
              constraint: { kind: setting.kind, ratio },
              strategy,
              episodes,
              warmupEpisodes,
              seed,
              ddpg,
            });
            await putJson(store, searchKeys.config(id), config);
            await putJson(store, searchKeys.layers(id), layers);
            await putJson(store, searchKeys.costTable(id), costTable);
            await putJson(store, searchKeys.baseline(id), fp32);
            const summary = await runSearchLoop(
              store,
              id,
              { simulate: (p) => costPolicy(costTable, p), evaluate: (p) => evaluate(p) },
              { pruneCheckpoints: true },
            );
            const top1 = summary.bestTop1 ?? Number.NaN;
            best[strategy].push(top1);
            ctx.log(`${id}: best top-1 ${top1.toFixed(2)} % after ${summary.episodesDone} evaluations`);
          }
        }
        const label = `${name}.${setting.target}.${setting.kind}-${ratio}`;
        for (const s of STRATEGIES) figures[`${label}.${s}`] = Number(mean(best[s]).toFixed(3));
        comparisons += 1;
        if (mean(best.ddpg) >= mean(best.random)) ddpgWins += 1;
        table.rows.push([
          name,
          setting.target,
          ratio === setting.ratio ? `${setting.kind} ${ratio}` : `${setting.kind} ${ratio} (${setting.ratio} infeasible)`,
          Number(fp32.score.toFixed(2)),
          ...STRATEGIES.map((s) => Number(mean(best[s]).toFixed(2))),
          ...STRATEGIES.map((s) => Number(spread(best[s]).toFixed(2))),
        ]);
      }
    } finally {
      await evaluator.close();
    }
  }
  rmSync(work, { recursive: true, force: true });
  figures['ddpgAtOrAboveRandom'] = `${ddpgWins}/${comparisons}`;
  return { id: 'search-quality', title: 'Search quality: DDPG vs baselines', figures, tables: [table] };
}
