/**
 * The layer table (shared/onnx/types.ts) from a decoded model: which nodes are quantizable,
 * their weights, attributes, shapes, #params and MACs. Pure: the tensor shapes come in as a
 * map (resolved by running onnxruntime once, see runtime.ts `resolveShapes` and inspect.ts).
 *
 * Quantizable (HAQ's layer set, DESIGN.md):
 *   - Conv with 2 spatial dims and a constant weight [c_out, c_in/group, kh, kw].
 *     kind 'depthwise' when group == c_in > 1 (each output channel reads exactly one input
 *     channel; c_out = multiplier * c_in, the multiplier may exceed 1 as in TF's
 *     depth_multiplier); every other group count (1 or grouped 1 < group < c_in) is 'conv'.
 *   - Gemm whose B input is a constant 2-D weight ([K, N], or [N, K] with transB = 1).
 *   - MatMul whose second input is a constant 2-D weight [K, N].
 * "Constant" = an initializer, the output of a Constant node, or either through Identity nodes.
 * Reported in `skipped` (not quantized): MatMul/Gemm/Conv whose weight is computed (e.g. MatMul
 * between two activations), Conv with 1 or 3 spatial dims, ConvTranspose, and every
 * Conv/Gemm/MatMul inside an If/Loop/Scan subgraph.
 */
