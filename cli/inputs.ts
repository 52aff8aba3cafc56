/**
 * Checks of what a user passes to the commands, made before any slow work (staging,
 * parsing the data, calibration, uploads): output folders, model and data paths, the
 * hardware target, the constraint and its feasibility, and the user's own paths in the
 * messages instead of store keys.
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { SearchConfig, type SearchConfigInput } from '../shared/config';
import { InvalidInputError } from '../shared/errors';
import { buildCostTable } from '../shared/hardware/cost-table';
import { resolveTarget } from '../shared/hardware/targets';
import { modelKeys } from '../shared/keys';
import { inspectDecoded, modelHash } from '../shared/onnx/inspect';
import { decodeModel } from '../shared/onnx/proto';
import type { LayerTable } from '../shared/onnx/types';
import { createBudgetModel } from '../shared/search/budget';
import { parse } from '../shared/validate';
import { slug } from '../functions/lib/search-input';
import { readHardwareOption } from './commands/cost';
import { readInputFile } from './commands/inspect';

/** A model's name from its path: the folder of a `model.onnx`, else the file name without .onnx. */
export function modelNameOf(modelPath: string): string {
  const file = basename(modelPath);
  const name = file === 'model.onnx' ? basename(dirname(resolve(modelPath))) : file.replace(/\.onnx$/i, '');
  return slug(name);
}

/**
 * A `hardware` value as the state machine takes it: a name stays a name, a custom target
 * file (resolved against `baseDir`) is read into its object, because the state machine
 * carries no paths.
 */
export async function resolveHardwareFlag(
  hardware: string | Record<string, unknown> | undefined,
  baseDir = '.',
): Promise<string | Record<string, unknown> | undefined> {
  if (typeof hardware !== 'string') return hardware;
  const text = hardware.trim();
  const isPath = !text.startsWith('{') && (/\.json$/i.test(text) || text.includes('/'));
  return readHardwareOption(isPath ? resolve(baseDir, text) : text);
}

/** --out must be a folder or not exist yet; checked before any work. */
export async function checkOutDir(outDir: string, flag = '--out'): Promise<void> {
  const info = await stat(outDir).catch(() => null);
  if (info && !info.isDirectory()) throw new InvalidInputError(`${flag} ${outDir} is a file; pass a folder (it is created when missing)`, { outDir });
}

/** --out naming a file to write must not be an existing folder; checked before any work. */
export async function checkOutFile(outFile: string, flag = '--out'): Promise<void> {
  const info = await stat(outFile).catch(() => null);
  if (info?.isDirectory()) throw new InvalidInputError(`${flag} ${outFile} is a folder; pass a file name, e.g. ${join(outFile, 'model.quant.onnx')}`, { outFile });
}

/** Writes an output file, creating its folder first (as `haq zoo --out` does). */
export async function writeOutFile(outFile: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(resolve(outFile)), { recursive: true });
  await writeFile(outFile, bytes);
}

/**
 * Runs `fn`, which writes into `outDir`; when it throws or `failed(result)` holds, removes
 * what this run created there (the folder itself when it did not exist, else its .haq work
 * folder when that did not exist), so a failed command leaves --out as it was.
 */
export async function leaveOutDirOnFailure<T>(outDir: string, fn: () => Promise<T>, failed: (result: T) => boolean): Promise<T> {
  const dir = resolve(outDir);
  const existed = await stat(dir).then(() => true, () => false);
  const workExisted = await stat(join(dir, '.haq')).then(() => true, () => false);
  const cleanUp = async () => {
    if (!existed) await rm(dir, { recursive: true, force: true });
    else if (!workExisted) await rm(join(dir, '.haq'), { recursive: true, force: true });
  };
  let result: T;
  try {
    result = await fn();
  } catch (err) {
    await cleanUp();
    throw err;
  }
  if (failed(result)) await cleanUp();
  return result;
}

/**
 * What a search can check before staging, parsing the data and calibrating: the files
 * exist, the hardware target is known, the constraint has a cost model on it and the budget
 * is feasible for this model's layers. A model whose layers need more than the file itself
 * (e.g. shapes from the data) is left to Prepare, which reports it with the same names.
 */
export async function checkSearchInputs(request: {
  modelPath: string;
  dataDir: string;
  config: Omit<SearchConfigInput, 'model' | 'modelKey' | 'dataPrefix'>;
}): Promise<void> {
  const bytes = await readInputFile(request.modelPath);
  const dataInfo = await stat(request.dataDir).catch(() => null);
  if (!dataInfo?.isDirectory()) {
    throw new InvalidInputError(`--data ${request.dataDir} is not a folder; pass the folder with calib-inputs.npy, val-inputs.npy, val-labels.npy`, {
      dataDir: request.dataDir,
    });
  }
  const hardware = await resolveHardwareFlag(request.config.hardware as string | Record<string, unknown> | undefined);
  const config = parse(SearchConfig, { ...request.config, ...(hardware === undefined ? {} : { hardware }), model: 'm', modelKey: 'm', dataPrefix: 'm/' }, 'search config');
  const target = resolveTarget(config.hardware);
  // Not an ONNX model at all: said now, naming the user's file. Layers that need more than
  // the file (shapes from the data) are Prepare's to resolve.
  const model = decodeModel(bytes, request.modelPath);
  let layers: LayerTable;
  try {
    layers = await inspectDecoded(model, modelHash(bytes), { inputShape: config.inputShape, what: request.modelPath });
  } catch {
    return;
  }
  const costTable = config.constraint.kind === 'size' ? null : buildCostTable(layers, target);
  createBudgetModel({ ...config.constraint, minBits: config.minBits, maxBits: config.maxBits, pinFirstLast: config.pinFirstLast }, layers, costTable);
}

/** Replaces the store keys of a staged model and its data in a message with the user's own paths. */
export function withUserPaths(message: string, name: string, paths: { modelPath: string; dataDir: string }): string {
  const dataDir = paths.dataDir.endsWith('/') ? paths.dataDir : `${paths.dataDir}/`;
  return message.split(modelKeys.model(name)).join(paths.modelPath).split(modelKeys.dataPrefix(name)).join(dataDir);
}

/** A Lambda-style cause ({"errorType","errorMessage"}) or plain text, as one line. */
export function describeCause(cause: string, name: string): string {
  let text = cause;
  try {
    const c = JSON.parse(cause) as { errorMessage?: string; Cause?: string };
    text = c.errorMessage ?? c.Cause ?? cause;
  } catch {
    // plain text
  }
  return (text.startsWith(`${name}: `) ? text.slice(name.length + 2) : text).replace(/\s*\n\s*/g, ' ');
}
