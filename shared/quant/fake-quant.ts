/**
 * The fake-quantized evaluation graph: the model rewritten ONCE so that one onnxruntime
 * session serves every policy of a search (DESIGN.md "Beyond the reference").
 *
 * For each quantizable layer i (in layer-table order):
 *   - weight: the node's weight input becomes `haq_w_<i>`, a constant holding the FP32 weights
 *     that shared/onnx/runtime-weights.ts turns into graph inputs (in onnxruntime's optimized
 *     layout); the evaluator feeds the weights quantized in memory for the policy's wBits (linear
 *     or k-means) MULTIPLIED by the layer's activation scale s (see below);
 *   - activation: the node's activation input x becomes the integer codes, as floats:
 *       codes = Cast(Clip(QuantizeLinear(x, d, 0), qmin, qmax), float)
 *     QuantizeLinear computes saturate(round_half_even(x / d)) into an 8-bit container (int8 when
 *     the calibration saw negative inputs, uint8 otherwise) and the Clip narrows it to the b-bit
 *     code range; d, qmin and qmax are scalar graph inputs `haq_a_<i>_{divisor,qmin,qmax}`
 *     (shared/quant/linear.ts defines them per bitwidth; signed 1 bit is d = 2^-100, codes -1/+1).
 *     The layer then computes op(codes, W_q * s) + b = op(codes * s, W_q) + b: the dequantizing
 *     Mul is folded into the fed weights (Conv, Gemm and MatMul are linear in the weight), so an
 *     activation quantizer costs three cheap passes (one float, two on bytes). Opset 11 has no
 *     integer Clip: there the Clip runs on the float codes after the Cast (same codes).
 *   - bias: the layer's per-output-channel bias (BiasSlot: a Conv's B, a Gemm's C, the Add after a
 *     MatMul; zeros when a Conv or Gemm has none) becomes `haq_b_<i>`, fed like the weights: the
 *     bias corrected by accuracy recovery, held on the accumulator's int32 grid (see evaluator.ts);
 *   - a layer whose activation stays float (aBits null) gets no quantizer at all: a policy with
 *     float activations is a different graph (`floatActivations`), which the evaluator builds
 *     on first use. A search uses one: every activation quantized (linear) or none (k-means).
 * Every inserted node is named `haq_fq_<i>_<op>`, so the rewrite is recognisable in a viewer.
 * Pure: a decoded model in, a new model out (the input model is not modified).
 */
import { UnsupportedModelError } from '../errors';
import { assignNodeNames, constantSources, findLayerCandidates, modelInput, readConstant, tensorsRead, type LayerCandidate } from '../onnx/layers';
import {
  AttributeType,
  DataType,
  encodeModel,
  findAttribute,
  float32Tensor,
  opsetVersion,
  tensorDims,
  tensorToFloat32,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from '../onnx/proto';
import { valueInfo } from '../onnx/builder';
import { upgradeOpset } from '../onnx/opset';
import type { LayerTable } from '../onnx/types';

/** One quantizable layer of the rewritten graph: its weights and the names of its inputs. */
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
  /** The graph's bias input `haq_b_<i>` holding `bias` (null: the layer has no bias slot, see BiasSlot). */
  biasInput: string | null;
  bias: Float32Array | null;
  divisorInput: string;
  qminInput: string;
  qmaxInput: string;
  /** Element type of qmin/qmax: the 8-bit container (int8 signed, uint8 unsigned), or float on opset 11. */
  boundsType: 'int8' | 'uint8' | 'float32';
  /** Whether this graph quantizes the layer's activation (false: aBits null, float). */
  quantized: boolean;
  /** The layer's original activation input tensor. */
  activationName: string;
  /** The integer codes as floats (the layer's new input), a graph output only with `debugOutputs`. */
  codesName: string;
}

export interface FakeQuantModel {
  /** The rewritten graph (runtime-weights.ts turns its weights into inputs). */
  model: ModelProto;
  /** The data input's name. */
  inputName: string;
  /** The model's original outputs (the first one is the logits). */
  outputNames: string[];
  layers: FakeQuantLayer[];
}

export interface FakeQuantOptions {
  /** Also expose every layer's activation input and integer codes as graph outputs (tests). */
  debugOutputs?: boolean;
  /** Per layer: whether its activation is signed (from the calibration); default all unsigned. */
  signed?: readonly boolean[];
  /** Per layer: true leaves the activation float (no quantizer); default all quantized. */
  floatActivations?: readonly boolean[];
}