import { InvalidInputError, UnsupportedModelError } from '../errors';
import {
  attrInt,
  attrInts,
  AttributeType,
  DataType,
  dataTypeName,
  findAttribute,
  graphDataInputs,
  tensorDims,
  tensorToFloat32,
  valueInfoDims,
  valueInfoElementType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto';
import type { LayerInfo, LayerTable } from './types';

export type SkippedLayer = LayerTable['skipped'][number];

/** A skipped op before shapes are known: `nodeIndex` in graph.node, null inside a subgraph (MACs unknown). */
export type SkippedCandidate = Omit<SkippedLayer, 'macs'> & { nodeIndex: number | null };

/** A quantizable node before shapes are known. */
export interface LayerCandidate {
  /** Position of the node in graph.node. */
  nodeIndex: number;
  name: string;
  op: 'Conv' | 'Gemm' | 'MatMul';
  inputName: string;
  /** The tensor that holds the weight data (initializer name or Constant output). */
  weightName: string;
  /** The node's own weight input (differs from weightName when an Identity sits in between). */
  weightInput: string;
  biasName: string | null;
  outputName: string;
  weightDims: number[];
  group: number;
  strides: [number, number];
  transA: number;
  transB: number;
}

const quantizableOps = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops with multiply-accumulates that haq leaves in float. */
const floatOps = new Set(['ConvTranspose', 'LSTM', 'GRU', 'RNN', 'Einsum']);
const isDefaultDomain = (domain: string | null | undefined): boolean => !domain || domain === 'ai.onnx';
const subgraphOps = new Set(['If', 'Loop', 'Scan']);

/**
 * Unique, non-empty node names for graph.node, deterministic: a node keeps its name when it is
 * non-empty and not taken by an earlier node; otherwise it becomes `<optype>_<index>` (index in
 * graph.node, e.g. `conv_3`), with `_2`, `_3`, ... appended until unused. The quantizer and the
 * exporter use the same function so names match the layer table.
 */
export function assignNodeNames(graph: GraphProto): string[] {
  const nodes = graph.node ?? [];
  const given = new Set(nodes.map((n) => n.name).filter((n): n is string => !!n));
  const used = new Set<string>();
  return nodes.map((node, i) => {
    let name = node.name ?? '';
    if (!name || used.has(name)) {
      const base = `${(node.opType ?? 'node').toLowerCase()}_${i}`;
      name = base;
      for (let k = 2; used.has(name) || (given.has(name) && name !== node.name); k++) name = `${base}_${k}`;
    }
    used.add(name);
    return name;
  });
}

/**
 * Every tensor name that `nodes` (default: the graph's) read, including the outer-scope names
 * their If/Loop/Scan bodies read, plus the graph's outputs: what must stay defined.
 */
export function tensorsRead(graph: GraphProto, nodes: readonly NodeProto[] = graph.node ?? []): Set<string> {
  const names = new Set<string>((graph.output ?? []).map((o) => o.name ?? ''));
  const visit = (list: readonly NodeProto[]) => {
    for (const n of list) {
      for (const name of n.input ?? []) names.add(name);
      for (const a of n.attribute ?? []) {
        for (const g of a.g ? [a.g] : a.graphs ?? []) {
          for (const o of g.output ?? []) names.add(o.name ?? '');
          visit(g.node ?? []);
        }
      }
    }
  };
  visit(nodes);
  return names;
}

export interface ConstantSource {
  /** The tensor name that holds the data (initializer name or Constant output). */
  name: string;
  kind: 'initializer' | 'constant';
  tensor: TensorProto;
}

/**
 * Every constant tensor of the top-level graph by the name nodes use for it: initializers,
 * Constant node outputs, and Identity outputs of either (followed through chains).
 */
export function constantSources(graph: GraphProto): Map<string, ConstantSource> {
  const out = new Map<string, ConstantSource>();
  for (const t of graph.initializer ?? []) if (t.name) out.set(t.name, { name: t.name, kind: 'initializer', tensor: t });
  for (const node of graph.node ?? []) {
    if (node.opType !== 'Constant' || !node.output?.[0]) continue;
    const tensor = constantNodeTensor(node);
    if (tensor) out.set(node.output[0], { name: node.output[0], kind: 'constant', tensor: { ...tensor, name: node.output[0] } });
  }
  // Identity chains: repeat until no new name resolves (graph order may not be topological).
  for (let changed = true; changed; ) {
    changed = false;
    for (const node of graph.node ?? []) {
      if (node.opType !== 'Identity') continue;
      const src = out.get(node.input?.[0] ?? '');
      const dst = node.output?.[0];
      if (src && dst && !out.has(dst)) {
        out.set(dst, src);
        changed = true;
      }
    }
  }
  return out;
}

/** The tensor a Constant node produces (`value`, `value_float(s)`, `value_int(s)`), or null. */
function constantNodeTensor(node: NodeProto): TensorProto | null {
  const value = findAttribute(node, 'value');
  if (value?.t) return value.t;
  const f = findAttribute(node, 'value_float');
  if (f) return { dataType: DataType.FLOAT, dims: [], floatData: [f.f ?? 0] };
  const fs = findAttribute(node, 'value_floats');
  if (fs) return { dataType: DataType.FLOAT, dims: [fs.floats?.length ?? 0], floatData: fs.floats ?? [] };
  const i = findAttribute(node, 'value_int');
  if (i) return { dataType: DataType.INT64, dims: [], int64Data: [i.i ?? 0] };
  const is = findAttribute(node, 'value_ints');
  if (is) return { dataType: DataType.INT64, dims: [is.ints?.length ?? 0], int64Data: is.ints ?? [] };
  return null;
}

/** A constant weight's values and dims by the name a node uses (initializer, Constant, Identity). */
export function readConstant(model: ModelProto, name: string): { data: Float32Array; dims: number[] } {
  const src = constantSources(model.graph ?? {}).get(name);
  if (!src) throw new UnsupportedModelError(`tensor "${name}" is not a constant (initializer or Constant node) of the model`, { tensor: name });
  return { data: tensorToFloat32(src.tensor, name), dims: tensorDims(src.tensor) };
}

/** Finds the quantizable layers and the skipped ones, in graph order. */
export function findLayerCandidates(model: ModelProto): { layers: LayerCandidate[]; skipped: SkippedCandidate[] } {
  const graph = model.graph ?? {};
  const names = assignNodeNames(graph);
  const constants = constantSources(graph);
  const layers: LayerCandidate[] = [];
  const skipped: SkippedCandidate[] = [];
  (graph.node ?? []).forEach((node, nodeIndex) => {
    const op = node.opType ?? '';
    const name = names[nodeIndex];
    if (subgraphOps.has(op)) {
      skipped.push(...subgraphLayers(node, name));
      return;
    }
    if (floatOps.has(op) && isDefaultDomain(node.domain)) {
      skipped.push({ nodeIndex, name, op, reason: `${op} has no quantized form in haq (only Conv, Gemm and MatMul are quantized)` });
      return;
    }
    if (!quantizableOps.has(op) || (node.domain && node.domain !== 'ai.onnx')) return;
    const inputs = node.input ?? [];
    const outputName = node.output?.[0] ?? '';
    const weightIndex = 1;
    const weight = constants.get(inputs[weightIndex] ?? '');
    if (!weight) {
      const aConst = constants.has(inputs[0] ?? '');
      skipped.push({
        nodeIndex,
        name,
        op,
        reason: aConst
          ? `its constant operand is the first input and the second ("${inputs[1]}") is computed; only a constant second input is quantized`
          : `its weight input "${inputs[1]}" is computed, not a constant (${op === 'MatMul' ? 'a MatMul between two activations' : 'no initializer or Constant node'})`,
      });
      return;
    }
    const weightDims = tensorDims(weight.tensor);
    const weightType = weight.tensor.dataType ?? 0;
    if (weightType !== DataType.FLOAT) {
      skipped.push({ nodeIndex, name, op, reason: `its weight "${weight.name}" is ${dataTypeName(weightType)}, not float32 (already quantized?)` });
      return;
    }
    const bias = op === 'MatMul' ? null : inputs[2] ? constants.get(inputs[2])?.name ?? inputs[2] : null;
    const base = { nodeIndex, name, inputName: inputs[0], weightName: weight.name, weightInput: inputs[1], biasName: bias, outputName, weightDims };
    if (op === 'Conv') {
      if (weightDims.length !== 4) {
        skipped.push({ nodeIndex, name, op, reason: `Conv with ${weightDims.length - 2} spatial dims; only 2-D convolutions are quantized` });
        return;
      }
      const s = attrInts(node, 'strides') ?? [1, 1];
      layers.push({ ...base, op, group: attrInt(node, 'group', 1), strides: [s[0] ?? 1, s[1] ?? 1], transA: 0, transB: 0 });
      return;
    }
    if (weightDims.length !== 2) {
      skipped.push({ nodeIndex, name, op, reason: `its weight "${weight.name}" has ${weightDims.length} dims [${weightDims.join(', ')}]; only 2-D weights are quantized` });
      return;
    }
    layers.push({
      ...base,
      op: op as 'Gemm' | 'MatMul',
      group: 1,
      strides: [1, 1],
      transA: op === 'Gemm' ? attrInt(node, 'transA', 0) : 0,
      transB: op === 'Gemm' ? attrInt(node, 'transB', 0) : 0,
    });
  });
  return { layers, skipped };
}

/** Conv/Gemm/MatMul and float-only ops inside a node's subgraph attributes (recursively). */
function subgraphLayers(node: NodeProto, nodeName: string): SkippedCandidate[] {
  const out: SkippedCandidate[] = [];
  for (const attr of node.attribute ?? []) {
    const graphs = attr.type === AttributeType.GRAPHS ? attr.graphs ?? [] : attr.g ? [attr.g] : [];
    for (const g of graphs) {
      const names = assignNodeNames(g);
      (g.node ?? []).forEach((inner, i) => {
        const path = `${nodeName}/${attr.name}/${names[i]}`;
        if (quantizableOps.has(inner.opType ?? '') || floatOps.has(inner.opType ?? '')) {
          out.push({ nodeIndex: null, name: path, op: inner.opType ?? '', reason: `inside the "${attr.name}" subgraph of ${node.opType} node ${nodeName}; ops in If/Loop/Scan bodies are not quantized` });
        }
        if (subgraphOps.has(inner.opType ?? '')) out.push(...subgraphLayers(inner, path));
      });
    }
  }
  return out;
}

/** The model's one data input: its name, element type, and declared dims (null = dynamic). */
export function modelInput(model: ModelProto, what = 'model'): { name: string; dims: Array<number | null> } {
  const inputs = graphDataInputs(model.graph ?? {});
  if (inputs.length !== 1) {
    throw new UnsupportedModelError(
      `${what} has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ') || 'none'}); haq handles models with exactly one input tensor`,
      { inputs: inputs.map((i) => i.name) },
    );
  }
  const input = inputs[0];
  const type = valueInfoElementType(input);
  if (type !== DataType.FLOAT) {
    throw new UnsupportedModelError(`${what} input "${input.name}" is ${dataTypeName(type)}; haq evaluates models with a float32 input`, { input: input.name });
  }
  const dims = valueInfoDims(input);
  if (!dims) throw new UnsupportedModelError(`${what} input "${input.name}" has no declared shape; re-export it with a shape`, { input: input.name });
  return { name: input.name ?? '', dims };
}

/** Parses an --input-shape value such as `1,3,224,224` (also `1x3x224x224`). */
export function parseShape(text: string, what = '--input-shape'): number[] {
  const parts = text.trim().split(/\s*[,x]\s*/);
  const dims = parts.map(Number);
  if (parts.length === 0 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new InvalidInputError(`${what} "${text}" is not a list of positive integers; write it like 1,3,224,224`, { value: text });
  }
  return dims;
}

/**
 * The concrete input shape: declared dims, with `override` (from --input-shape) when given.
 * A dynamic first (batch) dim defaults to 1; any other dynamic dim needs the override.
 */
export function resolveInputShape(input: { name: string; dims: Array<number | null> }, override?: number[]): number[] {
  const declared = `[${input.dims.map((d, i) => d ?? (i === 0 ? 'N' : '?')).join(', ')}]`;
  if (override) {
    if (override.length !== input.dims.length) {
      throw new InvalidInputError(
        `--input-shape ${override.join(',')} has ${override.length} dims but the model input "${input.name}" has ${input.dims.length} ${declared}`,
        { override, declared: input.dims },
      );
    }
    input.dims.forEach((d, i) => {
      if (d !== null && d !== override[i]) {
        throw new InvalidInputError(
          `--input-shape ${override.join(',')} does not match the model input "${input.name}" ${declared}: dim ${i} is fixed at ${d}`,
          { override, declared: input.dims },
        );
      }
    });
    return [...override];
  }
  return input.dims.map((d, i) => {
    if (d !== null) return d;
    if (i === 0) return 1;
    throw new InvalidInputError(
      `the model input "${input.name}" has dynamic dims ${declared}; pass --input-shape with every dim, e.g. --input-shape ${input.dims.map((x, j) => x ?? (j === 0 ? 1 : 224)).join(',')}`,
      { declared: input.dims },
    );
  });
}

/**
 * The concrete input shape when data is at hand: the data's sample shape fills every dynamic
 * dim (a dynamic batch dim is 1; the model's fixed batch dim stays). `override` (--input-shape)
 * may also be given and must then agree with the data on every dim but the batch.
 * `sampleShape` must already fit the declared dims (dataset.ts checkSampleShape).
 */
export function inputShapeFromData(
  input: { name: string; dims: Array<number | null> },
  sampleShape: number[],
  dataWhat: string,
  override?: number[],
): number[] {
  const shape = [input.dims[0] ?? override?.[0] ?? 1, ...sampleShape];
  if (override && (override.length !== shape.length || override.slice(1).some((d, i) => d !== sampleShape[i]))) {
    throw new InvalidInputError(
      `--input-shape ${override.join(',')} disagrees with ${dataWhat}, whose samples are [${sampleShape.join(', ')}]; drop --input-shape (the data fixes the shape) or pass ${shape.join(',')}`,
      { override, sampleShape },
    );
  }
  return resolveInputShape(input, shape);
}

const product = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);

