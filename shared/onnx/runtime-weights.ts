/**
 * Weights as runtime inputs WITHOUT losing onnxruntime's optimized kernels.
 *
 * The quantized evaluation feeds every layer's weights per policy, so the weights must be graph
 * inputs. onnxruntime optimizes convolutions only when their weights are constant: on x86-64
 * its layout optimizer rewrites a Conv into an NCHWc Conv (com.microsoft.nchwc) whose weights are
 * re-blocked once at load time. A Conv whose weight is a plain graph input gets none of that and
 * runs 2-4x slower. So:
 *
 *   1. onnxruntime optimizes the model with the weights as constants (their FP32 values) and
 *      writes the optimized graph out (runtime.ts optimizeModel);
 *   2. probes find where each weight went: the same model optimized again with weight k of a
 *      layer replaced by the value k + 1 (+ an offset per layer, exact integers up to 2^24; the
 *      layers are split into several probes when there are more values than that). Every
 *      initializer of the optimized graph that changed is a weight in a new layout, and its
 *      values spell the layout out: value v > 0 is element v - 1, 0 is padding;
 *   3. the check: the probe's graph must have the same structure, every weight value must appear,
 *      and gathering the real FP32 weights through the layout must reproduce onnxruntime's
 *      optimized initializers bit for bit;
 *   4. those initializers become graph inputs. The caller feeds any weights (quantized for a
 *      policy) gathered through the same layout: the session computes exactly what onnxruntime
 *      would have computed with those weights as constants.
 *
 * Reorders around the quantizers are removed too: onnxruntime converts NCHWc tensors back to
 * NCHW before ops it has no NCHWc kernel for (QuantizeLinear, Clip, Cast) and forward again
 * after. Those ops are elementwise with scalar operands, so they run on the blocked tensor
 * as well; the padded channels they produce meet zero filter rows in the next NCHWc Conv.
 *
 * Anything the probes cannot explain (a weight folded into another constant, e.g. a
 * BatchNormalization fused into the Conv; a changed structure) falls back to the plain form:
 * the unoptimized graph with the weights as graph inputs, correct and slower (`reason` says why).
 * The optimized graph is specific to this machine's CPU: it is built when a session is opened
 * and never stored.
 */
import { createHash } from 'node:crypto';
import { DataType, decodeModel, encodeModel, float32Tensor, tensorDims, tensorToFloat32, type ModelProto, type NodeProto, type TensorProto } from './proto';
import { optimizeModel } from './runtime';

export interface RuntimeWeight {
  /** The initializer name in the model. */
  name: string;
  data: Float32Array;
  dims: number[];
}

/** One graph input carrying (part of) a weight, in onnxruntime's layout. */
export interface WeightFeed {
  input: string;
  dims: number[];
  /** Element j of the input is weight[gather[j]], or 0 where gather[j] < 0; null: same order as the weight. */
  gather: Int32Array | null;
}

export interface RuntimeWeightsModel {
  bytes: Uint8Array;
  /** Per weight name: the graph inputs to feed. */
  feeds: Map<string, WeightFeed[]>;
  /** The session's optimization level: the optimized graph is loaded as is. */
  graphOptimization: 'disabled' | 'all';
  /** True when onnxruntime's optimized graph is used; false: the plain fallback (see `reason`). */
  optimized: boolean;
  reason?: string;
  /** NCHWc -> NCHW -> NCHWc reorder pairs removed around elementwise chains. */
  reordersRemoved: number;
  /** Optimizer runs that located the weights (0 for the plain form). */
  probes: number;
}

/** Exact integers in float32: the largest id one probe can carry. */
const probeCapacity = 2 ** 24;

const NCHWC = 'com.microsoft.nchwc';
/** Elementwise ops with scalar operands that may run on a blocked (NCHWc) tensor. */
const layoutFreeOps = new Set(['QuantizeLinear', 'Clip', 'Cast']);

