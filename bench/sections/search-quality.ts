/**
 * Search quality on held-out data: every strategy at a hard budget per zoo model and target,
 * the final policy chosen as the product chooses it (top-k by validation reward, re-scored on
 * the selection split), every figure on validation, selection and test.
 *
 * Hard budgets: for each zoo model and target (bismo-edge latency, BitFusion energy), the
 * budget at which the best uniform policy in budget, pinned (first/last layer 8/8) or not,
 * loses about DROP_POINTS top-1 points on validation against FP32: every uniform (w, a) pair
 * of both families is evaluated, and the budget is the cost ratio of the pair whose
 * best-in-budget validation top-1 is nearest to FP32 - DROP_POINTS, except the cheapest
 * policy (every layer at 2/2: at its cost nothing else fits). Chosen on validation only. At easier
 * budgets (the 4-bit CNN is as good as FP32) no strategy can show anything.
 *
 * The searches run unpinned (pinFirstLast off): with the accuracy recovery, the first layer's
 * 8-bit cost (a 28x28 map, one input channel) buys little accuracy, so at the same cost the
 * unpinned uniform policy beats the pinned one (fmnist-resnet on bismo-edge: 89.60 % against
 * 87.22 % on validation), and the CNN's pinned 2/2 policy loses less than 3 points: a pinned
 * search could neither reach the hard budgets nor match the unpinned reference. Unpinned, every
 * pinned policy is still in the search space.
 *
 * Every search runs the product's own rounds and selection (shared/search) in process: real
 * cost tables, the calibrated PTQ evaluator, the same strategies with the same number of
 * evaluations. Per row: mean and standard error over seeds per strategy on each split, the
 * uniform references chosen as the product chooses them, the rank correlation of every
 * candidate reward signal on validation with top-1 on test over the row's distinct policies,
 * and the wall time per search.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SearchConfig, type Strategy } from '../../shared/config';
import { inputBatch, limitSplit, loadDataset, requireSplit, type Split } from '../../shared/data/dataset';
import { meanEstimate, spearman, type Estimate } from '../../shared/data/metrics';
import { carveSelection } from '../../shared/data/selection-split';
import { buildCostTable, costPolicy } from '../../shared/hardware/cost-table';
import { resolveTarget } from '../../shared/hardware/targets';
import type { CostTable } from '../../shared/hardware/types';
import { searchKeys } from '../../shared/keys';
import { inspectModel } from '../../shared/onnx/inspect';
import type { LayerTable } from '../../shared/onnx/types';
import { calibrate } from '../../shared/quant/calibration';
import { prepareQuantEvaluator, type QuantEvaluator } from '../../shared/quant/evaluator';
import { computeRecovery, recoverySource } from '../../shared/quant/recovery';
import type { ConstraintKind, LayerBits } from '../../shared/quant/policy';
import { deriveSeed, Rng } from '../../shared/rng';
import { createBudgetModel, policyCost } from '../../shared/search/budget';
import { createSearchContext } from '../../shared/search/context';
import { runSearchLoop } from '../../shared/search/loop';
import { defaultReward, type RewardName } from '../../shared/search/reward';
import { SearchHistory, type EvaluationResult } from '../../shared/search/results';
import { chooseFinal, planSelection, uniformFrontier } from '../../shared/search/selection';
import { FsStore } from '../../shared/store/fs-store';
import { getJson, putJson } from '../../shared/store/object-store';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 60;
/** Full mode runs 3 models x 2 targets x 5 strategies x 3 seeds; the runner's default limit is too short. */
export const timeoutSeconds = 3600;

