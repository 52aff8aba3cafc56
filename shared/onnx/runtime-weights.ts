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
 *   2. probes find where each weight went: the same model optimized again with every weight
 *      element replaced by 0 (probe "zeros"), by 1 ("ones"), by its weight's number w + 1
 *      ("tags") and by its element number k + 1 ("ids", k modulo 2^21; one more probe carries
 *      k / 2^21 for longer weights). Every initializer of the optimized graph that changed holds
 *      weights in a new layout, element j = weight[k] * s_j + o_j, and the probes spell it out
 *      element by element: "zeros" gives the offset o (non-zero where a BatchNormalization was
 *      folded into a bias, (b - mean) s + beta, or a constant added to a weight), "ones" - o the
 *      scale s (0 is padding; s != 1 where a BatchNormalization or Mul was folded into the
 *      weights), ("tags" - o) / s the weight, ("ids" - o) / s the element. Four or five
 *      optimizer runs, whatever the model's size;
 *   3. the check: every probe's graph has the same structure, every weight value appears, and
 *      the real FP32 weights put through the layout reproduce onnxruntime's optimized
 *      initializers (bit for bit; within 2^-20 of the terms where scaled or offset);
 *   4. those initializers become graph inputs. The caller feeds any weights (quantized for a
 *      policy) through the same layout (`layoutValues`): the session computes what onnxruntime
 *      would have computed with those weights as constants.
 *
 * Reorders around the quantizers are removed too: onnxruntime converts NCHWc tensors back to
 * NCHW before ops it has no NCHWc kernel for (QuantizeLinear, Clip, Cast) and forward again
 * after. Those ops are elementwise with scalar operands, so they run on the blocked tensor
 * as well; the padded channels they produce meet zero filter rows in the next NCHWc Conv.
 *
 * Anything the probes cannot explain (a weight combined with another constant by more than a
 * per-element scale and offset; a structure that depends on the values) falls back to the plain form:
 * the unoptimized graph with the weights as graph inputs, correct and slower (`reason` says why).
 * The optimized graph is specific to this machine's CPU: it is built when a session is opened
 * and never stored.
 */
import { createHash } from 'node:crypto';
import { DataType, decodeModel, encodeModel, float32Tensor, tensorDims, tensorToFloat32, type ModelProto, type NodeProto, type TensorProto } from './proto';
import { valueInfo } from './builder';
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
  /** ... times scale[j] (a folded BatchNormalization or Mul), or null: unscaled. */
  scale: Float32Array | null;
  /** ... plus offset[j] (a bias with a BatchNormalization folded in: (b - mean) * s + beta), or null. */
  offset: Float32Array | null;
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
  /** Optimizer runs that located the weights: 4, or 5 when a weight has more than 2^21 values (0 for the plain form). */
  probes: number;
}

/** Element ids per probe: k + 1 times a scale must still decode exactly from float32. */
const idSpanLimit = 2 ** 21;

const NCHWC = 'com.microsoft.nchwc';
/** Elementwise ops with scalar operands that may run on a blocked (NCHWc) tensor. */
const layoutFreeOps = new Set(['QuantizeLinear', 'Clip', 'Cast']);

class LayoutMismatch extends Error {}

export interface RuntimeWeightsOptions {
  /** Names the model in messages. */
  what?: string;
  /** false: skip onnxruntime's optimizer and return the plain form (tests compare the two). */
  optimize?: boolean;
  /** Element ids per probe (default and maximum 2^21; longer weights take a second id probe; tests use less). */
  idSpan?: number;
}

/**
 * `model` holds each weight as a float initializer named `weights[i].name`. Returns the graph to
 * open and, per weight, how to feed it.
 */
export async function optimizeWithWeightInputs(
  model: ModelProto,
  weights: readonly RuntimeWeight[],
  { what = 'model', optimize = true, idSpan = idSpanLimit }: RuntimeWeightsOptions = {},
): Promise<RuntimeWeightsModel> {
  if (!optimize) return { ...plainForm(model, weights), reason: 'not requested' };
  try {
    return await optimizedForm(model, weights, what, Math.min(idSpan, idSpanLimit));
  } catch (err) {
    // Also an optimizer failure (no writable temp folder, a model onnxruntime cannot optimize):
    // the plain form is correct, and a model onnxruntime cannot load at all fails there, clearly.
    const reason = err instanceof LayoutMismatch ? err.message : `onnxruntime's optimizer failed: ${(err as Error)?.message ?? err}`;
    return { ...plainForm(model, weights), reason };
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
      input: [...(graph.input ?? []).filter((v) => !names.has(v.name ?? '')), ...weights.map((w) => valueInfo(w.name, 'float32', w.dims))],
    },
  };
  const feeds = new Map(weights.map((w) => [w.name, [{ input: w.name, dims: w.dims, gather: null, scale: null, offset: null }]]));
  return { bytes: encodeModel(out), feeds, graphOptimization: 'all', optimized: false, reordersRemoved: 0, probes: 0 };
}

