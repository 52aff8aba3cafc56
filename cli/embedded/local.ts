/**
 * One search or sweep on this machine: stages the model and data into a filesystem "models
 * bucket" under <out>/.haq, runs statemachines/search.asl.json (or sweep) with the real
 * handlers, and returns the result with its files.
 */
import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import type { SearchConfigInput } from '../../shared/config';
import { dataFiles, missingSplit } from '../../shared/data/dataset';
import { InvalidInputError } from '../../shared/errors';
import { resolveTarget } from '../../shared/hardware/targets';
import { modelKeys, resultKeys, searchKeys } from '../../shared/keys';
import { parse } from '../../shared/validate';
import { FinalizeOutput, type UpdateOutput } from '../../functions/lib/contracts';
import { searchRequest } from '../../functions/lib/search-input';
import { SweepSpec } from '../../functions/compare';
import { modelNameOf, resolveHardwareFlag } from '../inputs';
import { localHandlers, localStores, type LocalStores } from './handlers';
import { EmbeddedRunner, type ExecutionOutcome, type HandlerMap, type TaskEvent } from './runner';

export interface LocalRunHooks {
  onTask?: (event: TaskEvent) => void;
  onRound?: (update: UpdateOutput) => void;
  /** Wraps handlers (tests: fault injection at the handler boundary). */
  wrapHandlers?: (handlers: HandlerMap) => HandlerMap;
  /** Handler names that fail once per key with a TransientError (HAQ_INJECT_FAULT semantics). */
  faults?: string[];
  /** Retry backoff override in ms (tests: 0). */
  retryDelayMs?: number;
  now?: () => Date;
}

export interface LocalSearchOptions extends LocalRunHooks {
  modelPath: string;
  dataDir: string;
  outDir: string;
  /** Search config fields (hardware, constraint, strategy, episodes, parallel, seed, ...). */
  config: Omit<SearchConfigInput, 'model' | 'modelKey' | 'dataPrefix'>;
  /** Model name (default: the folder of a model.onnx, else the file name). */
  name?: string;
}

export interface LocalSearchResult {
  searchId: string;
  outcome: ExecutionOutcome;
  final: FinalizeOutput | null;
  /** Files copied to outDir (only when the search succeeded). */
  files: { policy: string; report: string; quantModel: string } | null;
  stores: LocalStores;
}

/** Copies a model, its data folder and a search.json beside it into the local models store; `dataLabel` names the folder in errors. */
async function stageModel(stores: LocalStores, name: string, modelPath: string, dataDir: string, dataLabel = `--data ${dataDir}`): Promise<void> {
  const modelInfo = await stat(modelPath).catch(() => null);
  if (!modelInfo?.isFile()) throw new InvalidInputError(`model ${modelPath}: no such file; pass an .onnx file`);
  const dataInfo = await stat(dataDir).catch(() => null);
  if (!dataInfo?.isDirectory()) throw new InvalidInputError(`${dataLabel} is not a folder; pass the folder with calib-inputs.npy, val-inputs.npy, val-labels.npy`);
  const present = await readdir(dataDir);
  // Prepare needs val (requireSplit): checked here too, so the error names the user's folder, not the staged copy.
  if (!present.includes(dataFiles.inputs('val'))) throw missingSplit(dataLabel, 'val', present);
  const root = stores.models.root;
  const modelDest = join(root, ...modelKeys.model(name).split('/'));
  await mkdir(dirname(modelDest), { recursive: true });
  await copyFile(modelPath, modelDest);
  const dataDest = join(root, ...modelKeys.dataPrefix(name).split('/'));
  await rm(dataDest, { recursive: true, force: true });
  await mkdir(dataDest, { recursive: true });
  for (const f of present) {
    if (/\.(npy|json)$/i.test(f)) await copyFile(join(dataDir, f), join(dataDest, f));
  }
  // A search.json beside the model applies as on S3 (flags override it).
  const searchJson = join(dirname(modelPath), 'search.json');
  const sjDest = join(root, ...modelKeys.searchConfig(name).split('/'));
  await rm(sjDest, { force: true });
  if ((await stat(searchJson).catch(() => null))?.isFile()) await copyFile(searchJson, sjDest);
}

function makeRunner(stores: LocalStores, hooks: LocalRunHooks): { runner: EmbeddedRunner; close: () => Promise<void> } {
  const local = localHandlers(stores, { faults: hooks.faults, now: hooks.now });
  const handlers = hooks.wrapHandlers ? hooks.wrapHandlers(local.handlers) : local.handlers;
  const runner = new EmbeddedRunner({
    handlers,
    retryDelayMs: hooks.retryDelayMs,
    onTask: (e) => {
      if (e.fn === 'update' && e.output && hooks.onRound) hooks.onRound(e.output as UpdateOutput);
      hooks.onTask?.(e);
    },
  });
  return { runner, close: local.close };
}