/** A search's defaults (SearchConfig's, for any model). */
const DEFAULTS = SearchConfig.parse({ model: 'm', modelKey: 'k', dataPrefix: 'p' });
/** The product's default strategy first, then the others. */
const DEFAULT_STRATEGY: Strategy = DEFAULTS.strategy;
const STRATEGIES: Strategy[] = [DEFAULT_STRATEGY, ...(['hybrid', 'ddpg', 'random', 'greedy', 'uniform'] as Strategy[]).filter((s) => s !== DEFAULT_STRATEGY)];
const TARGETS: Array<{ target: string; kind: ConstraintKind }> = [
  { target: 'bismo-edge', kind: 'latency' },
  { target: 'bitfusion', kind: 'energy' },
];
/** The hard budget: the best uniform policy in budget (pinned or not) loses about this many top-1 points on validation. */
const DROP_POINTS = 3;
/** The product's default reward for the zoo (labelled classifiers): what a search with `--reward auto` uses. */
const REWARD: RewardName = defaultReward('top1', { hasLabels: true });
/** The search's lowest bitwidth (SearchConfig's default minBits). */
const MIN_BITS = 2;
/** The signals whose rank correlation with test top-1 the bench measures (the reward candidates). */
const SIGNALS: Array<{ name: RewardName; of: (e: EvaluationResult) => number | null }> = [
  { name: 'top1', of: (e) => e.top1 },
  { name: 'ce', of: (e) => (e.crossEntropy ? -e.crossEntropy.value : null) },
  { name: 'kl', of: (e) => (e.kl ? -e.kl.value : null) },
  { name: 'sqnr', of: (e) => e.sqnrDb?.value ?? null },
  { name: 'cosine', of: (e) => e.cosine?.value ?? null },
  // rewardOf's blend without the FP32 offsets (constants, so the ranks are the same).
  { name: 'blend', of: (e) => (e.top1 !== null && e.crossEntropy ? 0.05 * e.top1 - 5 * e.crossEntropy.value : null) },
];

const bitsKey = (bits: readonly LayerBits[]): string => bits.map((b) => `${b.wBits}/${b.aBits}`).join(',');
const pm = (e: Estimate | null, digits = 2): string => (e ? `${e.value.toFixed(digits)} ± ${e.se.toFixed(digits)}` : '-');
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Uniform (w, a) policies: pinned, the first/last layer at 8/8 and the others at (w, a); unpinned, every layer at (w, a). */
function uniformPolicy(layers: LayerTable, w: number, a: number, pinned: boolean): LayerBits[] {
  const last = layers.layers.length - 1;
  return layers.layers.map((l, i) => (pinned && (i === 0 || i === last) ? { name: l.name, wBits: 8, aBits: 8 } : { name: l.name, wBits: w, aBits: a }));
}

/**
 * The hard budget of a model on a target: the cost ratio of the uniform pair whose
 * best-in-budget validation top-1 is nearest to FP32 - DROP_POINTS (ties: the cheaper).
 */
function hardBudget(points: Array<{ ratio: number; top1: number }>, fp32Top1: number): { ratio: number; bestUniformTop1: number } {
  const sorted = [...points].sort((a, b) => a.ratio - b.ratio);
  let best = -Infinity;
  let choice: { ratio: number; bestUniformTop1: number; miss: number } | null = null;
  for (const p of sorted) {
    best = Math.max(best, p.top1);
    const miss = Math.abs(best - (fp32Top1 - DROP_POINTS));
    if (choice === null || miss < choice.miss - 1e-9) choice = { ratio: p.ratio, bestUniformTop1: best, miss };
  }
  // Rounded up to 4 decimals, so the pair itself fits.
  return { ratio: Math.ceil(choice!.ratio * 1e4) / 1e4, bestUniformTop1: choice!.bestUniformTop1 };
}

/** Top-1 and its standard error sqrt(p(1-p)/n), from one evaluation. */
const top1Of = (e: EvaluationResult): Estimate => ({ value: e.top1!, se: e.top1Se ?? 0 });

interface SearchOutcome {
  val: Estimate;
  select: Estimate;
  test: Estimate;
  /** Test top-1 of the policy with the best validation reward (selection without a selection split). */
  naiveTest: Estimate;
  seconds: number;
  /** Policies the search evaluated (the uniform strategy stops when it runs out of fitting pairs). */
  evaluations: number;
}

