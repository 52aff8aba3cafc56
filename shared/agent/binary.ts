import { CorruptObjectError } from '../errors';

/**
 * A compact, versioned container for checkpoints: a 4-byte magic, a format version, a JSON
 * header (small values: counters, RNG state, hyper-parameters) and named Float32 tensors.
 *
 *   magic[4] u32 version u32 headerBytes header(utf-8 JSON) pad-to-4
 *   u32 tensorCount, then per tensor: u32 nameBytes name pad-to-4 u32 length float32[length]
 *
 * Little-endian throughout. Encoding the same values twice gives the same bytes.
 */
export interface Container {
  header: unknown;
  tensors: Map<string, Float32Array>;
}

const pad4 = (n: number): number => (n + 3) & ~3;

export function encodeContainer(magic: string, version: number, header: unknown, tensors: Array<[string, Float32Array]>): Uint8Array {
  if (magic.length !== 4) throw new RangeError(`magic must be 4 ASCII characters, got "${magic}"`);
  const enc = new TextEncoder();
  const headerBytes = enc.encode(JSON.stringify(header));
  const names = tensors.map(([name]) => enc.encode(name));
  let size = 4 + 4 + 4 + pad4(headerBytes.length) + 4;
  tensors.forEach(([, t], i) => {
    size += 4 + pad4(names[i].length) + 4 + 4 * t.length;
  });
  const buf = new ArrayBuffer(size);
  const bytes = new Uint8Array(buf);
  const view = new DataView(buf);
  for (let i = 0; i < 4; i++) bytes[i] = magic.charCodeAt(i);
  let off = 4;
  view.setUint32(off, version, true);
  view.setUint32(off + 4, headerBytes.length, true);
  off += 8;
  bytes.set(headerBytes, off);
  off += pad4(headerBytes.length);
  view.setUint32(off, tensors.length, true);
  off += 4;
  tensors.forEach(([, t], i) => {
    view.setUint32(off, names[i].length, true);
    off += 4;
    bytes.set(names[i], off);
    off += pad4(names[i].length);
    view.setUint32(off, t.length, true);
    off += 4;
    for (let k = 0; k < t.length; k++) view.setFloat32(off + 4 * k, t[k], true);
    off += 4 * t.length;
  });
  return bytes;
}

/** Decodes a container, checking magic and version; `what` names the object in errors. */
export function decodeContainer(bytes: Uint8Array, magic: string, version: number, what: string): Container {
  const fail = (reason: string): never => {
    throw new CorruptObjectError(`${what}: ${reason}`, { what });
  };
  if (bytes.length < 16) fail(`only ${bytes.length} bytes, too short for a checkpoint`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const got = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (got !== magic) fail(`magic "${got}" is not "${magic}" (not this kind of checkpoint)`);
  const v = view.getUint32(4, true);
  if (v !== version) fail(`format version ${v} is not the supported version ${version}; restart the search`);
  const headerLen = view.getUint32(8, true);
  let off = 12;
  if (off + headerLen > bytes.length) fail('header runs past the end');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(off, off + headerLen)));
  } catch (err) {
    fail(`header is not JSON: ${(err as Error).message}`);
  }
  off += pad4(headerLen);
  if (off + 4 > bytes.length) fail('tensor count runs past the end');
  const count = view.getUint32(off, true);
  off += 4;
  const tensors = new Map<string, Float32Array>();
  const dec = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (off + 4 > bytes.length) fail(`tensor ${i} runs past the end`);
    const nameLen = view.getUint32(off, true);
    off += 4;
    if (off + nameLen + 4 > bytes.length) fail(`tensor ${i} name runs past the end`);
    const name = dec.decode(bytes.subarray(off, off + nameLen));
    off += pad4(nameLen);
    const length = view.getUint32(off, true);
    off += 4;
    if (off + 4 * length > bytes.length) fail(`tensor "${name}" (${length} values) runs past the end`);
    const t = new Float32Array(length);
    for (let k = 0; k < length; k++) t[k] = view.getFloat32(off + 4 * k, true);
    off += 4 * length;
    tensors.set(name, t);
  }
  if (off !== bytes.length) fail(`${bytes.length - off} trailing bytes`);
  return { header, tensors };
}

/** A tensor from a decoded container, with its expected length checked. */
export function takeTensor(c: Container, name: string, length: number, what: string): Float32Array {
  const t = c.tensors.get(name);
  if (!t) throw new CorruptObjectError(`${what}: tensor "${name}" is missing`);
  if (t.length !== length) throw new CorruptObjectError(`${what}: tensor "${name}" has ${t.length} values, expected ${length}`);
  return t;
}
