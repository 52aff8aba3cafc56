/**
 * `haq search MODEL --data DIR --hardware T --constraint latency:0.5 ...`: the embedded
 * default. Runs statemachines/search.asl.json on this machine (same state machine, same
 * handlers as on AWS, a filesystem store under --out/.haq) and writes policy.json,
 * report.html and model.quant.onnx to --out.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../../shared/errors';
import { SearchConfig, Strategy, type SearchConfigInput } from '../../shared/config';
import { RecoveryMode } from '../../shared/quant/policy';
import { metricLabels } from '../../shared/report/labels';
import { ConstraintSpec } from '../../functions/compare';
import { parse } from '../../shared/validate';
import { runLocalSearch } from '../embedded/local';
import { checkOutDir, checkSearchInputs, describeCause, leaveOutDirOnFailure, modelNameOf, withUserPaths } from '../inputs';
import { searchProgress } from '../embedded/progress';
import { action, printJson } from '../output';
import { searchSummary, summaryText } from '../search-summary';

export interface SearchCliOptions {
  data: string;
  hardware: string;
  constraint: string;
  strategy: string;
  episodes?: string;
  warmup?: string;
  parallel?: string;
  seed?: string;
  out: string;
  evalSamples?: string;
  shards?: string;
  roundsPerExecution?: string;
  inputShape?: string;
  metric?: string;
  reward?: string;
  recovery?: string;
  /** false with --no-pin-first-last. */
  pinFirstLast?: boolean;
  json?: boolean;
}

const intFlag = (value: string | undefined, flag: string, min: number): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidInputError(`${flag} ${value} must be an integer >= ${min}`, { flag, value });
  return n;
};

/** CLI flags -> search config fields (validated again, with every other field, by Prepare). */
export function configFromFlags(o: SearchCliOptions): Omit<SearchConfigInput, 'model' | 'modelKey' | 'dataPrefix'> {
  const config: Record<string, unknown> = {
    hardware: o.hardware,
    constraint: parse(ConstraintSpec, o.constraint, '--constraint'),
    strategy: parse(Strategy, o.strategy, '--strategy'),
  };
  if (o.metric !== undefined) config.metric = parse(SearchConfig.innerType().shape.metric, o.metric, '--metric');
  if (o.reward !== undefined) config.reward = parse(SearchConfig.innerType().shape.reward, o.reward, '--reward');
  const ints: Array<[keyof SearchCliOptions, string, string, number]> = [
    ['episodes', 'episodes', '--episodes', 1],
    ['warmup', 'warmupEpisodes', '--warmup', 0],
    ['parallel', 'parallel', '--parallel', 1],
    ['seed', 'seed', '--seed', 0],
    ['evalSamples', 'evalSamples', '--eval-samples', 0],
    ['shards', 'evalShards', '--shards', 1],
    ['roundsPerExecution', 'roundsPerExecution', '--rounds-per-execution', 1],
  ];
  for (const [flag, field, name, min] of ints) {
    const v = intFlag(o[flag] as string | undefined, name, min);
    if (v !== undefined) config[field] = v;
  }
  if (config.episodes !== undefined && config.warmupEpisodes === undefined) {
    // HAQ warms up for 20 of its 600 episodes; keep that share for short runs.
    config.warmupEpisodes = Math.min(20, Math.max(1, Math.round((config.episodes as number) / 5)));
  }
  if (o.recovery !== undefined) config.quant = { recovery: parse(RecoveryMode, o.recovery, '--recovery') };
  if (o.pinFirstLast === false) config.pinFirstLast = false;
  if (o.inputShape) config.inputShape = o.inputShape.split(',').map((s) => intFlag(s.trim(), '--input-shape', 1));
  return config as Omit<SearchConfigInput, 'model' | 'modelKey' | 'dataPrefix'>;
}

/** One line per setup step, before the first episode. */
const setupSteps: Record<string, (output: unknown) => string> = {
  Prepare: () => 'model parsed, data checked, activations calibrated, weights recovered',
  BuildCostTable: (o) => `cost table built (8/8 latency ${Number((o as { latencyMs: number }).latencyMs).toPrecision(4)} ms)`,
  Baseline: (o) => {
    const b = o as { metric?: 'top1' | 'sqnr' | 'cosine'; score: number; top1: number | null };
    return b.top1 !== null ? `FP32 top-1 ${Number(b.top1).toFixed(2)} %` : `FP32 baseline evaluated (scored by ${metricLabels(b.metric).name})`;
  },
};

