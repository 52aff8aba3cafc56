/**
 * The fake-quantized evaluation graph: the model rewritten ONCE so that one onnxruntime
 * session serves every policy of a search (DESIGN.md "Beyond the reference").
 *
 * For each quantizable layer i (in layer-table order):
 *   - weight: the node's weight input becomes a graph input `haq_w_<i>`; the evaluator feeds
 *     the weights quantized in memory for the policy's wBits (linear or k-means);
 *   - activation: the node's activation input x passes through four elementwise ops
 *       q = Clip(Round(Div(x, d)), qmin, qmax)      (the integer code, as float)
 *       y = Mul(q, s)
 *     whose d, qmin, qmax, s are float scalar graph inputs `haq_a_<i>_{divisor,qmin,qmax,scale}`
 *     (shared/quant/linear.ts defines them per bitwidth). A float activation (aBits null) is
 *     fed d = s = 2^-64 and qmin/qmax = -/+Infinity: x * 2^64 is an integer for |x| >= 2^-41, so
 *     Round changes nothing there and y = x exactly; below 2^-41 the error is at most 2^-65
 *     (and |x| > 2^64 would overflow), far under float32 resolution of any real activation.
 *     No Where/bypass branch: every policy runs the same four ops.
 * Every inserted node is named `haq_fq_<i>_<op>`, so the rewrite is recognisable in a viewer.
 * Pure: a decoded model in, a new model out (the input model is not modified).
 */
import { UnsupportedModelError } from '../errors';
import { assignNodeNames, findLayerCandidates, modelInput, readConstant, type LayerCandidate } from '../onnx/layers';
import { DataType, encodeModel, opsetVersion, type ModelProto, type NodeProto, type ValueInfoProto } from '../onnx/proto';
import type { LayerTable } from '../onnx/types';

/** Graph-input names of one layer's quantizers. */
export interface FakeQuantLayer {
  name: string;
  index: number;
  op: 'Conv' | 'Gemm' | 'MatMul';
  /** The FP32 weights (read once) and their dims. */
  weight: Float32Array;
  weightDims: number[];
  /** Output-channel axis of the weight: 0 for Conv and Gemm with transB = 1, 1 for MatMul / Gemm with transB = 0. */
  channelAxis: number;
  weightInput: string;
  divisorInput: string;
  qminInput: string;
  qmaxInput: string;
  scaleInput: string;
  /** The layer's original activation input tensor. */
  activationName: string;
  /** The Clip output (integer codes as float), a graph output only with `debugOutputs`. */
  codesName: string;
}

export interface FakeQuantModel {
  bytes: Uint8Array;
  /** The data input's name. */
  inputName: string;
  /** The model's original outputs (the first one is the logits). */
  outputNames: string[];
  layers: FakeQuantLayer[];
}

export interface FakeQuantOptions {
  /** Also expose every layer's activation input and integer codes as graph outputs (tests). */
  debugOutputs?: boolean;
}

/** Output-channel axis of a layer's weight. */
export function weightChannelAxis(c: Pick<LayerCandidate, 'op' | 'transB'>): number {
  if (c.op === 'Conv') return 0;
  if (c.op === 'Gemm') return c.transB ? 0 : 1;
  return 1; // MatMul weight [K, N]
}

function scalarInput(name: string, elemType: number): ValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: [] } } } };
}

