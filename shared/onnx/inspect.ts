/**
 * Model bytes -> layer table (the adapter around the pure layers.ts): decode, hash, resolve the
 * input shape, find the quantizable layers, resolve their shapes with onnxruntime, assemble.
 */
import { createHash } from 'node:crypto';
import { checkSampleShape } from '../data/dataset';
import { buildLayerTable, inputShapeFromData, modelInput, resolveInputShape, shapeNames } from './layers';
import { decodeModel, type ModelProto } from './proto';
import { resolveShapes } from './runtime';
import type { LayerTable } from './types';

export interface InspectOptions {
  /** Concrete input shape (from --input-shape); needed when a non-batch dim is dynamic and no data is given. */
  inputShape?: number[];
  /** Data at hand: its sample shape fills the dynamic dims (and must agree with inputShape). */
  data?: { sampleShape: number[]; what: string };
  /** Names the model in messages. */
  what?: string;
}

/** sha256 (hex) of the model bytes. */
export function modelHash(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The layer table of ONNX model bytes. Throws UnsupportedModelError / InvalidInputError with one-line messages. */
export async function inspectModel(bytes: Uint8Array, options: InspectOptions = {}): Promise<LayerTable> {
  const what = options.what ?? 'model';
  const model = decodeModel(bytes, what);
  return inspectDecoded(model, modelHash(bytes), options);
}

/** Same as inspectModel for an already decoded model. */
export async function inspectDecoded(model: ModelProto, hash: string, options: InspectOptions = {}): Promise<LayerTable> {
  const what = options.what ?? 'model';
  const input = modelInput(model, what);
  let inputShape: number[];
  if (options.data) {
    checkSampleShape(input.dims, options.data.sampleShape, options.data.what, input.name ?? '');
    inputShape = inputShapeFromData(input, options.data.sampleShape, options.data.what, options.inputShape);
  } else {
    inputShape = resolveInputShape(input, options.inputShape);
  }
  // Resolve shapes even without layers: the model must load in onnxruntime (unknown ops are
  // reported first), then buildLayerTable reports "no quantizable layer".
  const shapes = await resolveShapes(model, { name: input.name, shape: inputShape }, shapeNames(model), { what });
  return buildLayerTable(model, { modelHash: hash, inputShape, shapes, what });
}