const attrFloat = (node: NodeProto, name: string, fallback: number): number => findAttribute(node, name)?.f ?? fallback;

/** Output-channel axis of a layer's weight. */
export function weightChannelAxis(c: Pick<LayerCandidate, 'op' | 'transB'>): number {
  if (c.op === 'Conv') return 0;
  if (c.op === 'Gemm') return c.transB ? 0 : 1;
  return 1; // MatMul weight [K, N]
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

/**
 * Where a layer's per-output-channel bias lives, so that accuracy recovery can correct it and the
 * quantizers can hold it as an int32 accumulator value:
 *   - a Conv's B input, or a Gemm's C input with alpha = beta = 1 and one value per output ([N] or
 *     [1, N]); a Conv or such a Gemm without one gets a zero bias in that input;
 *   - for a MatMul, the constant operand of the one Add that consumes its output, when it holds one
 *     value per output column (all dims 1 but the last).
 * null: no such place (a MatMul without that Add, a Gemm with alpha or beta != 1 or a full C).
 */
export interface BiasSlot {
  /** The node (index into graph.node) and input position that takes the bias. */
  nodeIndex: number;
  inputIndex: number;
  /** The bias per output channel (zeros when the layer had none). */
  values: Float32Array;
}

function biasSlot(model: ModelProto, c: LayerCandidate, outChannels: number): BiasSlot | null {
  const graph = model.graph ?? {};
  const nodes = graph.node ?? [];
  const constants = constantSources(graph);
  const perChannel = (name: string | undefined): Float32Array | null => {
    const src = name ? constants.get(name) : undefined;
    if (!src || src.tensor.dataType !== DataType.FLOAT) return null;
    const dims = tensorDims(src.tensor);
    if (dims[dims.length - 1] !== outChannels || dims.slice(0, -1).some((d) => d !== 1)) return null;
    return tensorToFloat32(src.tensor, name);
  };
  const node = nodes[c.nodeIndex];
  if (c.op === 'Conv' || c.op === 'Gemm') {
    if (c.op === 'Gemm' && (attrFloat(node, 'alpha', 1) !== 1 || attrFloat(node, 'beta', 1) !== 1)) return null;
    const given = node.input?.[2];
    if (!given) return { nodeIndex: c.nodeIndex, inputIndex: 2, values: new Float32Array(outChannels) };
    const values = perChannel(given);
    if (!values || (c.op === 'Conv' && values.length !== outChannels)) return null;
    return { nodeIndex: c.nodeIndex, inputIndex: 2, values };
  }
  const users = nodes.flatMap((n, i) => ((n.input ?? []).includes(c.outputName) ? [i] : []));
  if (users.length !== 1 || (graph.output ?? []).some((o) => o.name === c.outputName)) return null;
  const add = nodes[users[0]];
  if (add.opType !== 'Add' || (add.domain && add.domain !== 'ai.onnx')) return null;
  const inputIndex = add.input?.[0] === c.outputName ? 1 : 0;
  const values = perChannel(add.input?.[inputIndex]);
  return values ? { nodeIndex: users[0], inputIndex, values } : null;
}

/** A quantizable layer's constant data: weights (read once), dims, channel axis, bias slot. */
export interface LayerWeights {
  candidate: LayerCandidate;
  weight: Float32Array;
  weightDims: number[];
  channelAxis: number;
  bias: BiasSlot | null;
}

/** The quantizable layers of a model, in layer-table order. */
export function quantizableWeights(model: ModelProto, table: LayerTable): LayerWeights[] {
  return matchLayers(model, table).map((candidate, i) => {
    const { data, dims } = readConstant(model, candidate.weightInput);
    return { candidate, weight: data, weightDims: dims, channelAxis: weightChannelAxis(candidate), bias: biasSlot(model, candidate, table.layers[i].outChannels) };
  });
}

export function buildFakeQuantModel(given: ModelProto, table: LayerTable, options: FakeQuantOptions = {}): FakeQuantModel {
  const { debugOutputs = false, signed = [], floatActivations = [] } = options;
  // The quantizer needs opset >= 11 (QuantizeLinear, Clip with inputs): older graphs are upgraded.
  const model = upgradeOpset(given, 11).model;
  const opset = opsetVersion(model);
  const integerClip = opset >= 12;
  const graph = model.graph ?? {};
  const names = assignNodeNames(graph);
  const input = modelInput(model);
  const nodes: NodeProto[] = (graph.node ?? []).map((n, i) => ({ ...n, name: names[i], input: [...(n.input ?? [])] }));
  const inserts = new Map<number, NodeProto[]>();
  const newInputs: ValueInfoProto[] = [];
  const newInitializers: TensorProto[] = [];
  const debug: ValueInfoProto[] = [];
  const layers: FakeQuantLayer[] = quantizableWeights(model, table).map(({ candidate: c, weight, weightDims, channelAxis, bias }, i) => {
    const p = `haq_a_${i}`;
    const t = (s: string) => `haq_fq_${i}_${s}`;
    const isSigned = signed[i] ?? false;
    const quantized = !floatActivations[i];
    const layer: FakeQuantLayer = {
      name: c.name,
      index: i,
      op: c.op,
      weight,
      weightDims,
      channelAxis,
      weightInput: `haq_w_${i}`,
      biasInput: bias ? `haq_b_${i}` : null,
      bias: bias?.values ?? null,
      divisorInput: `${p}_divisor`,
      qminInput: `${p}_qmin`,
      qmaxInput: `${p}_qmax`,
      boundsType: integerClip ? (isSigned ? 'int8' : 'uint8') : 'float32',
      quantized,
      activationName: c.inputName,
      codesName: quantized ? t('codes') : c.inputName,
    };
    newInitializers.push(float32Tensor(layer.weightInput, weight, weightDims));
    const target = nodes[c.nodeIndex];
    target.input![1] = layer.weightInput;
    if (bias) {
      newInitializers.push(float32Tensor(layer.biasInput!, bias.values, [bias.values.length]));
      nodes[bias.nodeIndex].input![bias.inputIndex] = layer.biasInput!;
    }
    if (debugOutputs && c.inputName !== input.name) debug.push({ name: c.inputName, type: { tensorType: { elemType: DataType.FLOAT } } });
    if (!quantized) return layer;

    const container = isSigned ? DataType.INT8 : DataType.UINT8;
    newInputs.push(valueInfo(layer.divisorInput, 'float32', []), valueInfo(layer.qminInput, layer.boundsType, []), valueInfo(layer.qmaxInput, layer.boundsType, []));
    newInitializers.push({ name: t('zero'), dataType: container, dims: [], rawData: new Uint8Array(1) });
    const node = (op: string, ins: string[], out: string, attribute: NodeProto['attribute'] = []): NodeProto => ({
      name: t(op.toLowerCase()),
      opType: op,
      domain: '',
      input: ins,
      output: [out],
      attribute,
    });
    const toFloat = [{ name: 'to', type: AttributeType.INT, i: DataType.FLOAT }];
    const bounds = [layer.qminInput, layer.qmaxInput];
    inserts.set(
      c.nodeIndex,
      integerClip
        ? [
            node('QuantizeLinear', [c.inputName, layer.divisorInput, t('zero')], t('quantized')),
            node('Clip', [t('quantized'), ...bounds], t('clipped')),
            node('Cast', [t('clipped')], layer.codesName, toFloat),
          ]
        : [
            node('QuantizeLinear', [c.inputName, layer.divisorInput, t('zero')], t('quantized')),
            node('Cast', [t('quantized')], t('float'), toFloat),
            node('Clip', [t('float'), ...bounds], layer.codesName),
          ],
    );
    target.input![0] = layer.codesName;
    if (debugOutputs) debug.push({ name: layer.codesName, type: { tensorType: { elemType: DataType.FLOAT } } });
    return layer;
  });
  const rewritten: NodeProto[] = [];
  nodes.forEach((n, i) => rewritten.push(...(inserts.get(i) ?? []), n));
  // Initializers only the quantized layers used are dropped: the session would never read them.
  const stillUsed = tensorsRead(graph, rewritten); // subgraphs read outer-scope initializers too
  const initializer = (graph.initializer ?? []).filter((t) => stillUsed.has(t.name ?? ''));
  const seenDebug = new Set((graph.output ?? []).map((o) => o.name));
  const out: ModelProto = {
    ...model,
    graph: {
      ...graph,
      node: rewritten,
      initializer: [...initializer, ...newInitializers],
      input: [...(graph.input ?? []).filter((v) => !(graph.initializer ?? []).some((t) => t.name === v.name) || initializer.some((t) => t.name === v.name)), ...newInputs],
      output: [...(graph.output ?? []), ...debug.filter((d) => !seenDebug.has(d.name) && seenDebug.add(d.name))],
    },
  };
  return {
    model: out,
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
