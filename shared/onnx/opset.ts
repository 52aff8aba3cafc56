/**
 * Opset upgrade: a model exported at an older default-domain opset (7 and up) rewritten to a
 * newer one, node by node, so that the quantizer's ops (QuantizeLinear, Clip with inputs,
 * per-channel DequantizeLinear) can be added to it. Only the ops whose inputs, attributes or
 * semantics changed between the two opsets are rewritten, and only those the model uses; every
 * other node is carried over as it is (its newer version reads the same inputs and attributes).
 *
 * The conversions are a table of steps (ONNX Changelog): a step applies to a node when the model's
 * opset is below the step's `since` version and the target is at or above it; steps run in
 * `since` order, so Upsample-7 becomes Upsample-9 (scales as input), then Resize-10, then
 * Resize-11 (roi input, explicit coordinate mode). Each step is tested against onnxruntime
 * running the original and the converted model (test/unit/onnx/opset.test.ts).
 *
 * Every node gets its final name first (assignNodeNames, as the layer table names it), so the
 * upgraded model's quantizable layers keep the names of the original's; added nodes are named
 * `<node>/haq_opset_<op>` and added constants `haq_opset_<n>` (initializers of the graph that
 * holds the node, subgraphs included).
 *
 * What has no equivalent at the target (a Scan-8 with its batch axis, BatchNormalization with
 * spatial = 0, a Dropout whose mask is read, experimental ops removed in opset 10) is refused
 * with an UnsupportedModelError naming the op and the node. Pure: a decoded model in, a new model out.
 */
import { UnsupportedModelError } from '../errors';
import { assignNodeNames, tensorsRead } from './layers';
import {
  AttributeType,
  findAttribute,
  float32Tensor,
  int64Tensor,
  opsetVersion,
  tensorToFloat32,
  toNumber,
  valueInfoDims,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto';

/** The oldest default-domain opset the upgrade starts from. */
export const oldestOpset = 7;

/** One rewritten node, for messages and `haq inspect`. */
export interface OpsetChange {
  node: string;
  op: string;
  /** What the step did, e.g. "min/max attributes to inputs". */
  change: string;
}

export interface OpsetUpgrade {
  model: ModelProto;
  from: number;
  to: number;
  changes: OpsetChange[];
}

/** What a step can do to the graph that holds the node. */
interface StepContext {
  /** The node's final name. */
  node: string;
  /** Adds a constant to the node's graph; returns its (fresh) name. */
  constant(tensor: Omit<TensorProto, 'name'>): string;
  /** A constant's values by tensor name (initializers and Constant nodes of the node's graph), or null. */
  constantValues(name: string): Float32Array | null;
  /** The rank of a tensor when the graph declares it (inputs, outputs, value_info), else null. */
  rank(name: string): number | null;
  /** Whether any node of the model (or a graph output) reads this tensor. */
  isRead(name: string): boolean;
  /** A fresh tensor name. */
  fresh(base: string): string;
}

interface Step {
  op: string;
  /** The first opset version where the old form is gone. */
  since: number;
  change: string;
  /** The replacement nodes (the first keeps the node's name), or a refusal reason. */
  convert(node: NodeProto, ctx: StepContext): NodeProto[] | { refuse: string };
}

const attr = (node: NodeProto, name: string): AttributeProto | undefined => findAttribute(node, name);
const without = (node: NodeProto, ...names: string[]): AttributeProto[] => (node.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
const ints = (a: AttributeProto | undefined): number[] => (a?.ints ?? []).map(toNumber);
const stringAttr = (name: string, value: string): AttributeProto => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });
const intAttr = (name: string, value: number): AttributeProto => ({ name, type: AttributeType.INT, i: value });
const int64s = (values: number[]) => int64Tensor('', values, [values.length]);
const floatScalar = (value: number) => float32Tensor('', Float32Array.of(value), []);