/** What a run covers; `run` derives it from --quick, a caller may narrow it (e.g. one strategy for the signal correlations). */
export interface SearchQualitySettings {
  models?: string[];
  strategies: Strategy[];
  targets: typeof TARGETS;
  seeds: number[];
  episodes: number;
  warmupEpisodes: number;
  selectTopK: number;
  correlationPolicies: number;
  /** Samples per split (null: all of it). */
  limit: { val: number; select: number; test: number } | null;
  /** DDPG's hidden layers (the bench's, smaller than the product's 300-300). */
  ddpgHidden: number[];
  /** Models measured at once, each in a process of its own (the evaluator is single-threaded). */
  workers: number;
}

/** One model x target row: everything the tables and figures need (plain JSON, so a worker process can hand it over). */
export interface RowResult {
  model: string;
  target: string;
  kind: ConstraintKind;
  ratio: number;
  fp32Test: number;
  pinnedRef: Estimate | null;
  unpinnedRef: Estimate | null;
  outcomes: Record<string, SearchOutcome[]>;
  /** Spearman of each SIGNALS entry (same order) on validation with test top-1; null where a signal is missing. */
  rho: Array<number | null>;
  correlationSample: number;
}

/** The splits' sizes and origin, for the tables' notes. */
interface SplitInfo {
  val: number;
  select: number;
  test: number;
  carved: boolean;
  recovery: string;
}

