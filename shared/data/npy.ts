/**
 * NumPy .npy reader and writer (format spec: numpy.lib.format, versions 1.0, 2.0 and 3.0).
 *
 * File = magic "\x93NUMPY", major, minor, header length (uint16 LE for v1, uint32 LE for v2/v3),
 * an ASCII (v3: UTF-8) Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (N, C), } padded with spaces and a newline, then the raw array data.
 *
 * Supported dtypes: float32, float64, uint8, int8, int16, uint16, int32, int64 ('<' or '|'
 * byte order; '>' big-endian data is byte-swapped on read). Fortran-order arrays are transposed
 * to C (row-major) order on read, so `data` is always row-major for `shape`.
 * Pure: bytes in, arrays out; errors are InvalidDataError naming the file.
 */
import { InvalidDataError } from '../errors';

export type NpyDtype = 'float32' | 'float64' | 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'int64';

export type NpyData = Float32Array | Float64Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | BigInt64Array;

export interface NpyArray {
  dtype: NpyDtype;
  /** Row-major (C order) values. */
  data: NpyData;
  shape: number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const dtypes: Record<string, { dtype: NpyDtype; size: number }> = {
  f4: { dtype: 'float32', size: 4 },
  f8: { dtype: 'float64', size: 8 },
  u1: { dtype: 'uint8', size: 1 },
  i1: { dtype: 'int8', size: 1 },
  b1: { dtype: 'uint8', size: 1 },
  i2: { dtype: 'int16', size: 2 },
  u2: { dtype: 'uint16', size: 2 },
  i4: { dtype: 'int32', size: 4 },
  i8: { dtype: 'int64', size: 8 },
};

const descrOf: Record<NpyDtype, string> = {
  float32: '<f4',
  float64: '<f8',
  uint8: '|u1',
  int8: '|i1',
  int16: '<i2',
  uint16: '<u2',
  int32: '<i4',
  int64: '<i8',
};

function allocate(dtype: NpyDtype, n: number): NpyData {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'uint8': return new Uint8Array(n);
    case 'int8': return new Int8Array(n);
    case 'int16': return new Int16Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
  }
}

const nativeLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A typed array over a buffer of values in the platform's byte order. */
function typedView(dtype: NpyDtype, buffer: ArrayBufferLike, n: number): NpyData {
  switch (dtype) {
    case 'float32': return new Float32Array(buffer, 0, n);
    case 'float64': return new Float64Array(buffer, 0, n);
    case 'uint8': return new Uint8Array(buffer, 0, n);
    case 'int8': return new Int8Array(buffer, 0, n);
    case 'int16': return new Int16Array(buffer, 0, n);
    case 'uint16': return new Uint16Array(buffer, 0, n);
    case 'int32': return new Int32Array(buffer, 0, n);
    case 'int64': return new BigInt64Array(buffer, 0, n);
  }
}

/** How many values of a float array are NaN or +-Inf, and the flat index of the first one (-1: none). */
export function countNonFinite(data: NpyData): { count: number; first: number } {
  let count = 0;
  let first = -1;
  if (!(data instanceof Float32Array || data instanceof Float64Array)) return { count, first };
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) {
      // NaN - NaN and Inf - Inf are NaN; every finite value gives 0.
      count++;
      if (first < 0) first = i;
    }
  }
  return { count, first };
}

/** The dtype of a typed array (for writing). */
export function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Uint16Array) return 'uint16';
  if (data instanceof Int32Array) return 'int32';
  return 'int64';
}

interface Header {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

function parseHeader(text: string, what: string): Header {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new InvalidDataError(`${what}: the .npy header ${JSON.stringify(text.trim())} lacks descr, fortran_order or shape`, { file: what });
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new InvalidDataError(`${what}: bad shape (${shapeText}) in the .npy header`, { file: what });
  return { descr, fortranOrder: fortran === 'True', shape };
}

/** Parses .npy bytes. `what` names the file in messages. */
export function decodeNpy(bytes: Uint8Array, what = 'array.npy'): NpyArray {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new InvalidDataError(`${what} is not a NumPy .npy file (no \\x93NUMPY magic); save arrays with numpy.save`, { file: what });
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new InvalidDataError(`${what} is truncated inside the .npy header`, { file: what });
    headerLength = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new InvalidDataError(`${what} uses .npy format version ${major}.${bytes[7]}; haq reads versions 1, 2 and 3`, { file: what });
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) throw new InvalidDataError(`${what} is truncated inside the .npy header`, { file: what });
  const headerText = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart));
  const header = parseHeader(headerText, what);
  const order = header.descr[0];
  const kind = dtypes[header.descr.slice(1)];
  if (!kind || !['<', '>', '|', '='].includes(order)) {
    throw new InvalidDataError(
      `${what} has dtype '${header.descr}'; haq reads float32/float64, uint8/int8, int16/uint16, int32 and int64 arrays`,
      { file: what, descr: header.descr },
    );
  }
  const littleEndian = order !== '>';
  const n = header.shape.reduce((a, b) => a * b, 1);
  const expected = n * kind.size;
  if (bytes.length - dataStart < expected) {
    throw new InvalidDataError(
      `${what} is truncated: shape (${header.shape.join(', ')}) of ${kind.dtype} needs ${expected} data bytes but the file has ${bytes.length - dataStart}`,
      { file: what },
    );
  }
  let data: NpyData;
  if ((littleEndian && nativeLittleEndian) || kind.size === 1) {
    // Fast path: copy the bytes into a fresh (aligned) buffer and view it as the dtype.
    const copy = bytes.slice(dataStart, dataStart + expected);
    data = typedView(kind.dtype, copy.buffer, n);
  } else {
    data = allocate(kind.dtype, n);
    readValues(view, dataStart, kind.dtype, littleEndian, data);
  }
  if (header.fortranOrder && header.shape.length > 1) {
    return { dtype: kind.dtype, shape: header.shape, data: fortranToC(data, header.shape) };
  }
  return { dtype: kind.dtype, shape: header.shape, data };
}