/** An attribute of ints moved to an int64 input appended at `index` (absent attribute: no input). */
function intsToInput(attrName: string, index: number): Step['convert'] {
  return (node, ctx) => {
    const a = attr(node, attrName);
    if (!a) return [node];
    const inputs = [...(node.input ?? [])];
    while (inputs.length < index) inputs.push('');
    inputs[index] = ctx.constant(int64s(ints(a)));
    return [{ ...node, input: inputs, attribute: without(node, attrName) }];
  };
}

/**
 * Softmax, LogSoftmax and Hardmax before opset 13 coerce the input to 2-D at `axis` (default 1)
 * and normalise over the flattened trailing dims; from 13 they normalise over one axis (default -1).
 * Same result when `axis` is the last dim; otherwise Flatten, the op on axis 1, Reshape back.
 */
const coercedSoftmax: Step['convert'] = (node, ctx) => {
  const axis = attr(node, 'axis') ? toNumber(attr(node, 'axis')!.i) : 1;
  const x = node.input?.[0] ?? '';
  const rank = ctx.rank(x) ?? ctx.rank(node.output?.[0] ?? '');
  if (rank !== null && (axis === -1 || axis === rank - 1)) return [{ ...node, attribute: [...without(node, 'axis'), intAttr('axis', -1)] }];
  const name = ctx.node;
  const flat = ctx.fresh(`${name}/flat`);
  const normed = ctx.fresh(`${name}/normalized`);
  const shape = ctx.fresh(`${name}/shape`);
  return [
    { name, opType: 'Flatten', domain: '', input: [x], output: [flat], attribute: [intAttr('axis', axis)] },
    { name: `${name}/haq_opset_${node.opType}`, opType: node.opType, domain: '', input: [flat], output: [normed], attribute: [intAttr('axis', 1)] },
    { name: `${name}/haq_opset_Shape`, opType: 'Shape', domain: '', input: [x], output: [shape] },
    { name: `${name}/haq_opset_Reshape`, opType: 'Reshape', domain: '', input: [normed, shape], output: [...(node.output ?? [])] },
  ];
};

/** Resize-10 and Upsample: asymmetric coordinates; nearest rounds down when upsampling, up when downsampling (onnxruntime). */
const resizeTo11: Step['convert'] = (node, ctx) => {
  const [x, scales] = node.input ?? [];
  const mode = attr(node, 'mode')?.s ? new TextDecoder().decode(attr(node, 'mode')!.s!) : 'nearest';
  const values = ctx.constantValues(scales ?? '');
  const changed = values ? Array.from(values).filter((s) => s !== 1) : [];
  if (mode === 'nearest' && changed.some((s) => s < 1) && changed.some((s) => s > 1)) {
    return { refuse: `nearest resizing with scales [${Array.from(values!).join(', ')}] both up and down has no opset-11 rounding mode` };
  }
  // Computed scales are taken to upsample (Upsample's documented scales >= 1).
  const nearestMode = changed.length > 0 && changed.every((s) => s < 1) ? 'ceil' : 'floor';
  const roi = ctx.constant(float32Tensor('', new Float32Array(0), [0]));
  return [
    {
      ...node,
      input: [x, roi, scales],
      attribute: [
        ...without(node, 'coordinate_transformation_mode', 'nearest_mode'),
        stringAttr('coordinate_transformation_mode', 'asymmetric'),
        ...(mode === 'nearest' ? [stringAttr('nearest_mode', nearestMode)] : []),
      ],
    },
  ];
};

