/**
 * Data folders (DESIGN.md "Object layout"): under one ObjectStore prefix
 *   calib-inputs.npy                calibration inputs (activation ranges)
 *   val-inputs.npy, val-labels.npy  validation split; labels optional (no labels = fidelity mode)
 *   select-inputs.npy, select-labels.npy  optional selection split (the search picks its final
 *                                   policy on it, never rewards on it; absent: carved out of val,
 *                                   shared/data/selection-split.ts)
 *   test-inputs.npy, test-labels.npy  optional held-out split
 *   meta.json                       optional {"inputScale": s, "inputOffset": o}
 * Inputs are float32 (float64 is converted) in the model's layout [N, ...], or uint8, which
 * becomes x * inputScale + inputOffset (default 1/255 and 0: bytes 0..255 -> [0, 1]).
 * Float inputs with a NaN or an infinity are refused (InvalidDataError naming the file, the
 * count and the first index). meta.json only applies to uint8 inputs. Labels are int64/int32
 * (also uint8/int8/int16) class indices, shape [N] or [N, 1].
 */
import { limits } from '../limits';
import { z } from 'zod';
import { InvalidDataError } from '../errors';
import type { ObjectStore } from '../store/object-store';
import { countNonFinite, decodeNpy, type NpyArray } from './npy';
import { describeIssues } from '../validate';

export const DatasetMeta = z
  .object({
    /** Multiplier for uint8 inputs (default 1/255). */
    inputScale: z.number().positive().default(1 / 255),
    /** Added after scaling uint8 inputs (default 0). */
    inputOffset: z.number().default(0),
  })
  .passthrough();
export type DatasetMeta = z.infer<typeof DatasetMeta>;

export const defaultMeta: DatasetMeta = { inputScale: 1 / 255, inputOffset: 0 };

export type SplitName = 'calib' | 'val' | 'select' | 'test';

export interface Split {
  name: SplitName;
  /** Raw inputs as stored (float32, float64 or uint8), shape [N, ...]. */
  inputs: NpyArray;
  /** Class indices, or null when the split has no labels. */
  labels: Int32Array | null;
  samples: number;
  /** Shape of one sample (inputs.shape without N). */
  sampleShape: number[];
  meta: DatasetMeta;
}

export interface Dataset {
  location: string;
  meta: DatasetMeta;
  calib: Split | null;
  val: Split | null;
  select: Split | null;
  test: Split | null;
}

export const dataFiles = {
  meta: 'meta.json',
  inputs: (split: SplitName) => `${split}-inputs.npy`,
  labels: (split: SplitName) => `${split}-labels.npy`,
};

/** The store key of a data folder's file. */
export const dataKey = (prefix: string, file: string): string => (prefix === '' || prefix.endsWith('/') ? `${prefix}${file}` : `${prefix}/${file}`);
const join = dataKey;

/** Reads meta.json under the prefix, or the defaults when absent. */
export async function loadMeta(store: ObjectStore, prefix: string): Promise<DatasetMeta> {
  const key = join(prefix, dataFiles.meta);
  if (!(await store.exists(key))) return { ...defaultMeta };
  const text = new TextDecoder().decode(await store.get(key, { maxBytes: limits.jsonBytes }));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidDataError(`${key} in ${store.location} is not valid JSON: ${(err as Error).message}`, { key });
  }
  const parsed = DatasetMeta.safeParse(value);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error.issues);
    throw new InvalidDataError(`${key} in ${store.location}: ${issues}; expected {"inputScale": number > 0, "inputOffset": number}`, { key });
  }
  return parsed.data;
}

/** Class indices from a labels array (integer dtype, shape [N] or [N, 1]). */
export function labelsFromNpy(array: NpyArray, what: string): Int32Array {
  const { shape, dtype } = array;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) {
    throw new InvalidDataError(`${what} has shape (${shape.join(', ')}); labels must be one class index per sample, shape (N,) or (N, 1)`, { file: what });
  }
  if (dtype === 'float32' || dtype === 'float64') {
    throw new InvalidDataError(`${what} is ${dtype}; labels must be integer class indices (int64 or int32)`, { file: what });
  }
  const out = new Int32Array(shape[0]);
  for (let i = 0; i < out.length; i++) {
    const v = Number(array.data[i]);
    if (v < 0 || v > 0x7fffffff) throw new InvalidDataError(`${what}[${i}] = ${v} is not a class index (must be >= 0)`, { file: what, index: i, value: v });
    out[i] = v;
  }
  return out;
}

