/**
 * ONNX ModelProto decode/encode over the `onnx-proto` package (the full onnx.proto schema of
 * ONNX 1.10, IR version 8, compiled for protobufjs 6). Decoding then re-encoding keeps every
 * field that schema knows; fields added to onnx.proto after 1.10 are dropped by protobufjs.
 *
 * Pure: bytes in, objects out. Every failure is an UnsupportedModelError that says what is
 * wrong with the file (not protobuf, truncated, no graph, external weights, ...).
 */
import onnxProto from 'onnx-proto';
import { UnsupportedModelError } from '../errors';

export const onnx = onnxProto.onnx;
export type ModelProto = onnxProto.onnx.IModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** TensorProto.DataType values (onnx.proto). */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

export type ElementType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool' | 'float64';

const elementTypeCodes: Record<ElementType, number> = {
  float32: DataType.FLOAT,
  uint8: DataType.UINT8,
  int8: DataType.INT8,
  int32: DataType.INT32,
  int64: DataType.INT64,
  bool: DataType.BOOL,
  float64: DataType.DOUBLE,
};

export function elementTypeCode(type: ElementType): number {
  return elementTypeCodes[type];
}

/** Readable name of a TensorProto.DataType code, for messages. */
export function dataTypeName(code: number): string {
  const entry = Object.entries(DataType).find(([, v]) => v === code);
  return entry ? entry[0].toLowerCase() : `data type ${code}`;
}

/** AttributeProto.AttributeType values (onnx.proto). */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
} as const;

/** protobufjs decodes int64 as Long objects (or numbers, or strings from JSON): one number. */
export function toNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string') return Number(value);
  const v = value as { toNumber?: () => number; low?: number; high?: number };
  if (typeof v.toNumber === 'function') return v.toNumber();
  if (typeof v.low === 'number' && typeof v.high === 'number') return v.high * 2 ** 32 + (v.low >>> 0);
  return Number(value);
}

/**
 * Decodes ONNX bytes. `what` names the file in messages (e.g. its path).
 * Throws UnsupportedModelError for bytes that are not a protobuf ModelProto, a truncated
 * file, a model without a graph or nodes, and a model without an opset import.
 */
export function decodeModel(bytes: Uint8Array, what = 'model'): ModelProto {
  if (bytes.length === 0) throw new UnsupportedModelError(`${what} is empty (0 bytes); expected an ONNX model file`, { what });
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    const reason = (err as Error).message;
    // Exporters write ModelProto fields in order, so a real model starts with ir_version
    // (field 1, varint: tag byte 0x08); running out of bytes after that means truncation.
    const truncated = bytes[0] === 0x08 && /index out of range/.test(reason);
    throw new UnsupportedModelError(
      truncated
        ? `${what} is not a complete ONNX model: the protobuf data ends early (${reason}); the file is truncated or not ONNX, re-export or re-download it`
        : `${what} is not an ONNX model: protobuf decoding failed (${reason})${looksLikeText(bytes) ? ', it looks like a text file' : ''}; pass a .onnx file`,
      { what, reason },
    );
  }
  // Arbitrary bytes sometimes decode as a protobuf message by luck; a real model has a graph
  // with nodes and at least one opset import (IR version >= 3).
  if (!model.graph) {
    throw new UnsupportedModelError(`${what} is not an ONNX model: it has no graph (${bytes.length} bytes); pass a .onnx file`, { what });
  }
  if (!model.graph.node || model.graph.node.length === 0) {
    throw new UnsupportedModelError(`${what} has an empty graph (no nodes); pass a model with at least one layer`, { what });
  }
  if (!model.opsetImport || model.opsetImport.length === 0) {
    throw new UnsupportedModelError(
      `${what} has no opset import (IR version ${toNumber(model.irVersion)}); re-export it with a current ONNX exporter`,
      { what },
    );
  }
  return model;
}

function looksLikeText(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 256);
  return head.length > 0 && head.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127));
}

/** Encodes a ModelProto (decoded or built) back to bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  // protobufjs returns a Buffer on Node: hand out a plain Uint8Array view.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The default-domain opset version the model imports (0 when absent). */
export function opsetVersion(model: ModelProto): number {
  const entry = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? toNumber(entry.version) : 0;
}

/** A tensor's dims as numbers. */
export function tensorDims(tensor: TensorProto): number[] {
  return (tensor.dims ?? []).map(toNumber);
}

function elementCount(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * A numeric tensor's values as a new Float32Array (float, double, integer and float16 data;
 * raw_data is little-endian per onnx.proto). External data and strings are rejected.
 */