/** The conversion table (ONNX Changelog: the ops whose signature or semantics changed from opset 7 to 13). */
const steps: Step[] = [
  {
    op: 'BatchNormalization',
    since: 9,
    change: 'spatial attribute dropped',
    convert: (node) => {
      const spatial = attr(node, 'spatial');
      if (spatial && toNumber(spatial.i) !== 1) return { refuse: 'spatial = 0 (statistics per activation, not per channel) has no opset-9 form' };
      return [{ ...node, attribute: without(node, 'spatial') }];
    },
  },
  {
    op: 'MeanVarianceNormalization',
    since: 9,
    change: 'across_channels to axes',
    convert: (node) => {
      const normalize = attr(node, 'normalize_variance');
      if (normalize && toNumber(normalize.i) === 0) return { refuse: 'normalize_variance = 0 (mean subtraction only) has no opset-9 form' };
      const across = attr(node, 'across_channels') ? toNumber(attr(node, 'across_channels')!.i) : 0;
      const axes: AttributeProto = { name: 'axes', type: AttributeType.INTS, ints: across ? [0, 1, 2, 3] : [0, 2, 3] };
      return [{ ...node, attribute: [...without(node, 'across_channels', 'normalize_variance'), axes] }];
    },
  },
  {
    op: 'Scan',
    since: 9,
    change: '',
    convert: () => ({ refuse: 'the opset-8 Scan has a batch axis and sequence_lens input that later versions dropped' }),
  },
  {
    op: 'Upsample',
    since: 9,
    change: 'scales attribute to input',
    convert: (node, ctx) => {
      const scales = attr(node, 'scales');
      if (!scales) return [node];
      const input = ctx.constant(float32Tensor('', Float32Array.from(scales.floats ?? []), [scales.floats?.length ?? 0]));
      return [{ ...node, input: [node.input?.[0] ?? '', input], attribute: without(node, 'scales') }];
    },
  },
  { op: 'Upsample', since: 10, change: 'Upsample to Resize', convert: (node) => [{ ...node, opType: 'Resize' }] },
  {
    op: 'ImageScaler',
    since: 10,
    change: 'ImageScaler to Mul and Add',
    convert: (node, ctx) => {
      const scale = attr(node, 'scale')?.f ?? 1;
      const bias = attr(node, 'bias')?.floats ?? [];
      const scaled = ctx.fresh(`${ctx.node}/scaled`);
      const s = ctx.constant(floatScalar(scale));
      const b = ctx.constant(float32Tensor('', Float32Array.from(bias), [1, bias.length, 1, 1]));
      return [
        { name: ctx.node, opType: 'Mul', domain: '', input: [node.input?.[0] ?? '', s], output: [scaled] },
        { name: `${ctx.node}/haq_opset_Add`, opType: 'Add', domain: '', input: [scaled, b], output: [...(node.output ?? [])] },
      ];
    },
  },
  ...['ATen', 'Affine', 'ConstantFill', 'Crop', 'DynamicSlice', 'GRUUnit', 'GivenTensorFill', 'ParametricSoftplus', 'Scale', 'ScaledTanh'].map(
    (op): Step => ({ op, since: 10, change: '', convert: () => ({ refuse: 'this experimental op was removed in opset 10 and has no standard replacement here' }) }),
  ),
  {
    op: 'Slice',
    since: 10,
    change: 'starts/ends/axes attributes to inputs',
    convert: (node, ctx) => {
      const axes = attr(node, 'axes');
      const inputs = [node.input?.[0] ?? '', ctx.constant(int64s(ints(attr(node, 'starts')))), ctx.constant(int64s(ints(attr(node, 'ends'))))];
      if (axes) inputs.push(ctx.constant(int64s(ints(axes))));
      return [{ ...node, input: inputs, attribute: without(node, 'starts', 'ends', 'axes') }];
    },
  },
  {
    op: 'TopK',
    since: 10,
    change: 'k attribute to input',
    convert: (node, ctx) => [{ ...node, input: [node.input?.[0] ?? '', ctx.constant(int64s([toNumber(attr(node, 'k')?.i)]))], attribute: without(node, 'k') }],
  },
  { op: 'Resize', since: 11, change: 'roi input, asymmetric coordinates', convert: resizeTo11 },
  {
    op: 'Clip',
    since: 11,
    change: 'min/max attributes to inputs',
    convert: (node, ctx) => {
      const min = attr(node, 'min');
      const max = attr(node, 'max');
      const inputs = [node.input?.[0] ?? '', min ? ctx.constant(floatScalar(min.f ?? 0)) : ''];
      if (max) inputs.push(ctx.constant(floatScalar(max.f ?? 0)));
      return [{ ...node, input: inputs, attribute: without(node, 'min', 'max') }];
    },
  },
  {
    op: 'Pad',
    since: 11,
    change: 'pads/value attributes to inputs',
    convert: (node, ctx) => {
      const value = attr(node, 'value')?.f ?? 0;
      const inputs = [node.input?.[0] ?? '', ctx.constant(int64s(ints(attr(node, 'pads'))))];
      if (value !== 0) inputs.push(ctx.constant(floatScalar(value)));
      return [{ ...node, input: inputs, attribute: without(node, 'pads', 'value') }];
    },
  },
  { op: 'Scatter', since: 11, change: 'Scatter to ScatterElements', convert: (node) => [{ ...node, opType: 'ScatterElements' }] },
  {
    op: 'Dropout',
    since: 12,
    change: 'Dropout to Identity (inference)',
    convert: (node, ctx) => {
      const mask = node.output?.[1];
      if (mask && ctx.isRead(mask)) return { refuse: `its mask output "${mask}" is read, and the mask changed type in opset 10` };
      return [{ name: ctx.node, opType: 'Identity', domain: '', input: [node.input?.[0] ?? ''], output: [node.output?.[0] ?? ''] }];
    },
  },
  { op: 'Squeeze', since: 13, change: 'axes attribute to input', convert: intsToInput('axes', 1) },
  { op: 'Unsqueeze', since: 13, change: 'axes attribute to input', convert: intsToInput('axes', 1) },
  { op: 'Split', since: 13, change: 'split attribute to input', convert: intsToInput('split', 1) },
  { op: 'ReduceSum', since: 13, change: 'axes attribute to input', convert: intsToInput('axes', 1) },
  ...['Softmax', 'LogSoftmax', 'Hardmax'].map((op): Step => ({ op, since: 13, change: '2-D coercion made explicit', convert: coercedSoftmax })),
];

