/**
 * Activation calibration: the clip value of every quantizable layer's input, for every
 * bitwidth 1..8 and every method (max, percentile, MSE), computed once per search on the
 * calibration set and cached in the store (searchKeys.calibration) as this JSON object.
 *
 * Two passes of the FP32 model with the layer inputs exposed as outputs: the first finds each
 * tensor's min and max |x| (the sign decides unsigned vs signed quantization), the second
 * fills a histogram of |x| over [0, max |x|], from which clip-range.ts picks the clip values.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { inputBatch, type Split } from '../data/dataset';
import { InvalidDataError } from '../errors';
import { modelInput } from '../onnx/layers';
import { decodeModel } from '../onnx/proto';
import { ModelSession, type FloatTensor } from '../onnx/runtime';
import type { LayerTable } from '../onnx/types';
import { addToHistogramInPlace, clipRange, ClipMethod, emptyHistogram, type AbsHistogram } from './clip-range';
import { exposeLayerInputs } from './fake-quant';
import { getJson, putJson, type ObjectStore } from '../store/object-store';

const EightClips = z.array(z.number().nonnegative()).length(8);

export const LayerCalibration = z.object({
  name: z.string(),
  /** The activation tensor that was measured. */
  inputName: z.string(),
  min: z.number(),
  max: z.number(),
  /** max |x|, the top of the histogram. */
  maxAbs: z.number().nonnegative(),
  /** true when the calibration set produced a negative value: signed quantization. */
  signed: z.boolean(),
  /** Clip value alpha per method, index bits - 1. */
  clip: z.object({ max: EightClips, percentile: EightClips, mse: EightClips }),
});
export type LayerCalibration = z.infer<typeof LayerCalibration>;

export const Calibration = z.object({
  version: z.literal(1),
  modelHash: z.string(),
  samples: z.number().int().positive(),
  /** sha256 of the calibration samples as fed (float32, after the uint8 scaling): the same data gives the same hash. */
  dataSha256: z.string(),
  histogramBins: z.number().int().positive(),
  percentile: z.number(),
  layers: z.array(LayerCalibration).min(1),
});
export type Calibration = z.infer<typeof Calibration>;

export interface CalibrationOptions {
  /** Samples per onnxruntime run (default: as many as fit PASS_MEMORY_BYTES, at most 64; a model with a fixed batch dim uses that instead). */
  batchSize?: number;
  histogramBins?: number;
  percentile?: number;
  mseCandidates?: number;
  threads?: number;
}

/** sha256 of a float tensor's values (little-endian float32 bytes). */
export function tensorSha256(t: FloatTensor): string {
  return createHash('sha256').update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).digest('hex');
}

/**
 * Memory the tensors of one onnxruntime run of a pass over the calibration samples may take
 * (calibration, layer statistics): 1 GiB, so that Prepare holds the model, the statistics and
 * the recovery beside it within its Lambda (docs/deploy.md), whatever the model's resolution.
 */
export const PASS_MEMORY_BYTES = 2 ** 30;

/** Samples per run of a pass that needs `perSampleBytes` per sample: as many as fit PASS_MEMORY_BYTES, 1 to `max`. */
export function passBatchSize(perSampleBytes: number, max = 64): number {
  return Math.max(1, Math.min(max, Math.floor(PASS_MEMORY_BYTES / Math.max(1, perSampleBytes))));
}

/**
 * Samples per onnxruntime run of the model as a whole: as many as fit `copies` times their layer
 * inputs in PASS_MEMORY_BYTES, 1 to `max` (a pass over the calibration samples: 1 copy; a
 * quantized evaluation beside its FP32 reference: 2).
 */
export function activationBatchSize(table: LayerTable, copies = 1, max = 64): number {
  return passBatchSize(copies * layerInputBytesPerSample(table), max);
}

/** Bytes (float32) of one sample's layer inputs, each distinct input tensor once: what openLayerInputs returns per sample. */
export function layerInputBytesPerSample(table: LayerTable): number {
  const sizes = new Map(table.layers.map((l) => [l.inputName, l.inputShape.slice(1).reduce((a, b) => a * b, 1) * 4]));
  return [...sizes.values()].reduce((a, b) => a + b, 0);
}

/** The batch size a model accepts: its fixed batch dim, or the requested size when the dim is dynamic. */
export function modelBatchSize(declared: Array<number | null>, requested: number): number {
  return declared[0] ?? requested;
}

/**
 * Checks that data matches the model input (every dim but the batch) and yields batches of
 * `batch` samples; the last one is zero-padded to `batch` when `pad` (fixed-batch models).
 */
export function* batches(data: FloatTensor, batch: number, pad: boolean): Generator<{ tensor: FloatTensor; count: number }> {
  const n = data.dims[0];
  const per = data.dims.slice(1).reduce((a, b) => a * b, 1);
  for (let start = 0; start < n; start += batch) {
    const count = Math.min(batch, n - start);
    const rows = pad ? batch : count;
    const slice = data.data.subarray(start * per, (start + count) * per);
    const buf = rows === count ? slice : (() => {
      const b = new Float32Array(rows * per);
      b.set(slice);
      return b;
    })();
    yield { tensor: { data: buf, dims: [rows, ...data.dims.slice(1)] }, count };
  }
}

/** Throws InvalidDataError unless `data` has the model's input shape (any batch size). */
export function checkInputShape(data: FloatTensor, table: LayerTable, what = 'data'): void {
  const want = table.inputShape.slice(1);
  const got = data.dims.slice(1);
  const per = data.dims.reduce((a, b) => a * b, 1);
  if (data.dims.length !== table.inputShape.length || want.some((d, i) => d !== got[i]) || data.dims[0] < 1 || per !== data.data.length) {
    throw new InvalidDataError(
      `${what} has shape [${data.dims.join(', ')}] but the model input is [N, ${want.join(', ')}]; ` +
        `save the samples as one float32 .npy array in the model's layout`,
      { dims: data.dims, expected: table.inputShape },
    );
  }
}