/** One optimized probe: the float initializers that differ from the real optimized graph. */
type ProbeValues = Map<string, Float32Array>;

async function optimizedForm(model: ModelProto, weights: readonly RuntimeWeight[], what: string, idSpan: number): Promise<RuntimeWeightsModel> {
  const real = decodeModel(await optimizeModel(encodeModel(model), { what }), `${what} (optimized)`);
  const realInits = new Map((real.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
  const realPrints = new Map([...realInits].map(([name, t]) => [name, tensorFingerprint(t)]));
  const structure = structureOf(real);
  const byName = new Map(weights.map((w, i) => [w.name, i]));

  // Optimizes the model with element k of weight w replaced by value(w, k); keeps what changed.
  let probes = 0;
  const probe = async (value: (w: number, k: number) => number): Promise<ProbeValues> => {
    const graph = model.graph ?? {};
    const replaced: ModelProto = {
      ...model,
      graph: {
        ...graph,
        initializer: (graph.initializer ?? []).map((t) => {
          const w = byName.get(t.name ?? '');
          if (w === undefined) return t;
          return float32Tensor(t.name ?? '', Float32Array.from({ length: weights[w].data.length }, (_, k) => value(w, k)), weights[w].dims);
        }),
      },
    };
    const optimized = decodeModel(await optimizeModel(encodeModel(replaced), { what }), `${what} (probe)`);
    probes++;
    if (structureOf(optimized) !== structure) throw new LayoutMismatch('the optimized graph depends on the weight values');
    const changed: ProbeValues = new Map();
    for (const t of optimized.graph?.initializer ?? []) {
      const name = t.name ?? '';
      if (tensorFingerprint(t) === realPrints.get(name)) continue;
      if (t.dataType !== DataType.FLOAT) throw new LayoutMismatch(`initializer "${name}" is derived from a weight but is not float`);
      changed.set(name, tensorToFloat32(t));
    }
    return changed;
  };
  const longest = Math.max(0, ...weights.map((w) => w.data.length));
  const zeros = await probe(() => 0);
  const ones = await probe(() => 1);
  const tags = await probe((w) => w + 1);
  const low = await probe((_, k) => (k % idSpan) + 1);
  const high = longest > idSpan ? await probe((_, k) => Math.floor(k / idSpan) + 1) : null;
  const derived = new Set([...zeros.keys(), ...ones.keys(), ...tags.keys(), ...low.keys(), ...(high?.keys() ?? [])]);

  // Every weight value must reach the graph, and the layout must reproduce onnxruntime's values.
  const seen = weights.map((w) => new Uint8Array(w.data.length));
  const feeds = new Map<string, WeightFeed[]>(weights.map((w) => [w.name, []]));
  for (const name of derived) {
    const get = (p: ProbeValues | null) => p?.get(name) ?? tensorToFloat32(realInits.get(name)!);
    const layout = decodeLayout(name, get(zeros), get(ones), get(tags), get(low), high ? get(high) : null, idSpan, weights.length);
    const w = weights[layout.weight];
    const got = tensorToFloat32(realInits.get(name)!);
    const want = layoutValues(w.data, layout.gather, layout.scale, 1, layout.offset);
    for (const g of layout.gather) if (g >= 0) seen[layout.weight][g] = 1;
    if (!sameValues(got, want, layout.scale || layout.offset ? layoutMagnitudes(w.data, layout) : null)) {
      throw new LayoutMismatch(`initializer "${name}" is not a re-ordering or per-element scaling of the weight "${w.name}" (folded with another constant)`);
    }
    const identity = layout.gather.length === w.data.length && layout.gather.every((g, j) => g === j);
    feeds.get(w.name)!.push({ input: name, dims: tensorDims(realInits.get(name)!), gather: identity ? null : layout.gather, scale: layout.scale, offset: layout.offset });
  }
  weights.forEach((w, i) => {
    if (!seen[i].every((s) => s === 1)) throw new LayoutMismatch(`not every value of the weight "${w.name}" reaches the optimized graph`);
  });

  const graph = real.graph ?? {};
  graph.initializer = (graph.initializer ?? []).filter((t) => !derived.has(t.name ?? ''));
  graph.input = [...(graph.input ?? []), ...[...derived].map((name) => valueInfo(name, 'float32', tensorDims(realInits.get(name)!)))];
  const reordersRemoved = removeLayoutReorders(real);
  // Shapes recorded by the optimizer no longer hold where reorders were removed; the session re-infers them.
  graph.valueInfo = [];
  return { bytes: encodeModel(real), feeds, graphOptimization: 'disabled', optimized: true, reordersRemoved, probes };
}

/**
 * Element j of a fed tensor: weight[gather[j]] (times `factor`, in float32) times scale[j] plus
 * offset[j]; offset[j] (or 0) where gather[j] < 0.
 */
export function layoutValues(weight: Float32Array, gather: Int32Array | null, scale: Float32Array | null, factor = 1, offset: Float32Array | null = null): Float32Array {
  const n = gather ? gather.length : weight.length;
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const g = gather ? gather[j] : j;
    if (g < 0) {
      if (offset) out[j] = offset[j];
      continue;
    }
    const v = factor === 1 ? weight[g] : Math.fround(weight[g] * factor);
    const scaled = scale ? Math.fround(v * scale[j]) : v;
    out[j] = offset ? scaled + offset[j] : scaled;
  }
  return out;
}

/** |weight * scale| + |offset| per element: the size of the terms a scaled layout adds up. */
function layoutMagnitudes(weight: Float32Array, layout: { gather: Int32Array; scale: Float32Array | null; offset: Float32Array | null }): Float32Array {
  return Float32Array.from(layout.gather, (g, j) => (g < 0 ? 0 : Math.abs(weight[g] * (layout.scale?.[j] ?? 1))) + Math.abs(layout.offset?.[j] ?? 0));
}

/**
 * Bitwise equal, or (scaled or offset layouts, whose products and sums onnxruntime may round
 * differently) within 2^-20 of the terms' magnitudes.
 */
function sameValues(got: Float32Array, want: Float32Array, magnitudes: Float32Array | null): boolean {
  if (got.length !== want.length) return false;
  if (!magnitudes) return Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength));
  for (let j = 0; j < got.length; j++) {
    if (Math.abs(got[j] - want[j]) > 2 ** -20 * Math.max(magnitudes[j], Math.abs(got[j]))) return false;
  }
  return true;
}