/** IR version a model at a given opset declares (onnx/helper.py VERSION_TABLE). */
function irVersionFor(opset: number): number {
  if (opset >= 13) return 7;
  if (opset >= 11) return 6;
  if (opset >= 10) return 5;
  return 3;
}

const isDefaultDomain = (domain: string | null | undefined): boolean => !domain || domain === 'ai.onnx';

/** Every tensor name of a graph and its subgraphs (for fresh names). */
function collectNames(graph: GraphProto, into: Set<string>): void {
  for (const t of graph.initializer ?? []) into.add(t.name ?? '');
  for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) into.add(v.name ?? '');
  for (const n of graph.node ?? []) {
    for (const name of [...(n.input ?? []), ...(n.output ?? [])]) into.add(name);
    for (const a of n.attribute ?? []) for (const g of a.g ? [a.g] : a.graphs ?? []) collectNames(g, into);
  }
}

/** The steps that apply between two opsets, in `since` order. */
function applicableSteps(from: number, to: number): Step[] {
  return steps.filter((s) => from < s.since && s.since <= to).sort((a, b) => a.since - b.since);
}

/**
 * The model upgraded to `target` (no copy when it is already there or newer). Throws
 * UnsupportedModelError below opset 7 and for nodes with no equivalent at the target.
 */