/**
 * One layer's LayerInfo from its candidate and the resolved activation shapes.
 * MACs (batch included):
 *   Conv:   N * c_out * H_out * W_out * (c_in / group) * kh * kw
 *   Gemm:   M * K * N            (A is [M, K] after transA)
 *   MatMul: prod(A.shape[:-1]) * K * N
 */
export function layerInfo(c: LayerCandidate, index: number, inputShape: number[], outputShape: number[]): LayerInfo {
  const common = {
    index,
    name: c.name,
    op: c.op,
    groups: c.group,
    inputShape,
    outputShape,
    params: product(c.weightDims),
    inputName: c.inputName,
    weightName: c.weightName,
    biasName: c.biasName,
    outputName: c.outputName,
  };
  if (c.op === 'Conv') {
    const [cOut, cInPerGroup, kh, kw] = c.weightDims;
    const cIn = inputShape[1];
    if (inputShape.length !== 4 || outputShape.length !== 4 || cIn !== cInPerGroup * c.group) {
      throw new UnsupportedModelError(
        `Conv ${c.name}: input [${inputShape.join(', ')}] and weight [${c.weightDims.join(', ')}] with group ${c.group} do not fit (c_in must be ${cInPerGroup} * ${c.group})`,
        { layer: c.name },
      );
    }
    const [n, , hOut, wOut] = outputShape;
    return {
      ...common,
      kind: c.group === cIn && c.group > 1 ? 'depthwise' : 'conv',
      inChannels: cIn,
      outChannels: cOut,
      kernel: [kh, kw],
      stride: c.strides,
      macs: n * cOut * hOut * wOut * cInPerGroup * kh * kw,
    };
  }
  const [w0, w1] = c.weightDims;
  const [k, nOut] = c.op === 'Gemm' && c.transB ? [w1, w0] : [w0, w1];
  const rows = c.op === 'Gemm' ? (c.transA ? inputShape[1] : inputShape[0]) : product(inputShape.slice(0, -1));
  return { ...common, kind: 'linear', inChannels: k, outChannels: nOut, kernel: [1, 1], stride: [1, 1], macs: rows * k * nOut };
}