class LayoutMismatch extends Error {}

export interface RuntimeWeightsOptions {
  /** Names the model in messages. */
  what?: string;
  /** false: skip onnxruntime's optimizer and return the plain form (tests compare the two). */
  optimize?: boolean;
  /** Weight values one probe may carry (default 2^24, the exact float32 integers; tests use less). */
  probeValues?: number;
}

/**
 * `model` holds each weight as a float initializer named `weights[i].name`. Returns the graph to
 * open and, per weight, how to feed it.
 */
export async function optimizeWithWeightInputs(
  model: ModelProto,
  weights: readonly RuntimeWeight[],
  { what = 'model', optimize = true, probeValues = probeCapacity }: RuntimeWeightsOptions = {},
): Promise<RuntimeWeightsModel> {
  if (!optimize) return { ...plainForm(model, weights), reason: 'not requested' };
  try {
    return await optimizedForm(model, weights, what, Math.min(probeValues, probeCapacity));
  } catch (err) {
    if (!(err instanceof LayoutMismatch)) throw err;
    return { ...plainForm(model, weights), reason: err.message };
  }
}

/** The fallback: the model as given with its weight initializers turned into graph inputs. */
function plainForm(model: ModelProto, weights: readonly RuntimeWeight[]): Omit<RuntimeWeightsModel, 'reason'> {
  const names = new Set(weights.map((w) => w.name));
  const graph = model.graph ?? {};
  const out: ModelProto = {
    ...model,
    graph: {
      ...graph,
      initializer: (graph.initializer ?? []).filter((t) => !names.has(t.name ?? '')),
      input: [...(graph.input ?? []).filter((v) => !names.has(v.name ?? '')), ...weights.map((w) => floatInput(w.name, w.dims))],
    },
  };
  const feeds = new Map(weights.map((w) => [w.name, [{ input: w.name, dims: w.dims, gather: null }]]));
  return { bytes: encodeModel(out), feeds, graphOptimization: 'all', optimized: false, reordersRemoved: 0, probes: 0 };
}