function floatInput(name: string, dims: number[]): ValueInfoProto {
  return { name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

/** Matches the layer table's layers with the model's candidates, by name (both use assignNodeNames). */
export function matchLayers(model: ModelProto, table: LayerTable): LayerCandidate[] {
  const { layers } = findLayerCandidates(model);
  const byName = new Map(layers.map((c) => [c.name, c]));
  const missing = table.layers.filter((l) => !byName.has(l.name)).map((l) => l.name);
  if (missing.length) {
    throw new UnsupportedModelError(
      `the layer table does not belong to this model: layers ${missing.map((n) => `"${n}"`).join(', ')} are not quantizable nodes of it; rebuild the table with haq inspect`,
      { missing },
    );
  }
  return table.layers.map((l) => byName.get(l.name)!);
}

export function buildFakeQuantModel(model: ModelProto, table: LayerTable, { debugOutputs = false }: FakeQuantOptions = {}): FakeQuantModel {
  const opset = opsetVersion(model);
  if (opset < 11) {
    throw new UnsupportedModelError(`the model imports opset ${opset}; the quantizer needs opset >= 11 (Round, Clip with inputs): re-export it with opset 13 or later`, {
      opset,
    });
  }
  const graph = model.graph ?? {};
  const names = assignNodeNames(graph);
  const candidates = matchLayers(model, table);
  const input = modelInput(model);
  const nodes: NodeProto[] = (graph.node ?? []).map((n, i) => ({ ...n, name: names[i], input: [...(n.input ?? [])] }));
  const inserts = new Map<number, NodeProto[]>();
  const newInputs: ValueInfoProto[] = [];
  const debug: ValueInfoProto[] = [];
  const layers: FakeQuantLayer[] = candidates.map((c, i) => {
    const { data, dims } = readConstant(model, c.weightInput);
    const p = `haq_a_${i}`;
    const layer: FakeQuantLayer = {
      name: c.name,
      index: i,
      op: c.op,
      weight: data,
      weightDims: dims,
      channelAxis: weightChannelAxis(c),
      weightInput: `haq_w_${i}`,
      divisorInput: `${p}_divisor`,
      qminInput: `${p}_qmin`,
      qmaxInput: `${p}_qmax`,
      scaleInput: `${p}_scale`,
      activationName: c.inputName,
      codesName: `haq_fq_${i}_codes`,
    };
    newInputs.push(
      floatInput(layer.weightInput, dims),
      scalarInput(layer.divisorInput, DataType.FLOAT),
      scalarInput(layer.qminInput, DataType.FLOAT),
      scalarInput(layer.qmaxInput, DataType.FLOAT),
      scalarInput(layer.scaleInput, DataType.FLOAT),
    );
    const t = (s: string) => `haq_fq_${i}_${s}`;
    const node = (op: string, ins: string[], out: string): NodeProto => ({ name: t(op.toLowerCase()), opType: op, domain: '', input: ins, output: [out] });
    const x = c.inputName;
    inserts.set(c.nodeIndex, [
      node('Div', [x, layer.divisorInput], t('scaled')),
      node('Round', [t('scaled')], t('rounded')),
      node('Clip', [t('rounded'), layer.qminInput, layer.qmaxInput], layer.codesName),
      node('Mul', [layer.codesName, layer.scaleInput], t('out')),
    ]);
    const target = nodes[c.nodeIndex];
    target.input![0] = t('out');
    target.input![1] = layer.weightInput;
    if (debugOutputs) {
      debug.push({ name: layer.codesName, type: { tensorType: { elemType: DataType.FLOAT } } });
      if (x !== input.name) debug.push({ name: x, type: { tensorType: { elemType: DataType.FLOAT } } });
    }
    return layer;
  });
  const rewritten: NodeProto[] = [];
  nodes.forEach((n, i) => rewritten.push(...(inserts.get(i) ?? []), n));
  // Initializers only the quantized layers used are dropped: the session would never read them.
  const stillUsed = new Set(rewritten.flatMap((n) => n.input ?? []));
  for (const o of graph.output ?? []) stillUsed.add(o.name ?? '');
  const initializer = (graph.initializer ?? []).filter((t) => stillUsed.has(t.name ?? ''));
  const seenDebug = new Set((graph.output ?? []).map((o) => o.name));
  const out: ModelProto = {
    ...model,
    graph: {
      ...graph,
      node: rewritten,
      initializer,
      input: [...(graph.input ?? []).filter((v) => !(graph.initializer ?? []).some((t) => t.name === v.name) || initializer.some((t) => t.name === v.name)), ...newInputs],
      output: [...(graph.output ?? []), ...debug.filter((d) => !seenDebug.has(d.name) && seenDebug.add(d.name))],
    },
  };
  return {
    bytes: encodeModel(out),
    inputName: input.name,
    outputNames: (graph.output ?? []).map((o) => o.name ?? ''),
    layers,
  };
}

/** The model with every layer's activation input added as a graph output (calibration runs it). */
export function exposeLayerInputs(model: ModelProto, table: LayerTable): { bytes: Uint8Array; inputName: string; exposed: string[] } {
  const graph = model.graph ?? {};
  const input = modelInput(model);
  const have = new Set((graph.output ?? []).map((o) => o.name));
  const exposed = [...new Set(table.layers.map((l) => l.inputName))].filter((n) => n !== input.name);
  const extra = exposed.filter((n) => !have.has(n)).map((name) => ({ name, type: { tensorType: { elemType: DataType.FLOAT } } }));
  const out: ModelProto = { ...model, graph: { ...graph, output: [...(graph.output ?? []), ...extra] } };
  return { bytes: encodeModel(out), inputName: input.name, exposed };
}
