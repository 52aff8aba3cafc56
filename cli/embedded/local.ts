/**
 * One search or sweep on this machine: stages the model and data into a filesystem "models
 * bucket" under <out>/.haq, runs statemachines/search.asl.json (or sweep) with the real
 * handlers, and returns the result with its files.
 */
import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { SearchConfigInput } from '../../shared/config';
import { InvalidInputError } from '../../shared/errors';
import { modelKeys, resultKeys, searchKeys } from '../../shared/keys';
import { FinalizeOutput, type UpdateOutput } from '../../functions/lib/contracts';
import { searchRequest, slug } from '../../functions/lib/search-input';
import type { SweepSpec } from '../../functions/compare';
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

export function modelNameOf(modelPath: string): string {
  const file = basename(modelPath);
  const name = file === 'model.onnx' ? basename(dirname(resolve(modelPath))) : file.replace(/\.onnx$/i, '');
  return slug(name);
}

/** `--hardware ./chip.json` becomes the target object inline (the state machine carries no paths). */
export async function resolveHardwareFlag(hardware: string | Record<string, unknown> | undefined): Promise<string | Record<string, unknown> | undefined> {
  if (typeof hardware !== 'string' || !/\.json$/i.test(hardware)) return hardware;
  let text: string;
  try {
    text = await readFile(hardware, 'utf8');
  } catch {
    throw new InvalidInputError(`--hardware ${hardware}: no such file; pass a built-in target name or a custom target JSON file`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidInputError(`--hardware ${hardware} is not valid JSON: ${(err as Error).message}`);
  }
}

async function stageModel(stores: LocalStores, name: string, modelPath: string, dataDir: string): Promise<void> {
  const modelInfo = await stat(modelPath).catch(() => null);
  if (!modelInfo?.isFile()) throw new InvalidInputError(`model ${modelPath}: no such file; pass an .onnx file`);
  const dataInfo = await stat(dataDir).catch(() => null);
  if (!dataInfo?.isDirectory()) throw new InvalidInputError(`--data ${dataDir} is not a folder; pass the folder with calib-inputs.npy, val-inputs.npy, val-labels.npy`);
  const root = stores.models.root;
  const modelDest = join(root, ...modelKeys.model(name).split('/'));
  await mkdir(dirname(modelDest), { recursive: true });
  await copyFile(modelPath, modelDest);
  const dataDest = join(root, ...modelKeys.dataPrefix(name).split('/'));
  await rm(dataDest, { recursive: true, force: true });
  await mkdir(dataDest, { recursive: true });
  for (const f of await readdir(dataDir)) {
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

export interface LocalSweepOptions extends LocalRunHooks {
  spec: SweepSpec;
  /** Folder the spec's relative model/data paths are resolved against. */
  baseDir: string;
  outDir: string;
}

/**
 * sweep.json for a local run lists model files: `{ "models": [{ "path": "m.onnx", "data": "dir" }], ... }`
 * (or `{ name, modelKey, dataPrefix }` for models already in the store).
 */
export async function runLocalSweep(options: LocalSweepOptions): Promise<{ outcome: ExecutionOutcome; comparison: unknown; files: { comparison: string; report: string } | null }> {
  const outDir = resolve(options.outDir);
  const stores = localStores(join(outDir, '.haq'));
  const models = [];
  for (const m of options.spec.models as Array<string | Record<string, unknown>>) {
    if (typeof m === 'object' && typeof m.path === 'string') {
      const path = resolve(options.baseDir, m.path);
      const data = resolve(options.baseDir, String(m.data ?? join(dirname(path), 'data')));
      const name = typeof m.name === 'string' ? m.name : modelNameOf(path);
      await stageModel(stores, name, path, data);
      models.push(name);
    } else models.push(m);
  }
  const targets = [];
  for (const t of options.spec.targets) targets.push(await resolveHardwareFlag(t as string));
  const spec = { ...options.spec, models, targets };
  const { runner, close } = makeRunner(stores, options);
  let outcome: ExecutionOutcome;
  try {
    outcome = await runner.runChain('sweep', spec, 'sweep-1');
  } finally {
    await close();
  }
  if (outcome.status !== 'SUCCEEDED') return { outcome, comparison: null, files: null };
  const sweepId = (outcome.output as { sweepId: string }).sweepId;
  await mkdir(outDir, { recursive: true });
  const files = { comparison: join(outDir, 'comparison.json'), report: join(outDir, 'sweep.html') };
  await copyFile(join(stores.results.root, ...resultKeys.sweep(sweepId).split('/')), files.comparison);
  await copyFile(join(stores.results.root, ...resultKeys.sweepReport(sweepId).split('/')), files.report);
  return { outcome, comparison: JSON.parse(await readFile(files.comparison, 'utf8')), files };
}