function settingsFor(ctx: BenchContext, all: string[], overrides: Partial<SearchQualitySettings>): SearchQualitySettings {
  // --quick: one model, one target, one seed, small splits (a smoke test of the section).
  return {
    models: ctx.quick ? all.slice(0, 1) : all,
    strategies: STRATEGIES,
    targets: ctx.quick ? TARGETS.slice(0, 1) : TARGETS,
    seeds: ctx.quick ? [0] : [0, 1, 2],
    episodes: ctx.quick ? 16 : 100,
    warmupEpisodes: ctx.quick ? 6 : 20,
    selectTopK: ctx.quick ? 4 : 8,
    correlationPolicies: ctx.quick ? 24 : 100,
    limit: ctx.quick ? { val: 500, select: 500, test: 1000 } : null,
    // Smaller networks than HAQ's 300-300 (the product default): a DDPG update costs ~hidden^2, and at
    // 128-128 the updates took longer than the evaluations (mobilenet: 156 s of 100 episodes' agent work).
    ddpgHidden: [64, 64],
    workers: ctx.quick ? 1 : Math.max(1, Math.min(2, availableParallelism())),
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
}

/** The zoo's splits as a search sees them: validation (reward), selection, test, and the calibration head. */
async function loadSplits(zoo: string, settings: SearchQualitySettings) {
  const dataset = await loadDataset(new FsStore(zoo), 'data/', ['calib', 'val', 'select', 'test']);
  const fullVal = requireSplit(dataset, 'val');
  const carved = dataset.select ? null : carveSelection(fullVal);
  const val = limitSplit(carved ? carved.reward : fullVal, settings.limit?.val ?? 0);
  const select = limitSplit(dataset.select ?? carved!.select, settings.limit?.select ?? 0);
  const test = limitSplit(requireSplit(dataset, 'test'), settings.limit?.test ?? 0);
  // As a search calibrates: the first calibSamples of calib-inputs.npy (0: all of them).
  const calib = limitSplit(dataset.calib ?? val, DEFAULTS.calibSamples);
  const info: SplitInfo = { val: val.samples, select: select.samples, test: test.samples, carved: carved !== null, recovery: DEFAULTS.quant.recovery };
  return { val, select, test, calib, info };
}

/** Every row of one zoo model: its hard budgets, every strategy and seed, the references and the signal correlations. */
export async function measureModel(
  ctx: Pick<BenchContext, 'root' | 'log' | 'signal'>,
  settings: SearchQualitySettings,
  name: string,
): Promise<{ rows: RowResult[]; info: SplitInfo }> {
  const { strategies, targets, seeds, episodes, warmupEpisodes, selectTopK, correlationPolicies } = settings;
  const zoo = join(ctx.root, 'models', 'zoo');
  const { val, select, test, calib: calibSplit, info } = await loadSplits(zoo, settings);
  const ddpg = { hidden: settings.ddpgHidden };
  const recoveryMode = info.recovery as 'none' | 'bias' | 'full';
  const rows: RowResult[] = [];
  const work = mkdtempSync(join(tmpdir(), 'haq-search-quality-'));
  const bytes = new Uint8Array(readFileSync(join(zoo, name, 'model.onnx')));
  const layers = await inspectModel(bytes, { what: name, inputShape: [1, ...val.sampleShape] });
  // As a search quantizes: one calibration gives the activation ranges and the recovered weights (the product's default recovery).
  const calibData = inputBatch(calibSplit, 0, calibSplit.samples);
  const calibration = await calibrate(bytes, layers, calibData, {});
  const recovered = recoveryMode === 'none' ? null : recoverySource(await computeRecovery(bytes, layers, calibData, { mode: recoveryMode, threads: 1 }));
  const evaluator: QuantEvaluator = await prepareQuantEvaluator(bytes, layers, calibration, { threads: 1, recovery: recovered });
  try {
    const fp32 = { val: await evaluator.evaluateFp32(val), select: await evaluator.evaluateFp32(select), test: await evaluator.evaluateFp32(test) };
    // The evaluator is deterministic: a policy seen before (another strategy, seed or target) is not re-run.
    const memo = new Map<string, EvaluationResult>();
    const evaluate = async (bits: readonly LayerBits[], split: Split): Promise<EvaluationResult> => {
      const key = `${split.name}|${bitsKey(bits)}`;
      let r = memo.get(key);
      if (!r) {
        r = await evaluator.evaluate({ layers: bits as LayerBits[] }, split);
        memo.set(key, r);
      }
      return r;
    };
    const pairs: Array<{ w: number; a: number; bits: LayerBits[] }> = [];
    for (const pinned of [true, false]) {
      for (let w = MIN_BITS; w <= 8; w++) for (let a = MIN_BITS; a <= 8; a++) pairs.push({ w, a, bits: uniformPolicy(layers, w, a, pinned) });
    }
    for (const p of pairs) await evaluate(p.bits, val);

    for (const setting of targets) {
      if (ctx.signal?.aborted) break;
      const costTable: CostTable = buildCostTable(layers, resolveTarget(setting.target));
      const full = createBudgetModel({ kind: setting.kind, ratio: 1, minBits: MIN_BITS, maxBits: 8, pinFirstLast: false }, layers, costTable);
      // The cheapest policy (every layer at the lowest width) is left out: at its cost nothing else fits, and there is nothing to search.
      const uniformPoints = await Promise.all(pairs.map(async (p) => ({ ratio: policyCost(full, p.bits) / full.fullCost, top1: (await evaluate(p.bits, val)).top1! })));
      const cheapest = Math.min(...uniformPoints.map((p) => p.ratio));
      const points = uniformPoints.filter((p) => p.ratio > cheapest * (1 + 1e-9));
      const { ratio, bestUniformTop1 } = hardBudget(points, fp32.val.top1!);
      const label = `${name}.${setting.target}.${setting.kind}-${ratio}`;
      ctx.log(`${label}: hard budget ${ratio} (best uniform ${bestUniformTop1.toFixed(2)} % vs FP32 ${fp32.val.top1!.toFixed(2)} % on validation)`);

      const outcomes: Record<string, SearchOutcome[]> = {};
      const rowPolicies = new Map<string, LayerBits[]>();
      let references: ReturnType<typeof chooseFinal> | null = null;
      for (const strategy of strategies) {
        outcomes[strategy] = [];
        for (const seed of seeds) {
          if (ctx.signal?.aborted) break;
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
            selectTopK,
            metric: 'top1',
            reward: REWARD,
            pinFirstLast: false,
          });
          await putJson(store, searchKeys.config(id), config);
          await putJson(store, searchKeys.layers(id), layers);
          await putJson(store, searchKeys.costTable(id), costTable);
          await putJson(store, searchKeys.baseline(id), fp32.val);
          const t0 = performance.now();
          await runSearchLoop(
            store,
            id,
            { simulate: (p) => costPolicy(costTable, p), evaluate: (p) => evaluate(p.layers as LayerBits[], val) },
            { pruneCheckpoints: true },
          );
          // The product's final choice: top-k by validation reward, re-scored on the selection split.
          const history = (await getJson(store, searchKeys.history(id), SearchHistory)).episodes;
          const plan = planSelection(createSearchContext(id, config, layers, costTable), history, selectTopK);
          const results = [];
          for (const c of plan.candidates) {
            const score = (s: Split) => (c.bits ? evaluate(c.bits, s) : Promise.resolve(s === val ? fp32.val : s === select ? fp32.select : fp32.test));
            results.push({ val: await score(val), select: await score(select), test: await score(test) });
          }
          const choice = chooseFinal(plan, results, config.reward as RewardName);
          const seconds = (performance.now() - t0) / 1000;
          references ??= choice;
          const naive = choice.searchCandidates[0];
          outcomes[strategy].push({
            val: top1Of(choice.best.val),
            select: top1Of(choice.best.select),
            test: top1Of(choice.best.test!),
            naiveTest: top1Of(naive.test!),
            seconds,
            evaluations: history.length,
          });
          for (const e of history) {
            if (e.probe) continue;
            const bits = e.bits.map(([w, a], i) => ({ name: layers.layers[i].name, wBits: w, aBits: a }));
            rowPolicies.set(bitsKey(bits), bits);
          }
          ctx.log(`${id}: test ${choice.best.test!.top1!.toFixed(2)} % (selection ${choice.best.select.top1!.toFixed(2)}, validation ${choice.best.val.top1!.toFixed(2)}), ${seconds.toFixed(1)} s`);
          rmSync(join(work, id), { recursive: true, force: true });
        }
      }
      if (ctx.signal?.aborted || !references) break;

      // Rank correlation of each signal on validation with test top-1, over a seeded sample of the row's distinct policies.
      const sample = new Rng(deriveSeed('search-quality', label)).shuffle([...rowPolicies.values()]).slice(0, correlationPolicies);
      const pointsVal: EvaluationResult[] = [];
      const testTop1: number[] = [];
      for (const bits of sample) {
        pointsVal.push(await evaluate(bits, val));
        testTop1.push((await evaluate(bits, test)).top1!);
      }
      const rho = SIGNALS.map((s) => {
        const xs = pointsVal.map(s.of);
        return xs.every((x): x is number => x !== null) ? spearman(xs, testTop1) : null;
      });
      ctx.log(`${label}: Spearman with test top-1 over ${sample.length} policies: ${SIGNALS.map((s, i) => `${s.name} ${rho[i] === null ? '-' : rho[i]!.toFixed(3)}`).join(', ')}`);

      // The searches run unpinned, so the product's references are the unpinned family; the pinned family
      // (first/last layer 8/8) is chosen here by the same rule (best on selection among the frontier in budget).
      let pinnedRef: Estimate | null = null;
      const pinnedBudget = (() => {
        try {
          return createBudgetModel({ kind: setting.kind, ratio, minBits: MIN_BITS, maxBits: 8, pinFirstLast: true }, layers, costTable);
        } catch {
          return null; // below the cheapest pinned policy: no pinned uniform policy fits
        }
      })();
      if (pinnedBudget) {
        let bestSelect = -Infinity;
        for (const bits of uniformFrontier(pinnedBudget, true)) {
          const sel = (await evaluate(bits, select)).top1!;
          if (sel > bestSelect) {
            bestSelect = sel;
            pinnedRef = top1Of(await evaluate(bits, test));
          }
        }
      }
      const unpinnedRef = references.uniformPinned ? top1Of(references.uniformPinned.test!) : null;
      rows.push({
        model: name,
        target: setting.target,
        kind: setting.kind,
        ratio,
        fp32Test: fp32.test.top1!,
        pinnedRef,
        unpinnedRef,
        outcomes,
        rho,
        correlationSample: sample.length,
      });
    }
  } finally {
    await evaluator.close();
    rmSync(work, { recursive: true, force: true });
  }
  return { rows, info };
}