export function register(program: Command): void {
  program
    .command('search')
    .description('search a mixed-precision policy for an ONNX model on a hardware target, on this machine')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--data <dir>', 'data folder: calib-inputs.npy, val-inputs.npy, val-labels.npy; optional test-inputs.npy, test-labels.npy (held-out)')
    .option('--hardware <target>', 'built-in target name or custom target JSON file', 'bismo-edge')
    .option('--constraint <kind:ratio>', 'latency:0.5 | energy:0.5 | size:0.25 (fraction of the 8-bit cost)', 'latency:0.5')
    .option('--strategy <name>', 'hybrid (default) | ddpg (HAQ) | random | uniform | greedy', 'hybrid')
    .option('--episodes <n>', 'policies to evaluate, warm-up included (default 100)')
    .option('--warmup <n>', 'random warm-up episodes before DDPG learns (default: episodes/5, at most 20)')
    .option('--parallel <b>', 'policies proposed and evaluated per round (default 1)')
    .option('--seed <s>', 'random seed (same seed, same policy)')
    .option('--eval-samples <n>', 'validation samples per evaluation (0 = all)')
    .option('--shards <n>', 'evaluate each policy as n parallel shards of the validation set')
    .option('--rounds-per-execution <n>', 'continue-as-new after this many rounds (history limit guard)')
    .option('--input-shape <dims>', 'input shape of the layer table (the data fixes it; when given, it must agree with the data)')
    .option('--metric <name>', 'auto | top1 | sqnr | cosine: what accuracy is measured by (auto: top-1 for labels or a classifier output [N, classes], else output SQNR vs FP32)')
    .option('--reward <name>', 'auto | blend | top1 | ce | kl | sqnr | cosine: what the agent learns from; auto: blend (half top1, half ce) with labels, kl without, else the metric (top1 is HAQ\'s; docs/search.md)')
    .option('--recovery <mode>', 'accuracy recovery from the calibration data: full (GPTQ + bias correction, default), bias or none (round to nearest)')
    .option('--no-pin-first-last', 'let the search choose the first and last layer\'s bits too (by default they stay at 8/8, as in HAQ)')
    .option('--out <dir>', 'output folder', 'haq-out')
    .option('--json', 'print the summary as JSON')
    .action(
      action(async (modelPath: string, o: SearchCliOptions) => {
        // Everything that can be checked without the search is checked first: flags, --out,
        // the files, the target, the constraint and its feasibility for this model.
        const config = configFromFlags(o);
        await checkOutDir(o.out);
        await checkSearchInputs({ modelPath, dataDir: o.data, config });
        const progress = searchProgress(process.stderr, 'haq search');
        let result;
        try {
          result = await leaveOutDirOnFailure(
            o.out,
            () =>
              runLocalSearch({
                modelPath,
                dataDir: o.data,
                outDir: o.out,
                config,
                onRound: (u) => progress.round(u),
                onTask: (e) => {
                  const done = setupSteps[e.state];
                  if (done && !e.error) progress.step(done(e.output));
                },
              }),
            (r) => r.outcome.status !== 'SUCCEEDED',
          );
        } finally {
          progress.stop();
        }
        if (result.outcome.status !== 'SUCCEEDED' || !result.final || !result.files) {
          const e = result.outcome.error;
          const cause = e ? withUserPaths(describeCause(e.cause, e.name), modelNameOf(modelPath), { modelPath, dataDir: o.data }) : 'unknown error';
          const err = new InvalidInputError(`search ${result.searchId} failed: ${cause}`, {
            searchId: result.searchId,
            error: e,
          });
          err.name = e?.name && /^[A-Za-z]+Error$/.test(e.name) ? e.name : 'SearchFailedError';
          throw err;
        }
        const policy = JSON.parse(await readFile(result.files.policy, 'utf8'));
        const summary = { searchId: result.searchId, ...searchSummary(policy), files: result.files, executions: result.outcome.executions };
        if (o.json) {
          printJson(summary);
          return;
        }
        process.stdout.write(`${summaryText(policy)}\n\nwrote ${result.files.policy}, ${result.files.report}, ${result.files.quantModel}\n`);
      }),
    );
}