/** The tensor names whose shapes buildLayerTable needs: the layers' activations and the skipped top-level ops' inputs and output. */
export function shapeNames(model: ModelProto): string[] {
  const { layers, skipped } = findLayerCandidates(model);
  const nodes = model.graph?.node ?? [];
  const constants = constantSources(model.graph ?? {});
  const ofSkipped = skipped.flatMap((s) => (s.nodeIndex === null ? [] : [...(nodes[s.nodeIndex].input ?? []), nodes[s.nodeIndex].output?.[0] ?? '']));
  return [...new Set([...layers.flatMap((c) => [c.inputName, c.outputName]), ...ofSkipped])].filter((n) => n !== '' && !constants.has(n));
}

/**
 * Multiply-accumulates of an op left in float, from its tensors' shapes (constants' dims or
 * resolved shapes); null when a shape is missing or the op has no simple count (Einsum):
 *   MatMul, Gemm:        outputs * K (K = A's last dim; Gemm: A[1], or A[0] with transA)
 *   Conv (1-D, 3-D):     outputs * (c_in / group) * prod(kernel)
 *   ConvTranspose:       inputs * (c_out / group) * prod(kernel) (weight [c_in, c_out/group, k...])
 *   LSTM, GRU, RNN:      seq * batch * (|W| + |R|) (X [seq, batch, in] or [batch, seq, in])
 */