async function optimizedForm(model: ModelProto, weights: readonly RuntimeWeight[], what: string, probeValues: number): Promise<RuntimeWeightsModel> {
  const real = decodeModel(await optimizeModel(encodeModel(model), { what }), `${what} (optimized)`);
  const realInits = new Map((real.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const structure = structureOf(real);
  const layouts = new Map<string, { weight: number; gather: Int32Array }>();

  const groups = probeGroups(weights, probeValues);
  for (const group of groups) {
    const offsets = new Map<number, number>();
    let next = 0;
    for (const w of group) {
      offsets.set(w, next);
      next += weights[w].data.length;
    }
    const replaced = new Map(group.map((w) => [weights[w].name, w]));
    const graph = model.graph ?? {};
    const probeModel: ModelProto = {
      ...model,
      graph: {
        ...graph,
        initializer: (graph.initializer ?? []).map((t) => {
          const w = replaced.get(t.name ?? '');
          if (w === undefined) return t;
          const ids = new Float32Array(weights[w].data.length);
          for (let k = 0; k < ids.length; k++) ids[k] = offsets.get(w)! + k + 1;
          return float32Tensor(t.name ?? '', ids, weights[w].dims);
        }),
      },
    };
    const probe = decodeModel(await optimizeModel(encodeModel(probeModel), { what }), `${what} (probe)`);
    if (structureOf(probe) !== structure) throw new LayoutMismatch('the optimized graph depends on the weight values');
    const starts = group.map((w) => offsets.get(w)!);
    for (const t of probe.graph?.initializer ?? []) {
      const name = t.name ?? '';
      const r = realInits.get(name)!;
      if (tensorFingerprint(t) === tensorFingerprint(r)) continue;
      if (layouts.has(name)) throw new LayoutMismatch(`initializer "${name}" mixes weights of two probes`);
      if (t.dataType !== DataType.FLOAT) throw new LayoutMismatch(`initializer "${name}" is derived from a weight but is not float`);
      layouts.set(name, decodeLayout(name, tensorToFloat32(t), group, starts));
    }
  }

  // Every weight value must reach the graph, and the layout must reproduce onnxruntime's values.
  const seen = weights.map((w) => new Uint8Array(w.data.length));
  const feeds = new Map<string, WeightFeed[]>(weights.map((w) => [w.name, []]));
  for (const [name, { weight, gather }] of layouts) {
    const w = weights[weight];
    const got = tensorToFloat32(realInits.get(name)!);
    const want = new Float32Array(gather.length);
    for (let j = 0; j < gather.length; j++) {
      if (gather[j] >= 0) {
        want[j] = w.data[gather[j]];
        seen[weight][gather[j]] = 1;
      }
    }
    if (!Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer))) {
      throw new LayoutMismatch(`initializer "${name}" is not a re-ordering of the weight "${w.name}" (folded with another constant)`);
    }
    const identity = gather.length === w.data.length && gather.every((g, j) => g === j);
    feeds.get(w.name)!.push({ input: name, dims: tensorDims(realInits.get(name)!), gather: identity ? null : gather });
  }
  weights.forEach((w, i) => {
    if (!seen[i].every((s) => s === 1)) throw new LayoutMismatch(`not every value of the weight "${w.name}" reaches the optimized graph`);
  });

  const graph = real.graph ?? {};
  graph.initializer = (graph.initializer ?? []).filter((t) => !layouts.has(t.name ?? ''));
  graph.input = [...(graph.input ?? []), ...[...layouts.keys()].map((name) => floatInput(name, tensorDims(realInits.get(name)!)))];
  const reordersRemoved = removeLayoutReorders(real);
  // Shapes recorded by the optimizer no longer hold where reorders were removed; the session re-infers them.
  graph.valueInfo = [];
  return { bytes: encodeModel(real), feeds, graphOptimization: 'disabled', optimized: true, reordersRemoved, probes: groups.length };
}

/** Splits the weights into probes of fewer than `capacity` values each. */
function probeGroups(weights: readonly RuntimeWeight[], capacity: number): number[][] {
  const groups: number[][] = [];
  let current: number[] = [];
  let size = 0;
  weights.forEach((w, i) => {
    if (w.data.length >= capacity) throw new LayoutMismatch(`the weight "${w.name}" has ${w.data.length} values, more than one probe can tell apart`);
    if (size + w.data.length >= capacity && current.length) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(i);
    size += w.data.length;
  });
  if (current.length) groups.push(current);
  return groups;
}

/** Which weight a probe initializer holds and where each element comes from. */
function decodeLayout(name: string, values: Float32Array, group: number[], starts: number[]): { weight: number; gather: Int32Array } {
  const gather = new Int32Array(values.length);
  let slot = -1;
  for (let j = 0; j < values.length; j++) {
    const v = values[j];
    if (v === 0) {
      gather[j] = -1;
      continue;
    }
    if (!Number.isInteger(v) || v < 1) throw new LayoutMismatch(`initializer "${name}" holds a computed value, not a weight element`);
    const id = v - 1;
    let s = slot;
    if (s < 0 || id < starts[s] || (s + 1 < starts.length && id >= starts[s + 1])) {
      s = upperBound(starts, id) - 1;
      if (slot >= 0 && s !== slot) throw new LayoutMismatch(`initializer "${name}" mixes two weights`);
      slot = s;
    }
    gather[j] = id - starts[s];
  }
  if (slot < 0) throw new LayoutMismatch(`initializer "${name}" changed but holds no weight element`);
  return { weight: group[slot], gather };
}