export function upgradeOpset(model: ModelProto, target: number, what = 'model'): OpsetUpgrade {
  const from = opsetVersion(model);
  if (from >= target) return { model, from, to: from, changes: [] };
  if (from < oldestOpset) {
    throw new UnsupportedModelError(`${what} imports opset ${from}; haq reads opset ${oldestOpset} and later: convert it with onnx.version_converter first`, { opset: from });
  }
  const todo = applicableSteps(from, target);
  const names = new Set<string>();
  collectNames(model.graph ?? {}, names);
  const reads = tensorsRead(model.graph ?? {});
  let counter = 0;
  const fresh = (base: string): string => {
    let name = base;
    while (names.has(name)) name = `${base}_${++counter}`;
    names.add(name);
    return name;
  };
  const changes: OpsetChange[] = [];

  const convertGraph = (graph: GraphProto, path: string): GraphProto => {
    const nodeNames = assignNodeNames(graph);
    const added: TensorProto[] = [];
    const constants = new Map<string, TensorProto>();
    for (const t of graph.initializer ?? []) constants.set(t.name ?? '', t);
    for (const n of graph.node ?? []) {
      const value = n.opType === 'Constant' ? findAttribute(n, 'value')?.t : null;
      if (value && n.output?.[0]) constants.set(n.output[0], value);
    }
    const ranks = new Map<string, number>();
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
      const dims = valueInfoDims(v);
      if (dims) ranks.set(v.name ?? '', dims.length);
    }
    const out: NodeProto[] = [];
    (graph.node ?? []).forEach((original, i) => {
      const name = nodeNames[i];
      const node: NodeProto = { ...original, name, attribute: (original.attribute ?? []).map((a) => convertSubgraphs(a, `${path}${name}/`)) };
      if (!isDefaultDomain(node.domain)) {
        out.push(node);
        return;
      }
      const ctx: StepContext = {
        node: name,
        constant: (tensor) => {
          const t = { ...tensor, name: fresh(`haq_opset_${name.replace(/[^A-Za-z0-9_]/g, '_')}`) } as TensorProto;
          added.push(t);
          constants.set(t.name!, t);
          return t.name!;
        },
        constantValues: (tensorName) => {
          const t = constants.get(tensorName);
          return t ? tensorToFloat32(t, tensorName) : null;
        },
        rank: (tensorName) => ranks.get(tensorName) ?? null,
        isRead: (tensorName) => reads.has(tensorName),
        fresh,
      };
      let current: NodeProto[] = [node];
      for (const step of todo) {
        const next: NodeProto[] = [];
        for (const n of current) {
          if (n.opType !== step.op || !isDefaultDomain(n.domain)) {
            next.push(n);
            continue;
          }
          const result = step.convert(n, ctx);
          if ('refuse' in result) {
            throw new UnsupportedModelError(
              `${what} imports opset ${from}, and its ${step.op} node "${path}${name}" cannot be converted to opset ${target}: ${result.refuse}; re-export the model at opset ${target} or later`,
              { op: step.op, node: `${path}${name}`, opset: from },
            );
          }
          changes.push({ node: `${path}${name}`, op: step.op, change: step.change });
          next.push(...result);
        }
        current = next;
      }
      out.push(...current);
    });
    return { ...graph, node: out, initializer: [...(graph.initializer ?? []), ...added] };
  };
  const convertSubgraphs = (a: AttributeProto, path: string): AttributeProto => {
    if (a.g) return { ...a, g: convertGraph(a.g, `${path}${a.name}/`) };
    if (a.graphs?.length) return { ...a, graphs: a.graphs.map((g, k) => convertGraph(g, `${path}${a.name}[${k}]/`)) };
    return a;
  };

  const graph = convertGraph(model.graph ?? {}, '');
  return {
    model: {
      ...model,
      irVersion: Math.max(toNumber(model.irVersion), irVersionFor(target)),
      opsetImport: (model.opsetImport ?? []).map((o) => (isDefaultDomain(o.domain) ? { ...o, version: target } : o)),
      graph,
    },
    from,
    to: target,
    changes,
  };
}

/** "Clip x18 (min/max attributes to inputs), Slice x1 (...)": the changes grouped by op and kind. */
export function summarizeChanges(changes: readonly OpsetChange[]): string {
  const groups = new Map<string, number>();
  for (const c of changes) groups.set(`${c.op}|${c.change}`, (groups.get(`${c.op}|${c.change}`) ?? 0) + 1);
  return [...groups].map(([key, n]) => {
    const [op, change] = key.split('|');
    return `${op} x${n} (${change})`;
  }).join(', ');
}

