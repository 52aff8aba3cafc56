/**
 * The onnxruntime-node adapter: the ONLY module that imports onnxruntime-node, so only the
 * bundles that run models (prepare/evaluate) carry the native library.
 *
 * - ModelSession: a session from model bytes; a load failure (unknown op, unknown domain,
 *   invalid graph) becomes an UnsupportedModelError naming the op/node.
 * - resolveShapes: runs the model once on zeros with chosen intermediate tensors added as graph
 *   outputs and returns their concrete shapes. This is the layer table's shape inference: it is
 *   exact for every op onnxruntime runs (no hand-written shape rules to keep in sync with the
 *   ONNX spec), and it checks that the model loads at all, at the cost of one forward pass of
 *   one input (milliseconds for the zoo's models).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { HaqError, UnsupportedModelError } from '../errors';
import { encodeModel, type ModelProto } from './proto';

/** A tensor passed to or returned from a session: row-major data plus dims. */
export interface Tensor {
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;
  dims: number[];
}

export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

export interface SessionOptions {
  /** Names the model in messages (e.g. its path). */
  what?: string;
  /** Intra-op threads (default 1: the machines are small and searches run evaluations in parallel). */
  threads?: number;
  /**
   * onnxruntime graph optimization level (default 'all'). 'disabled' runs the ONNX semantics op by
   * op: fusions (MatMul + Add -> Gemm, QDQ patterns -> integer kernels) change float rounding
   * slightly, which can flip quantized codes at rounding boundaries (test/unit/quant/export.test.ts).
   */
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export class ModelSession {
  private readonly wrappers = new WeakMap<Tensor, ort.Tensor>();

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly what: string,
  ) {}

  static async create(bytes: Uint8Array, options: SessionOptions = {}): Promise<ModelSession> {
    const what = options.what ?? 'model';
    try {
      const session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: options.threads ?? 1,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
        graphOptimizationLevel: options.graphOptimization ?? 'all',
      });
      return new ModelSession(session, what);
    } catch (err) {
      throw loadError(err, what);
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the model; returns the requested outputs (default: all) as float32 tensors. */
  async run(feeds: Record<string, Tensor>, outputNames: readonly string[] = this.session.outputNames): Promise<Record<string, FloatTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      // A feed object passed again (a policy's weights and scalars, for every batch) reuses its wrapper.
      let o = this.wrappers.get(t);
      if (!o) {
        o = new ort.Tensor(ortType(t.data), t.data, t.dims);
        this.wrappers.set(t, o);
      }
      ortFeeds[name] = o;
    }
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run(ortFeeds, [...outputNames]);
    } catch (err) {
      const shapes = Object.entries(feeds).map(([n, t]) => `${n} [${t.dims.join(', ')}]`).join(', ');
      throw new UnsupportedModelError(`onnxruntime failed to run ${this.what} on ${shapes}: ${firstLine(err)}`, { what: this.what });
    }
    const out: Record<string, FloatTensor> = {};
    for (const name of outputNames) {
      const t = result[name] as ort.Tensor;
      const data = t.type === 'float32' ? (t.data as Float32Array) : Float32Array.from(t.data as ArrayLike<number>, Number);
      out[name] = { data, dims: [...t.dims] };
      t.dispose?.();
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function ortType(data: Tensor['data']): 'float32' | 'int32' | 'int64' | 'uint8' | 'int8' {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int8Array) return 'int8';
  return 'uint8';
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0].trim();
}

/** Turns an onnxruntime load error into a message that names the op, domain or node. */
function loadError(err: unknown, what: string): HaqError {
  const message = firstLine(err);
  const node = /In Node, \("([^"]*)", ([^,]+),/.exec(message);
  const noOp = /No Op registered for (\S+) with domain_version of (\d+)/.exec(message);
  if (noOp) {
    return new UnsupportedModelError(
      `${what} uses the op ${noOp[1]} (node ${node?.[1] || '?'}, opset ${noOp[2]}), which is not an ONNX operator onnxruntime implements; replace it or export the model with standard ops`,
      { op: noOp[1], node: node?.[1] },
    );
  }
  const noDomain = /No opset import for domain '([^']*)'/.exec(message);
  if (noDomain) {
    return new UnsupportedModelError(
      `${what} uses the op ${node?.[2] ?? '?'} from domain "${noDomain[1]}" (node ${node?.[1] || '?'}), which the model does not import and onnxruntime does not know`,
      { op: node?.[2], domain: noDomain[1] },
    );
  }
  const notImpl = /Could not find an implementation for (\S+)/.exec(message);
  if (notImpl) {
    return new UnsupportedModelError(`${what} uses ${notImpl[1]}, which onnxruntime has no CPU kernel for (${message})`, { op: notImpl[1] });
  }
  return new UnsupportedModelError(`onnxruntime cannot load ${what}: ${message}`, { what });
}

/**
 * The model as onnxruntime's optimizer leaves it for this machine (all graph optimizations,
 * including the layout ones: NCHWc convolutions with re-blocked weights on x86-64). The graph
 * is written by onnxruntime to a temporary file, read back and the file removed. The result is
 * hardware specific: it only serves sessions on the same machine (shared/onnx/runtime-weights.ts).
 */
export async function optimizeModel(bytes: Uint8Array, options: SessionOptions = {}): Promise<Uint8Array> {
  const what = options.what ?? 'model';
  const dir = await mkdtemp(join(tmpdir(), 'haq-optimized-'));
  const file = join(dir, 'model.onnx');
  try {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
        graphOptimizationLevel: 'all',
        optimizedModelFilePath: file,
      });
    } catch (err) {
      throw loadError(err, what);
    }
    await session.release();
    return new Uint8Array(await readFile(file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Concrete shapes of `names` (tensors of the top-level graph) for one input shape: adds them as
 * graph outputs (onnxruntime infers their types), runs once on zeros, and reads the dims.
 */
export async function resolveShapes(
  model: ModelProto,
  input: { name: string; shape: number[] },
  names: readonly string[],
  options: SessionOptions = {},
): Promise<Map<string, number[]>> {
  const graph = model.graph ?? {};
  const existing = new Set((graph.output ?? []).map((o) => o.name));
  const wanted = [...new Set(names)].filter((n) => n !== input.name);
  const probe: ModelProto = {
    ...model,
    graph: { ...graph, output: [...(graph.output ?? []), ...wanted.filter((n) => !existing.has(n)).map((name) => ({ name }))] },
  };
  const session = await ModelSession.create(encodeModel(probe), options);
  try {
    const shapes = new Map<string, number[]>([[input.name, [...input.shape]]]);
    if (wanted.length === 0) return shapes; // the session loaded: nothing else to resolve
    const count = input.shape.reduce((a, b) => a * b, 1);
    const out = await session.run({ [input.name]: { data: new Float32Array(count), dims: input.shape } }, wanted);
    for (const n of wanted) shapes.set(n, out[n].dims);
    return shapes;
  } finally {
    await session.release();
  }
}