function upperBound(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Ops, tensors, attributes, graph inputs/outputs and initializer names/types/dims: everything but
 * the values (and node names, which onnxruntime numbers in no fixed order).
 */
function structureOf(model: ModelProto): string {
  const g = model.graph ?? {};
  const nodes = (g.node ?? []).map((n) => [n.domain ?? '', n.opType, n.input, n.output, JSON.stringify(n.attribute ?? [])].join('|'));
  const inits = (g.initializer ?? []).map((t) => `${t.name}:${t.dataType}:${tensorDims(t).join('x')}`).sort();
  const io = [...(g.input ?? []), ...(g.output ?? [])].map((v) => v.name);
  return JSON.stringify([nodes, inits, io]);
}

function tensorFingerprint(t: TensorProto): string {
  const h = createHash('sha1');
  h.update(`${t.dataType}:${tensorDims(t).join('x')}:`);
  if (t.rawData && t.rawData.length) h.update(t.rawData);
  else h.update(JSON.stringify([t.floatData ?? [], t.int32Data ?? [], t.int64Data ?? [], t.doubleData ?? [], t.uint64Data ?? []]));
  return h.digest('hex');
}

function floatInput(name: string, dims: readonly number[]) {
  return { name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

const attrInt = (n: NodeProto, name: string): number => Number(n.attribute?.find((a) => a.name === name)?.i ?? 0);

/**
 * Removes ReorderOutput -> [QuantizeLinear | Clip | Cast with scalar operands]+ -> ReorderInput
 * round trips whose result only feeds NCHWc Convs (as their data input): the chain then reads the
 * blocked tensor directly. Returns the number of ReorderInput nodes removed.
 */
export function removeLayoutReorders(model: ModelProto): number {
  const g = model.graph ?? {};
  const nodes = g.node ?? [];
  const scalars = new Set([
    ...(g.initializer ?? []).filter((t) => tensorDims(t).length === 0).map((t) => t.name ?? ''),
    ...(g.input ?? []).filter((v) => v.type?.tensorType?.shape?.dim?.length === 0).map((v) => v.name ?? ''),
  ]);
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const outputs = new Set((g.output ?? []).map((o) => o.name ?? ''));
  const dropped = new Set<NodeProto>();
  for (const reorderIn of nodes) {
    if (reorderIn.domain !== NCHWC || reorderIn.opType !== 'ReorderInput' || attrInt(reorderIn, 'channels_last') !== 0) continue;
    const result = reorderIn.output![0];
    const users = consumers.get(result) ?? [];
    if (outputs.has(result) || !users.every((u) => u.domain === NCHWC && u.opType === 'Conv' && u.input![0] === result && !u.input!.slice(1).includes(result))) continue;
    const chain: NodeProto[] = [];
    let tensor = reorderIn.input![0];
    let p = producer.get(tensor);
    while (
      p &&
      !p.domain &&
      layoutFreeOps.has(p.opType ?? '') &&
      (p.input ?? []).slice(1).every((i) => !i || scalars.has(i)) &&
      (consumers.get(p.output![0]) ?? []).length === 1 &&
      !outputs.has(p.output![0])
    ) {
      chain.unshift(p);
      tensor = p.input![0];
      p = producer.get(tensor);
    }
    if (!chain.length || !p || p.domain !== NCHWC || p.opType !== 'ReorderOutput' || attrInt(p, 'channels_last') !== 0) continue;
    chain[0].input![0] = p.input![0];
    const last = chain[chain.length - 1].output![0];
    for (const u of users) u.input![0] = last;
    dropped.add(reorderIn);
    consumers.set(tensor, (consumers.get(tensor) ?? []).filter((c) => c !== chain[0]));
  }
  for (const n of nodes) {
    if (n.domain === NCHWC && n.opType === 'ReorderOutput' && !(consumers.get(n.output![0]) ?? []).length && !outputs.has(n.output![0])) dropped.add(n);
  }
  g.node = nodes.filter((n) => !dropped.has(n));
  return [...dropped].filter((n) => n.opType === 'ReorderInput').length;
}