/** Indices of `names` by the zoo model's MACs per sample, most first (ties and uninspectable models: in the given order). */
async function byMacsDescending(zoo: string, names: string[]): Promise<number[]> {
  const macs = await Promise.all(
    names.map(async (name) => {
      try {
        return (await inspectModel(new Uint8Array(readFileSync(join(zoo, name, 'model.onnx'))), { what: name })).totals.macs;
      } catch {
        return 0;
      }
    }),
  );
  return names.map((_, i) => i).sort((a, b) => macs[b] - macs[a] || a - b);
}

/**
 * Runs `measureModel` for each model in a process of its own, at most `workers` at once (the
 * evaluator runs on one thread, so two models use both cores); each worker writes its rows as
 * JSON (bench/search-quality-worker.ts).
 */
async function measureInWorkers(ctx: BenchContext, settings: SearchQualitySettings, names: string[]): Promise<Array<{ rows: RowResult[]; info: SplitInfo }>> {
  const dir = mkdtempSync(join(tmpdir(), 'haq-search-quality-workers-'));
  const results: Array<{ rows: RowResult[]; info: SplitInfo }> = new Array(names.length);
  const children = new Set<ReturnType<typeof spawn>>();
  const onAbort = () => children.forEach((c) => c.kill());
  ctx.signal?.addEventListener('abort', onAbort);
  // Most MACs first: the slowest model starts at once, so the others fill the second core beside it.
  const order = await byMacsDescending(join(ctx.root, 'models', 'zoo'), names);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < order.length && !ctx.signal?.aborted) {
      const i = order[next++];
      const spec = join(dir, `${i}.spec.json`);
      const out = join(dir, `${i}.rows.json`);
      writeFileSync(spec, JSON.stringify({ root: ctx.root, settings: { ...settings, workers: 1 }, model: names[i], out }));
      await new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', join(ctx.root, 'bench', 'search-quality-worker.ts'), spec], { cwd: ctx.root, stdio: ['ignore', 'pipe', 'pipe'] });
        children.add(child);
        let stderr = '';
        let pending = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop()!;
          lines.filter(Boolean).forEach((l) => ctx.log(l));
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
        child.on('error', reject);
        child.on('close', (code) => {
          children.delete(child);
          if (code === 0) resolve();
          else reject(new Error(`search-quality worker for ${names[i]} exited with ${code}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
        });
      });
      if (!ctx.signal?.aborted) results[i] = JSON.parse(readFileSync(out, 'utf8'));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(settings.workers, names.length) }, worker));
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
    rmSync(dir, { recursive: true, force: true });
  }
  return results.filter(Boolean);
}

export async function run(ctx: BenchContext, overrides: Partial<SearchQualitySettings> = {}): Promise<BenchSection> {
  const zoo = join(ctx.root, 'models', 'zoo');
  const all = readdirSync(zoo).filter((n) => existsSync(join(zoo, n, 'model.onnx'))).sort();
  const settings = settingsFor(ctx, all, overrides);
  const names = (settings.models ?? all).filter((n) => all.includes(n));
  if (names.length === 0) throw new Error(`no models under ${zoo} (expected <name>/model.onnx)`);
  const t0 = performance.now();
  const measured =
    settings.workers > 1 && names.length > 1
      ? await measureInWorkers(ctx, settings, names)
      : await (async () => {
          const out = [];
          for (const name of names) if (!ctx.signal?.aborted) out.push(await measureModel(ctx, settings, name));
          return out;
        })();
  if (measured.length === 0) throw new Error('search-quality: no model was measured');
  return assemble(settings, measured[0].info, measured.flatMap((m) => m.rows), (performance.now() - t0) / 1000);
}

/**
 * A strategy's figure over seeds: the mean, and a standard error that counts both sources of
 * noise: the spread over seeds (the standard error of the mean) and the split's sampling error
 * sqrt(p(1-p)/n) of one figure (the mean of the seeds' own; all seeds are scored on the same
 * samples, so their sampling errors do not average out). A strategy that draws nothing at
 * random has no spread over seeds but is still measured on finitely many samples.
 */
export function overSeeds(xs: readonly Estimate[]): Estimate {
  if (xs.length === 1) return xs[0];
  const spread = meanEstimate(xs.map((x) => x.value));
  const sampling = mean(xs.map((x) => x.se));
  return { value: spread.value, se: Math.sqrt(spread.se ** 2 + sampling ** 2) };
}

/** The section's tables and figures from the rows, in the order measured. */
export function assemble(settings: SearchQualitySettings, info: SplitInfo, rows: RowResult[], wallSeconds: number): BenchSection {
  const { strategies, seeds, episodes, warmupEpisodes, selectTopK, correlationPolicies } = settings;
  const figures: Record<string, number | string | null> = {};
  const headline: BenchTable = {
    title: 'Test top-1 (%) at hard budgets: strategies (mean over seeds ± SE) and the most accurate uniform policy in budget',
    headers: ['model', 'target', 'budget', 'FP32', 'uniform pinned', 'uniform unpinned', ...strategies, 'best strategy - better uniform'],
    rows: [],
  };
  const splits: BenchTable = {
    title: 'Per strategy: top-1 (%) of the final policy on validation, selection and test (mean over seeds ± SE)',
    headers: ['model', 'target', 'strategy', 'validation', 'selection', 'test', 'test, best validation reward instead', 'evaluations', 'wall s per search'],
    rows: [],
  };
  const correlations: BenchTable = {
    title: 'Spearman rank correlation of each reward signal on validation with top-1 on test',
    headers: ['model', 'target', 'policies', ...SIGNALS.map((s) => s.name)],
    rows: [],
  };
  const wins = { ddpgVsRandom: 0, rows: 0, defaultGainAtLeastOne: 0, defaultAtLeastOthers: 0 };
  const correlationsBySignal: Record<string, number[]> = Object.fromEntries(SIGNALS.map((s) => [s.name, []]));
  const est = overSeeds;

  for (const row of rows) {
    const label = `${row.model}.${row.target}.${row.kind}-${row.ratio}`;
    const testOf = (s: string) => est(row.outcomes[s].map((o) => o.test));
    row.rho.forEach((r, i) => r !== null && correlationsBySignal[SIGNALS[i].name].push(r));
    correlations.rows.push([row.model, row.target, row.correlationSample, ...row.rho.map((r) => (r === null ? null : Number(r.toFixed(3))))]);
    const better = [row.pinnedRef, row.unpinnedRef].filter((r): r is Estimate => r !== null);
    const betterRef = better.length ? better.reduce((a, b) => (b.value > a.value ? b : a)) : null;
    const measuredStrategies = strategies.filter((s) => row.outcomes[s]?.length);
    const bestStrategy = measuredStrategies.reduce((a, b) => (testOf(b).value > testOf(a).value ? b : a));
    headline.rows.push([
      row.model,
      row.target,
      `${row.kind} ${row.ratio}`,
      Number(row.fp32Test.toFixed(2)),
      pm(row.pinnedRef),
      pm(row.unpinnedRef),
      ...strategies.map((s) => (row.outcomes[s]?.length ? pm(testOf(s)) : '-')),
      betterRef ? `${bestStrategy} ${(testOf(bestStrategy).value - betterRef.value >= 0 ? '+' : '')}${(testOf(bestStrategy).value - betterRef.value).toFixed(2)}` : '-',
    ]);
    for (const s of measuredStrategies) {
      const o = row.outcomes[s];
      splits.rows.push([
        row.model,
        row.target,
        s,
        pm(est(o.map((x) => x.val))),
        pm(est(o.map((x) => x.select))),
        pm(est(o.map((x) => x.test))),
        pm(est(o.map((x) => x.naiveTest))),
        Number(mean(o.map((x) => x.evaluations)).toFixed(1)),
        Number(mean(o.map((x) => x.seconds)).toFixed(1)),
      ]);
      figures[`${label}.${s}.test`] = Number(testOf(s).value.toFixed(3));
      figures[`${label}.${s}.testSe`] = Number(testOf(s).se.toFixed(3));
      figures[`${label}.${s}.secondsPerSearch`] = Number(mean(o.map((x) => x.seconds)).toFixed(2));
    }
    figures[`${label}.uniformReference.test`] = betterRef ? Number(betterRef.value.toFixed(3)) : null;
    SIGNALS.forEach((sig, i) => (figures[`${label}.spearman.${sig.name}`] = row.rho[i] === null ? null : Number(row.rho[i]!.toFixed(3))));
    // The default strategy against the better uniform reference and against every other strategy minus its SE.
    if (row.outcomes[DEFAULT_STRATEGY]?.length) {
      const def = testOf(DEFAULT_STRATEGY);
      if (betterRef) {
        figures[`${label}.defaultMinusReference`] = Number((def.value - betterRef.value).toFixed(3));
        if (def.value - betterRef.value >= 1) wins.defaultGainAtLeastOne += 1;
      }
      const atLeast = measuredStrategies.every((s) => s === DEFAULT_STRATEGY || def.value >= testOf(s).value - testOf(s).se);
      figures[`${label}.defaultAtLeastOthersMinusSe`] = atLeast ? 'yes' : 'no';
      if (atLeast) wins.defaultAtLeastOthers += 1;
    }
    if (row.outcomes.ddpg?.length && row.outcomes.random?.length) {
      wins.rows += 1;
      if (testOf('ddpg').value >= testOf('random').value) wins.ddpgVsRandom += 1;
    }
  }
  figures['ddpgAtOrAboveRandomOnTest'] = `${wins.ddpgVsRandom}/${wins.rows}`;
  figures['defaultAtLeastOnePointAboveReference'] = `${wins.defaultGainAtLeastOne}/${rows.length}`;
  figures['defaultAtLeastOthersMinusSe'] = `${wins.defaultAtLeastOthers}/${rows.length}`;
  figures['wallSeconds'] = Number(wallSeconds.toFixed(0));
  for (const s of SIGNALS) {
    const r = correlationsBySignal[s.name];
    figures[`meanSpearman.${s.name}`] = r.length ? Number(mean(r).toFixed(3)) : null;
  }
  const splitNote =
    `${episodes} evaluated policies per search (${warmupEpisodes} random warm-up for ddpg), ${seeds.length} seed(s); ` +
    `validation ${info.val}, selection ${info.select} (${info.carved ? 'carved out of val' : 'select-inputs.npy'}), test ${info.test} images; ` +
    `final policy: best of the top ${selectTopK} by validation reward (${REWARD}, the product default) on the selection split by the same function; ` +
    `recovery ${info.recovery}; hard budget: the best uniform policy in budget (pinned or not) loses about ${DROP_POINTS} points on validation; searches unpinned; default strategy ${DEFAULT_STRATEGY}; ddpg hidden ${settings.ddpgHidden.join('-')} (product default 300-300)`;
  headline.note = `${splitNote}; uniform references: the most accurate uniform policy in budget on selection, reported on test with sqrt(p(1-p)/n)`;
  splits.note =
    `±: the standard error of the mean over seeds combined with the split's sampling error sqrt(p(1-p)/n) of one figure (root of the sum of squares); wall s: the search and its final choice in process, a policy evaluated before (same model, any strategy, seed or target) served from a cache` +
    `${settings.workers > 1 ? `, ${settings.workers} models measured at once (one process each)` : ''}; evaluations: policies the search evaluated (uniform stops when it runs out of fitting pairs)`;
  correlations.note = `over up to ${correlationPolicies} distinct policies per row, sampled (seeded) from every strategy's searches; signals: top-1, -cross-entropy, -KL to FP32, output SQNR, output cosine, blend (half top-1, half -cross-entropy, as the default reward)`;
  return { id: 'search-quality', title: 'Search quality on held-out data: strategies at hard budgets', figures, tables: [headline, splits, correlations] };
}