/** Loads one split, or null when its inputs file is absent. */
export async function loadSplit(store: ObjectStore, prefix: string, name: SplitName, meta: DatasetMeta): Promise<Split | null> {
  const inputsKey = join(prefix, dataFiles.inputs(name));
  if (!(await store.exists(inputsKey))) return null;
  const where = `${inputsKey} in ${store.location}`;
  const inputs = decodeNpy(await store.get(inputsKey, { maxBytes: limits.dataFileBytes }), where);
  if (!['float32', 'float64', 'uint8'].includes(inputs.dtype)) {
    throw new InvalidDataError(`${where} is ${inputs.dtype}; inputs must be float32 or uint8 (with meta.json inputScale/inputOffset)`, { file: inputsKey });
  }
  if (inputs.shape.length < 2 || inputs.shape[0] === 0) {
    throw new InvalidDataError(`${where} has shape (${inputs.shape.join(', ')}); inputs must be [N, ...] with N >= 1 samples in the model's layout`, { file: inputsKey });
  }
  const bad = countNonFinite(inputs.data);
  if (bad.count > 0) {
    const per = inputs.shape.slice(1).reduce((a, b) => a * b, 1);
    throw new InvalidDataError(
      `${where} holds ${bad.count} NaN/Inf value${bad.count === 1 ? '' : 's'}, the first at flat index ${bad.first} (sample ${Math.floor(bad.first / per)}); ` +
        'replace or drop those samples',
      { file: inputsKey, count: bad.count, firstIndex: bad.first },
    );
  }
  const labelsKey = join(prefix, dataFiles.labels(name));
  let labels: Int32Array | null = null;
  if (await store.exists(labelsKey)) {
    labels = labelsFromNpy(decodeNpy(await store.get(labelsKey, { maxBytes: limits.dataFileBytes }), `${labelsKey} in ${store.location}`), `${labelsKey} in ${store.location}`);
    if (labels.length !== inputs.shape[0]) {
      throw new InvalidDataError(`${labelsKey} has ${labels.length} labels but ${inputsKey} has ${inputs.shape[0]} samples; they must match one to one`, {
        labels: labels.length,
        samples: inputs.shape[0],
      });
    }
  }
  return { name, inputs, labels, samples: inputs.shape[0], sampleShape: inputs.shape.slice(1), meta };
}

/** Loads meta.json and the requested splits (default calib, val, test) from a data folder. */
export async function loadDataset(store: ObjectStore, prefix: string, splits: SplitName[] = ['calib', 'val', 'test']): Promise<Dataset> {
  const meta = await loadMeta(store, prefix);
  const load = (s: SplitName) => (splits.includes(s) ? loadSplit(store, prefix, s, meta) : Promise.resolve(null));
  const [calib, val, select, test] = await Promise.all([load('calib'), load('val'), load('select'), load('test')]);
  const location = `${store.location}/${prefix}`;
  if (splits.length > 0 && !calib && !val && !select && !test) {
    // One split asked for (haq eval --split): say what it is for; several: the folder is empty of data.
    if (splits.length === 1) throw missingSplit(location, splits[0]);
    throw new InvalidDataError(
      `no data in ${store.location}${prefix ? `/${prefix}` : ''}: expected ${splits.map((s) => dataFiles.inputs(s)).join(' or ')}`,
      { prefix },
    );
  }
  return { location, meta, calib, val, select, test };
}

/** What each split is for, in the error that says it is missing. */
const splitPurpose: Record<SplitName, string> = {
  calib: 'the calibration samples for activation ranges and accuracy recovery',
  val: 'the validation split the search scores policies on',
  select: 'the selection split the final choice is made on',
  test: 'the held-out test split',
};