export function floatOpMacs(node: NodeProto, shapeOf: (name: string) => number[] | undefined): number | null {
  const ins = (node.input ?? []).map((n) => (n ? shapeOf(n) : undefined));
  const out = shapeOf(node.output?.[0] ?? '');
  const [a, w, r] = ins;
  switch (node.opType) {
    case 'MatMul':
      return a && out ? product(out) * a[a.length - 1] : null;
    case 'Gemm':
      return a && out ? product(out) * (attrInt(node, 'transA', 0) ? a[0] : a[1]) : null;
    case 'Conv':
      return w && out ? product(out) * product(w.slice(1)) : null;
    case 'ConvTranspose':
      return a && w ? product(a) * product(w.slice(1)) : null;
    case 'LSTM':
    case 'GRU':
    case 'RNN':
      return a && w && r ? a[0] * a[1] * (product(w) + product(r)) : null;
    default:
      return null;
  }
}

/** Assembles the table. Throws UnsupportedModelError when there is no quantizable layer. */
export function buildLayerTable(
  model: ModelProto,
  args: { modelHash: string; inputShape: number[]; shapes: Map<string, number[]>; what?: string },
): LayerTable {
  const { layers: candidates, skipped } = findLayerCandidates(model);
  if (candidates.length === 0) {
    const ops = [...new Set((model.graph?.node ?? []).map((n) => n.opType))].join(', ');
    throw new UnsupportedModelError(
      `${args.what ?? 'model'} has no quantizable layer (Conv, Gemm, or MatMul with a constant weight); its ops are ${ops}` +
        (skipped.length ? `; skipped: ${skipped.map((s) => `${s.name} (${s.reason})`).join('; ')}` : ''),
      { skipped },
    );
  }
  const layers = candidates.map((c, i) => {
    const inShape = args.shapes.get(c.inputName);
    const outShape = args.shapes.get(c.outputName);
    if (!inShape || !outShape) {
      throw new UnsupportedModelError(`the shape of ${!inShape ? c.inputName : c.outputName} (layer ${c.name}) could not be resolved`, { layer: c.name });
    }
    return layerInfo(c, i, inShape, outShape);
  });
  const constants = constantSources(model.graph ?? {});
  const shapeOf = (name: string) => (constants.has(name) ? tensorDims(constants.get(name)!.tensor) : args.shapes.get(name));
  const skippedLayers: SkippedLayer[] = skipped.map(({ nodeIndex, ...s }) => ({
    ...s,
    macs: nodeIndex === null ? null : floatOpMacs(model.graph!.node![nodeIndex], shapeOf),
  }));
  return {
    modelHash: args.modelHash,
    inputShape: args.inputShape,
    layers,
    totals: {
      params: layers.reduce((a, l) => a + l.params, 0),
      macs: layers.reduce((a, l) => a + l.macs, 0),
      skippedMacs: skippedLayers.reduce((a, l) => a + (l.macs ?? 0), 0),
    },
    skipped: skippedLayers,
  };
}