function readValues(view: DataView, offset: number, dtype: NpyDtype, le: boolean, out: NpyData): void {
  const n = out.length;
  switch (dtype) {
    case 'float32': for (let i = 0; i < n; i++) out[i] = view.getFloat32(offset + 4 * i, le); break;
    case 'float64': for (let i = 0; i < n; i++) out[i] = view.getFloat64(offset + 8 * i, le); break;
    case 'uint8': for (let i = 0; i < n; i++) out[i] = view.getUint8(offset + i); break;
    case 'int8': for (let i = 0; i < n; i++) out[i] = view.getInt8(offset + i); break;
    case 'int16': for (let i = 0; i < n; i++) out[i] = view.getInt16(offset + 2 * i, le); break;
    case 'uint16': for (let i = 0; i < n; i++) out[i] = view.getUint16(offset + 2 * i, le); break;
    case 'int32': for (let i = 0; i < n; i++) out[i] = view.getInt32(offset + 4 * i, le); break;
    case 'int64': for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = view.getBigInt64(offset + 8 * i, le); break;
  }
}

/**
 * Fortran (column-major) data to C (row-major) order for the same logical shape: element
 * (i0, ..., ik) sits at sum(i_j * prod(shape[:j])) in Fortran order.
 */
export function fortranToC<T extends NpyData>(data: T, shape: number[]): T {
  const rank = shape.length;
  const fStrides = new Array<number>(rank);
  for (let j = 0, s = 1; j < rank; j++) {
    fStrides[j] = s;
    s *= shape[j];
  }
  const out = new (data.constructor as new (n: number) => T)(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let c = 0; c < data.length; c++) {
    let f = 0;
    for (let j = 0; j < rank; j++) f += index[j] * fStrides[j];
    out[c] = data[f];
    // Advance the row-major multi-index (last axis fastest).
    for (let j = rank - 1; j >= 0; j--) {
      if (++index[j] < shape[j]) break;
      index[j] = 0;
    }
  }
  return out;
}

/**
 * Encodes an array as .npy version 1.0 (2.0 when the header exceeds 65535 bytes), C order,
 * little-endian, header padded so the data starts at a multiple of 64 bytes (as NumPy does).
 */
export function encodeNpy(array: { data: NpyData; shape: number[] }): Uint8Array {
  const dtype = dtypeOf(array.data);
  const n = array.shape.reduce((a, b) => a * b, 1);
  if (n !== array.data.length) throw new InvalidDataError(`encodeNpy: ${array.data.length} values do not fill shape (${array.shape.join(', ')})`);
  const shapeText = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let dict = `{'descr': '${descrOf[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  let version = 1;
  let prefix = 10;
  if (dict.length + 1 + prefix > 65535) {
    version = 2;
    prefix = 12;
  }
  const pad = (64 - ((prefix + dict.length + 1) % 64)) % 64;
  dict = `${dict}${' '.repeat(pad)}\n`;
  const size = { float32: 4, float64: 8, uint8: 1, int8: 1, int16: 2, uint16: 2, int32: 4, int64: 8 }[dtype];
  const out = new Uint8Array(prefix + dict.length + n * size);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, dict.length, true);
  else view.setUint32(8, dict.length, true);
  for (let i = 0; i < dict.length; i++) out[prefix + i] = dict.charCodeAt(i);
  const start = prefix + dict.length;
  const d = array.data;
  for (let i = 0; i < n; i++) {
    const o = start + i * size;
    switch (dtype) {
      case 'float32': view.setFloat32(o, d[i] as number, true); break;
      case 'float64': view.setFloat64(o, d[i] as number, true); break;
      case 'uint8': view.setUint8(o, d[i] as number); break;
      case 'int8': view.setInt8(o, d[i] as number); break;
      case 'int16': view.setInt16(o, d[i] as number, true); break;
      case 'uint16': view.setUint16(o, d[i] as number, true); break;
      case 'int32': view.setInt32(o, d[i] as number, true); break;
      case 'int64': view.setBigInt64(o, d[i] as bigint, true); break;
    }
  }
  return out;
}