/**
 * The error for a split that is needed and absent: the file, its use and the fix; `holds`, when
 * the caller listed the folder, says what is there instead.
 */
export function missingSplit(location: string, name: SplitName, holds?: readonly string[]): InvalidDataError {
  const there = holds ? `; it holds ${holds.length ? holds.slice(0, 8).join(', ') + (holds.length > 8 ? ', ...' : '') : 'nothing'}` : '';
  return new InvalidDataError(
    `${location} has no ${dataFiles.inputs(name)} (${splitPurpose[name]})${there}; add it: samples of the model's input as a float32 or uint8 .npy, ` +
      `with ${dataFiles.labels(name)} for top-1 (README "Data folders")`,
    { split: name },
  );
}

/** A split that must be present: throws InvalidDataError naming the missing file, its use and the fix. */
export function requireSplit(dataset: Dataset, name: SplitName): Split {
  const split = dataset[name];
  if (!split) throw missingSplit(dataset.location, name);
  return split;
}

/** Samples [start, end) of a split, as a view on its arrays (no copy). */
export function sampleRange(split: Split, start: number, end: number): Split {
  const per = split.sampleShape.reduce((a, b) => a * b, 1);
  return {
    ...split,
    inputs: { ...split.inputs, data: split.inputs.data.subarray(start * per, end * per) as typeof split.inputs.data, shape: [end - start, ...split.sampleShape] },
    labels: split.labels ? split.labels.subarray(start, end) : null,
    samples: end - start,
  };
}

/** The first `samples` samples of a split (the whole split when `samples` is 0 or not below its size). */
export function limitSplit(split: Split, samples: number): Split {
  return samples > 0 && samples < split.samples ? sampleRange(split, 0, samples) : split;
}

/**
 * Samples [start, start + count) as float32, uint8 scaled by meta (x * inputScale + inputOffset).
 * Returns a new array with dims [count, ...sampleShape].
 */
export function inputBatch(split: Split, start: number, count: number): { data: Float32Array; dims: number[] } {
  const per = split.sampleShape.reduce((a, b) => a * b, 1);
  const end = Math.min(split.samples, start + count);
  const n = Math.max(0, end - start);
  const src = split.inputs.data;
  const out = new Float32Array(n * per);
  const from = start * per;
  if (split.inputs.dtype === 'uint8') {
    const { inputScale, inputOffset } = split.meta;
    for (let i = 0; i < out.length; i++) out[i] = (src[from + i] as number) * inputScale + inputOffset;
  } else {
    for (let i = 0; i < out.length; i++) out[i] = src[from + i] as number;
  }
  return { data: out, dims: [n, ...split.sampleShape] };
}

/** Batch ranges covering [0, samples): [{start, count}, ...], the last one possibly shorter. */
export function batchRanges(samples: number, batchSize: number): Array<{ start: number; count: number }> {
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new InvalidDataError(`batch size ${batchSize} must be a positive integer`);
  const out: Array<{ start: number; count: number }> = [];
  for (let start = 0; start < samples; start += batchSize) out.push({ start, count: Math.min(batchSize, samples - start) });
  return out;
}

/**
 * Checks that samples of shape `sampleShape` fit a model input declared as `modelDims`
 * ([batch, ...], null = dynamic) and returns the batch-less shape to feed.
 */
export function checkSampleShape(modelDims: Array<number | null>, sampleShape: number[], what: string, inputName: string): number[] {
  const declared = `[${modelDims.map((d, i) => d ?? (i === 0 ? 'N' : '?')).join(', ')}]`;
  const fits = modelDims.length === sampleShape.length + 1 && modelDims.slice(1).every((d, i) => d === null || d === sampleShape[i]);
  if (!fits) {
    throw new InvalidDataError(
      `${what} holds samples of shape [${sampleShape.join(', ')}] (array [N, ${sampleShape.join(', ')}]) but the model input "${inputName}" is ${declared}; ` +
        `save the data in the model's layout, [N, ${modelDims.slice(1).map((d) => d ?? '?').join(', ')}]`,
      { sampleShape, modelDims },
    );
  }
  return sampleShape;
}