/**
 * Reads the layout of one optimized initializer from the probes: `zeros` gives each element's
 * offset (what it holds when every weight is 0), `ones` minus that its scale (0: padding or a
 * constant), `tags` which weight it holds (w + 1, times the scale), `low` and `high` which
 * element (k % span + 1 and floor(k / span) + 1, times the scale).
 */
function decodeLayout(
  name: string,
  zeros: Float32Array,
  ones: Float32Array,
  tags: Float32Array,
  low: Float32Array,
  high: Float32Array | null,
  span: number,
  weightCount: number,
): { weight: number; gather: Int32Array; scale: Float32Array | null; offset: Float32Array | null } {
  const n = ones.length;
  if (zeros.length !== n || tags.length !== n || low.length !== n || (high && high.length !== n)) throw new LayoutMismatch(`initializer "${name}" changes size between probes`);
  const gather = new Int32Array(n);
  const scale = new Float32Array(n);
  let weight = -1;
  let scaled = false;
  const offset = zeros.some((o) => o !== 0) ? zeros : null;
  const integer = (probe: number, j: number, s: number, what: string): number => {
    const v = offset ? probe - offset[j] : probe;
    const q = Math.round(v / s);
    if (!(q >= 1) || Math.abs(v - Math.fround(q * s)) > 2 ** -20 * Math.max(Math.abs(v), offset ? Math.abs(offset[j]) : 0)) {
      throw new LayoutMismatch(`initializer "${name}" holds a computed value, not a (scaled) weight element (${what})`);
    }
    return q;
  };
  for (let j = 0; j < n; j++) {
    const s = offset ? Math.fround(ones[j] - offset[j]) : ones[j];
    scale[j] = s;
    if (s === 0) {
      gather[j] = -1;
      continue;
    }
    if (s !== 1) scaled = true;
    const w = integer(tags[j], j, s, 'weight tag') - 1;
    if (weight >= 0 && w !== weight) throw new LayoutMismatch(`initializer "${name}" mixes two weights`);
    weight = w;
    gather[j] = (high ? integer(high[j], j, s, 'element id') - 1 : 0) * span + integer(low[j], j, s, 'element id') - 1;
  }
  if (weight < 0) throw new LayoutMismatch(`initializer "${name}" changed but holds no weight element`);
  if (weight >= weightCount) throw new LayoutMismatch(`initializer "${name}" holds a computed value, not a (scaled) weight element (weight tag)`);
  return { weight, gather, scale: scaled ? scale : null, offset };
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