/** The FP32 model with every layer input exposed, over a fixed set of samples. */
export interface LayerInputReader {
  /** The distinct layer input tensors (the model input among them when a layer reads it). */
  readonly names: readonly string[];
  /** One pass over the samples: per batch, each layer input [count, ...] (padding rows dropped). */
  batches(): AsyncGenerator<Map<string, FloatTensor>>;
  release(): Promise<void>;
}

/**
 * Opens the model with its layer inputs exposed, for passes over `data` (checked against the
 * model's input shape: InvalidDataError). Batches of `batchSize` samples (default: the layer
 * inputs of a batch within PASS_MEMORY_BYTES, at most 64 samples; a model with a fixed batch dim
 * uses that, zero-padding the last batch).
 */
export async function openLayerInputs(
  modelBytes: Uint8Array,
  table: LayerTable,
  data: FloatTensor,
  options: { batchSize?: number; threads?: number; what?: string } = {},
): Promise<LayerInputReader> {
  checkInputShape(data, table, options.what ?? 'calibration data');
  const model = decodeModel(modelBytes);
  const input = modelInput(model);
  const batch = modelBatchSize(input.dims, options.batchSize ?? activationBatchSize(table));
  const pad = input.dims[0] !== null;
  const { bytes, exposed } = exposeLayerInputs(model, table);
  const session = await ModelSession.create(bytes, { threads: options.threads, what: 'calibration model' });
  const names = [...new Set(table.layers.map((l) => l.inputName))];
  const rowsOf = (t: FloatTensor, count: number): FloatTensor => ({ data: t.data.subarray(0, (t.data.length / t.dims[0]) * count), dims: [count, ...t.dims.slice(1)] });
  return {
    names,
    async *batches() {
      for (const { tensor, count } of batches(data, batch, pad)) {
        const out = exposed.length ? await session.run({ [input.name]: tensor }, exposed) : {};
        yield new Map(names.map((n) => [n, rowsOf(n === input.name ? tensor : out[n], count)]));
      }
    },
    release: () => session.release(),
  };
}

/**
 * Calibrates every layer's activation clip values on `calib` (a tensor [N, ...input dims] or a
 * data split, e.g. the calib split of a data folder). Throws InvalidDataError when the data
 * does not have the model's input shape.
 */
export async function calibrate(modelBytes: Uint8Array, table: LayerTable, calibData: FloatTensor | Split, options: CalibrationOptions = {}): Promise<Calibration> {
  const calib: FloatTensor = 'sampleShape' in calibData ? inputBatch(calibData, 0, calibData.samples) : calibData;
  const { histogramBins = 2048, percentile = 99.99, mseCandidates = 100 } = options;
  const reader = await openLayerInputs(modelBytes, table, calib, options);
  const { names } = reader;
  const stats = new Map(names.map((n) => [n, { min: Infinity, max: -Infinity, maxAbs: 0 }]));
  const histograms = new Map<string, AbsHistogram>();
  try {
    for await (const tensors of reader.batches()) {
      for (const [n, { data: values }] of tensors) {
        const s = stats.get(n)!;
        for (let i = 0; i < values.length; i++) {
          const v = values[i];
          if (v < s.min) s.min = v;
          if (v > s.max) s.max = v;
          const a = Math.abs(v);
          if (a > s.maxAbs) s.maxAbs = a;
        }
      }
    }
    for (const n of names) {
      const s = stats.get(n)!;
      if (!Number.isFinite(s.maxAbs)) throw new InvalidDataError(`calibration produced a non-finite value in tensor "${n}"; check the calibration data for NaN/Inf`);
      histograms.set(n, emptyHistogram(s.maxAbs, histogramBins));
    }
    for await (const tensors of reader.batches()) {
      for (const [n, { data: values }] of tensors) addToHistogramInPlace(histograms.get(n)!, values);
    }
  } finally {
    await reader.release();
  }
  const bitsList = [1, 2, 3, 4, 5, 6, 7, 8];
  return {
    version: 1,
    modelHash: table.modelHash,
    samples: calib.dims[0],
    dataSha256: tensorSha256(calib),
    histogramBins,
    percentile,
    layers: table.layers.map((l) => {
      const s = stats.get(l.inputName)!;
      const h = histograms.get(l.inputName)!;
      const signed = s.min < 0;
      const clip = Object.fromEntries(
        ClipMethod.options.map((m) => [m, bitsList.map((b) => clipRange(h, m, b, signed, { percentile, mseCandidates }))]),
      ) as LayerCalibration['clip'];
      return { name: l.name, inputName: l.inputName, min: s.min, max: s.max, maxAbs: s.maxAbs, signed, clip };
    }),
  };
}

/**
 * The search's calibration from the store (searchKeys.calibration(searchId)), or computed by
 * `compute` and stored there when absent or made for another model/layer table. Idempotent: a
 * retried Prepare step reuses the stored object.
 */
export async function cachedCalibration(store: ObjectStore, key: string, table: LayerTable, compute: () => Promise<Calibration>): Promise<Calibration> {
  if (await store.exists(key)) {
    const stored = await getJson(store, key, Calibration);
    const sameLayers = stored.layers.map((l) => l.name).join('\n') === table.layers.map((l) => l.name).join('\n');
    if (stored.modelHash === table.modelHash && sameLayers) return stored;
  }
  const calibration = await compute();
  await putJson(store, key, calibration);
  return calibration;
}