export function tensorToFloat32(tensor: TensorProto, what = tensor.name ?? 'tensor'): Float32Array {
  const dims = tensorDims(tensor);
  const n = elementCount(dims);
  const type = tensor.dataType ?? DataType.UNDEFINED;
  if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (tensor.externalData?.length ?? 0) > 0) {
    throw new UnsupportedModelError(
      `tensor "${what}" stores its data in an external file; save the model with all weights inside the .onnx file (onnx.save(model, path, save_as_external_data=False))`,
      { tensor: what },
    );
  }
  const raw = tensor.rawData && tensor.rawData.length > 0 ? tensor.rawData : null;
  const out = new Float32Array(n);
  if (raw) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const size = { [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT64]: 8, [DataType.UINT64]: 8, [DataType.INT32]: 4, [DataType.UINT32]: 4, [DataType.INT16]: 2, [DataType.UINT16]: 2, [DataType.FLOAT16]: 2, [DataType.INT8]: 1, [DataType.UINT8]: 1, [DataType.BOOL]: 1 }[type];
    if (!size) throw new UnsupportedModelError(`tensor "${what}" has ${dataTypeName(type)} data, which haq cannot read as numbers`, { tensor: what });
    if (raw.byteLength !== n * size) {
      throw new UnsupportedModelError(
        `tensor "${what}" holds ${raw.byteLength} bytes but dims [${dims.join(', ')}] of ${dataTypeName(type)} need ${n * size}; the model is corrupt`,
        { tensor: what },
      );
    }
    for (let i = 0; i < n; i++) {
      const o = i * size;
      switch (type) {
        case DataType.FLOAT: out[i] = view.getFloat32(o, true); break;
        case DataType.DOUBLE: out[i] = view.getFloat64(o, true); break;
        case DataType.INT64: out[i] = Number(view.getBigInt64(o, true)); break;
        case DataType.UINT64: out[i] = Number(view.getBigUint64(o, true)); break;
        case DataType.INT32: out[i] = view.getInt32(o, true); break;
        case DataType.UINT32: out[i] = view.getUint32(o, true); break;
        case DataType.INT16: out[i] = view.getInt16(o, true); break;
        case DataType.UINT16: out[i] = view.getUint16(o, true); break;
        case DataType.FLOAT16: out[i] = float16ToNumber(view.getUint16(o, true)); break;
        case DataType.INT8: out[i] = view.getInt8(o); break;
        default: out[i] = view.getUint8(o); break;
      }
    }
    return out;
  }
  // Typed repeated fields (onnx.proto: which field holds which data type).
  let values: ArrayLike<unknown> = [];
  if (type === DataType.FLOAT) values = tensor.floatData ?? [];
  else if (type === DataType.DOUBLE) values = tensor.doubleData ?? [];
  else if (type === DataType.INT64) values = tensor.int64Data ?? [];
  else if (type === DataType.UINT64 || type === DataType.UINT32) values = tensor.uint64Data ?? [];
  else if (type === DataType.FLOAT16) values = (tensor.int32Data ?? []).map((h) => float16ToNumber(h));
  else if ([DataType.INT32, DataType.INT16, DataType.UINT16, DataType.INT8, DataType.UINT8, DataType.BOOL].includes(type as 6)) values = tensor.int32Data ?? [];
  else throw new UnsupportedModelError(`tensor "${what}" has ${dataTypeName(type)} data, which haq cannot read as numbers`, { tensor: what });
  if (values.length !== n) {
    throw new UnsupportedModelError(
      `tensor "${what}" holds ${values.length} values but dims [${dims.join(', ')}] need ${n}; the model is corrupt`,
      { tensor: what },
    );
  }
  for (let i = 0; i < n; i++) out[i] = toNumber(values[i]);
  return out;
}

/** IEEE 754 half precision bits to a number. */
function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** A float32 TensorProto (raw little-endian data). */
export function float32Tensor(name: string, data: Float32Array, dims: number[]): TensorProto {
  const n = elementCount(dims);
  if (data.length !== n) throw new RangeError(`tensor ${name}: ${data.length} values for dims [${dims.join(', ')}] (${n} expected)`);
  const raw = new Uint8Array(n * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < n; i++) view.setFloat32(i * 4, data[i], true);
  return { name, dataType: DataType.FLOAT, dims, rawData: raw };
}

/** An int64 TensorProto (raw little-endian data), e.g. a Reshape shape. */
export function int64Tensor(name: string, data: ArrayLike<number | bigint>, dims: number[]): TensorProto {
  const n = elementCount(dims);
  if (data.length !== n) throw new RangeError(`tensor ${name}: ${data.length} values for dims [${dims.join(', ')}] (${n} expected)`);
  const raw = new Uint8Array(n * 8);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < n; i++) view.setBigInt64(i * 8, BigInt(data[i]), true);
  return { name, dataType: DataType.INT64, dims, rawData: raw };
}

/** The attribute of a node by name, or undefined. */
export function findAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = findAttribute(node, name);
  return a ? toNumber(a.i) : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = findAttribute(node, name);
  return a ? (a.ints ?? []).map(toNumber) : undefined;
}

export function attrString(node: NodeProto, name: string): string | undefined {
  const a = findAttribute(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : undefined;
}

/** The declared dims of a value (numbers; a dim_param or missing dim is null), or null when untyped. */
export function valueInfoDims(info: ValueInfoProto): Array<number | null> | null {
  const shape = info.type?.tensorType?.shape;
  if (!shape) return null;
  return (shape.dim ?? []).map((d) => {
    if (d.dimParam) return null;
    const v = d.dimValue === undefined || d.dimValue === null ? 0 : toNumber(d.dimValue);
    return v > 0 ? v : null;
  });
}

/** The element type code of a typed value (0 when unknown). */
export function valueInfoElementType(info: ValueInfoProto): number {
  return info.type?.tensorType?.elemType ?? 0;
}

/** Graph inputs that are real inputs (older IR versions also list every initializer as an input). */
export function graphDataInputs(graph: GraphProto): ValueInfoProto[] {
  const init = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((i) => !init.has(i.name));
}