export async function runLocalSearch(options: LocalSearchOptions): Promise<LocalSearchResult> {
  const outDir = resolve(options.outDir);
  const stores = localStores(join(outDir, '.haq'));
  const name = options.name ?? modelNameOf(options.modelPath);
  await stageModel(stores, name, options.modelPath, options.dataDir);
  const hardware = await resolveHardwareFlag(options.config.hardware as string | Record<string, unknown> | undefined);
  const request = { ...options.config, ...(hardware === undefined ? {} : { hardware }), model: name, modelKey: modelKeys.model(name), dataPrefix: modelKeys.dataPrefix(name) };
  const { searchId } = searchRequest(request);
  // A new command is a new run: forget a previous run of the same request in this folder.
  await rm(join(stores.work.root, ...searchKeys.prefix(searchId).split('/')), { recursive: true, force: true });
  // One process owns this folder: a lock left here is from an interrupted run (Ctrl-C), not a live search.
  await rm(join(stores.work.root, 'locks'), { recursive: true, force: true });

  const { runner, close } = makeRunner(stores, options);
  let outcome: ExecutionOutcome;
  try {
    outcome = await runner.runChain('search', request, `search-${searchId}`);
  } finally {
    await close();
  }
  if (outcome.status !== 'SUCCEEDED') return { searchId, outcome, final: null, files: null, stores };
  const final = FinalizeOutput.parse(outcome.output);
  await mkdir(outDir, { recursive: true });
  const files = { policy: join(outDir, 'policy.json'), report: join(outDir, 'report.html'), quantModel: join(outDir, 'model.quant.onnx') };
  await copyFile(join(stores.results.root, ...final.keys.policy.split('/')), files.policy);
  await copyFile(join(stores.results.root, ...final.keys.report.split('/')), files.report);
  await copyFile(join(stores.results.root, ...final.keys.quantModel.split('/')), files.quantModel);
  return { searchId, outcome, final, files, stores };
}

/** A model of a local sweep: a file and its data folder, relative to the sweep.json's folder. */
const LocalSweepModel = z.object({ path: z.string().min(1), data: z.string().min(1).optional(), name: z.string().min(1).optional() }).strict();

/**
 * sweep.json for `haq sweep`: the deployed sweep's format (shared with functions/compare.ts)
 * with model files instead of model names, `{ "path": "m.onnx", "data": "dir" }`; paths are
 * relative to the folder of sweep.json. Names of models already in the local store pass too.
 */
export const LocalSweepSpec = SweepSpec.extend({ models: z.array(z.union([LocalSweepModel, SweepSpec.shape.models.element])).min(1) });
export type LocalSweepSpec = z.input<typeof LocalSweepSpec>;

export interface LocalSweepOptions extends LocalRunHooks {
  spec: LocalSweepSpec;
  /** Folder the spec's relative model/data paths are resolved against. */
  baseDir: string;
  outDir: string;
  /** How the spec is named in errors (default: "sweep config"). */
  what?: string;
}

interface SweepModelFiles {
  name: string;
  path: string;
  data: string;
}

/**
 * Everything a sweep can check before its first search: the spec's fields, every model
 * file and data folder (resolved against baseDir, named as the user wrote them), every
 * target. Constraints a target cannot meet are not errors here: they are failed rows.
 */
export async function checkSweepSpec(spec: unknown, baseDir: string, what = 'sweep config') {
  const parsed = parse(LocalSweepSpec, spec, what);
  const files: SweepModelFiles[] = [];
  for (const m of parsed.models) {
    if (!('path' in m)) continue;
    const path = resolve(baseDir, m.path);
    const data = resolve(baseDir, m.data ?? join(dirname(m.path), 'data'));
    const modelInfo = await stat(path).catch(() => null);
    if (!modelInfo?.isFile()) {
      throw new InvalidInputError(`${what}: model "${m.path}" is not a file (${path}; model paths are relative to the config's folder ${baseDir})`, { path });
    }
    const dataInfo = await stat(data).catch(() => null);
    if (!dataInfo?.isDirectory()) {
      throw new InvalidInputError(
        `${what}: data folder "${m.data ?? join(dirname(m.path), 'data')}" of model "${m.path}" is not a folder (${data}; paths are relative to the config's folder ${baseDir})`,
        { data },
      );
    }
    files.push({ name: m.name ?? modelNameOf(path), path, data });
  }
  const targets: Array<string | Record<string, unknown>> = [];
  for (const t of parsed.targets) {
    const hardware = (await resolveHardwareFlag(t as string | Record<string, unknown>, baseDir))!;
    resolveTarget(hardware);
    targets.push(hardware);
  }
  return { spec: parsed, files, targets };
}

export async function runLocalSweep(options: LocalSweepOptions): Promise<{ outcome: ExecutionOutcome; comparison: unknown; files: { comparison: string; report: string } | null }> {
  const { spec, files, targets } = await checkSweepSpec(options.spec, options.baseDir, options.what);
  const outDir = resolve(options.outDir);
  const stores = localStores(join(outDir, '.haq'));
  for (const f of files) await stageModel(stores, f.name, f.path, f.data, `${options.what ?? 'sweep config'}: data folder ${f.data} of model ${f.path}`);
  let next = 0;
  const models = spec.models.map((m) => ('path' in m ? files[next++].name : m));
  const { runner, close } = makeRunner(stores, options);
  let outcome: ExecutionOutcome;
  try {
    outcome = await runner.runChain('sweep', { ...spec, models, targets }, 'sweep-1');
  } finally {
    await close();
  }
  if (outcome.status !== 'SUCCEEDED') return { outcome, comparison: null, files: null };
  const sweepId = (outcome.output as { sweepId: string }).sweepId;
  await mkdir(outDir, { recursive: true });
  const written = { comparison: join(outDir, 'comparison.json'), report: join(outDir, 'sweep.html') };
  await copyFile(join(stores.results.root, ...resultKeys.sweep(sweepId).split('/')), written.comparison);
  await copyFile(join(stores.results.root, ...resultKeys.sweepReport(sweepId).split('/')), written.report);
  return { outcome, comparison: JSON.parse(await readFile(written.comparison, 'utf8')), files: written };
}
