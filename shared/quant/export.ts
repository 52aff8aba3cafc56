/**
 * Deployable export: the model with the policy applied, as a standard ONNX model that
 * onnxruntime (or any ONNX runtime with QDQ support) runs.
 *
 * Weights (per layer):
 *   linear  -> integer codes stored as INT4 (wBits <= 4, when the model can use opset 21)
 *              or INT8, followed by DequantizeLinear with the per-channel (axis) or per-tensor
 *              float scale: exactly the evaluator's weights, codes * scale;
 *   k-means -> UINT8 centroid indices plus a float codebook, Cast + Gather (the codebook look-up).
 * Activations (each layer's input), aBits:
 *   1..8 (all but signed 1 bit) -> QuantizeLinear/DequantizeLinear in an 8-bit container, UINT8
 *              (unsigned) or INT8 (signed), preceded below 8 bits (and when signed) by a Clip
 *              to [qmin*scale, qmax*scale], so the codes are exactly the evaluator's b-bit codes.
 *              8-bit containers rather than UINT4/INT4: onnxruntime's optimizer moves QDQ pairs
 *              across MaxPool, which has no 4-bit kernel, and then refuses the model;
 *   signed 1 bit -> the fake-quant form (sign x alpha has no QDQ equivalent): Div, Round,
 *              Clip, Mul with constant scale and bounds, nodes named `haq_fakequant_<i>_*`;
   null -> float, untouched.
 * The model's metadata_props carry `haq.quantization` (JSON: format, opset, and each layer's
 * representation) and `haq.note` (a sentence on the fake-quant nodes).
 * A model below opset 13 is first upgraded to 13 (shared/onnx/opset.ts).
 * The default-domain opset is raised to 21 (for INT4/UINT4) only when the model is at opset
 * >= 13 and every op in it has the same inputs and attributes at 13 and 21 (a fixed list);
 * otherwise 4-bit weights are stored in 8-bit containers, and the opset stays.
 * Pure: bytes in, bytes out.
 */
import { InvalidInputError } from '../errors';
import { assignNodeNames, tensorsRead } from '../onnx/layers';
import { upgradeOpset } from '../onnx/opset';
import { AttributeType, DataType, decodeModel, encodeModel, float32Tensor, opsetVersion, toNumber, type NodeProto, type TensorProto } from '../onnx/proto';
import type { LayerTable } from '../onnx/types';
import { deriveSeed, Rng } from '../rng';
import { checkCalibration, type QuantizedLayer, type WeightMode } from './evaluator';
import type { Calibration } from './calibration';
import type { ClipMethod } from './clip-range';
import { quantizableWeights } from './fake-quant';
import { kmeansQuantize } from './kmeans';
import { accumulatorBias, activationQuant, quantizeWeightsLinear, type LinearWeights } from './linear';
import { validatePolicy, type Policy } from './policy';

/** TensorProto.DataType codes added after the onnx.proto our decoder knows (ONNX 1.16). */
export const DataTypeInt4 = { UINT4: 21, INT4: 22 } as const;

export interface ExportOptions {
  /** Per layer (table order), the linear weights for the policy's wBits from accuracy recovery (recovery.ts policyLayers); default: round to nearest. */
  recovered?: ReadonlyArray<QuantizedLayer | null>;
  weightMode?: WeightMode;
  perChannel?: boolean;
  clipMethod?: ClipMethod;
  seed?: number;
  /** Allow raising the opset to 21 for INT4/UINT4 (default true; see the module comment). */
  allowOpset21?: boolean;
}

export type WeightFormat = 'qdq-int8' | 'qdq-int4' | 'kmeans-uint8';
/** qdq-*: QuantizeLinear/DequantizeLinear in an 8-bit container (codes narrowed to aBits by a Clip). */
export type ActivationFormat = 'qdq-uint8' | 'qdq-int8' | 'fake-quant' | 'float';

/** int32: an accumulator bias (codes x activation scale x weight scale); float: corrected by recovery; model: as in the model. */
export type BiasFormat = 'qdq-int32' | 'float' | 'model' | 'none';

export interface ExportedLayer {
  name: string;
  wBits: number;
  aBits: number | null;
  weight: WeightFormat;
  activation: ActivationFormat;
  bias: BiasFormat;
}

export interface ExportResult {
  bytes: Uint8Array;
  opset: number;
  layers: ExportedLayer[];
}

/** Ops whose inputs, outputs and attributes are the same at opset 13 and 21 (ONNX Changelog). */
const stableOps13To21 = new Set([
  'Conv', 'Gemm', 'MatMul', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'Softmax', 'LogSoftmax',
  'Add', 'Sub', 'Mul', 'Div', 'Sqrt', 'Pow', 'Exp', 'Erf', 'Neg', 'Abs', 'Clip', 'Max', 'Min',
  'Flatten', 'Reshape', 'Transpose', 'Concat', 'Identity', 'Constant', 'Gather', 'Shape', 'Squeeze', 'Unsqueeze',
  'GlobalAveragePool', 'GlobalMaxPool', 'MaxPool', 'AveragePool', 'BatchNormalization', 'Dropout', 'Cast', 'Slice',
]);

function canUseOpset21(opset: number, ops: Iterable<string>): boolean {
  if (opset >= 21) return true;
  if (opset < 13) return false;
  for (const op of ops) if (!stableOps13To21.has(op)) return false;
  return true;
}

/** Little-endian two's-complement nibbles, first element in the low nibble (onnx.proto INT4/UINT4). */
export function packInt4(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 2));
  for (let i = 0; i < values.length; i++) {
    const nib = values[i] & 0x0f;
    out[i >> 1] |= i & 1 ? nib << 4 : nib;
  }
  return out;
}

function intTensor(name: string, dataType: number, values: ArrayLike<number>, dims: number[]): TensorProto {
  const rawData = dataType === DataTypeInt4.INT4 || dataType === DataTypeInt4.UINT4 ? packInt4(values) : Uint8Array.from(values, (v) => v & 0xff);
  return { name, dataType, dims, rawData };
}

const intAttr = (name: string, i: number) => ({ name, type: AttributeType.INT, i });

export function exportQuantizedModel(
  modelBytes: Uint8Array,
  table: LayerTable,
  policyValue: unknown,
  calibration: Calibration | null,
  options: ExportOptions = {},
): ExportResult {
  const { weightMode = 'linear', perChannel = true, clipMethod = 'mse', seed = 0, allowOpset21 = true } = options;
  const policy: Policy = validatePolicy(policyValue, table);
  if (calibration) checkCalibration(calibration, table);
  const needsCalibration = policy.layers.filter((l) => l.aBits !== null).map((l) => l.name);
  if (needsCalibration.length && !calibration) {
    throw new InvalidInputError(
      `layers ${needsCalibration.join(', ')} quantize activations and need calibrated ranges: pass calibration data (haq export --data DIR with calib-inputs.npy) or set their aBits to null`,
    );
  }
  // The QDQ form needs opset >= 13 (per-channel DequantizeLinear): older graphs are upgraded.
  const model = upgradeOpset(decodeModel(modelBytes), 13).model;
  // Each layer's weight (initializer, Constant, Identity) and channel axis, as the evaluator reads them.
  const layerWeights = quantizableWeights(model, table);
  const graph = model.graph ?? {};
  const names = assignNodeNames(graph);
  const opset = opsetVersion(model);
  const int4 = allowOpset21 && canUseOpset21(opset, new Set((graph.node ?? []).map((n) => n.opType ?? '')));
  const outOpset = int4 ? Math.max(opset, 21) : opset;

  const nodes: NodeProto[] = (graph.node ?? []).map((n, i) => ({ ...n, name: names[i], input: [...(n.input ?? [])] }));
  const nodeIndexByName = new Map(nodes.map((n, i) => [n.name!, i]));
  const inserts = new Map<number, NodeProto[]>();
  const initializers: TensorProto[] = [];
  const exported: ExportedLayer[] = [];

  policy.layers.forEach((bits, i) => {
    const { candidate, weight, weightDims, channelAxis, bias } = layerWeights[i];
    const l = { name: candidate.name, weight, weightDims, channelAxis };
    const nodeIndex = nodeIndexByName.get(l.name)!;
    const before: NodeProto[] = [];
    const node = nodes[nodeIndex];
    // ---- weights
    let weightFormat: WeightFormat;
    let linear: LinearWeights | null = null;
    let activationScale: number | null = null;
    const wOut = `haq_${i}_weight`;
    if (weightMode === 'kmeans') {
      const km = kmeansQuantize(l.weight, bits.wBits, new Rng(deriveSeed(seed, 'kmeans', l.name, bits.wBits)));
      initializers.push(intTensor(`haq_${i}_w_indices`, DataType.UINT8, km.indices, l.weightDims), float32Tensor(`haq_${i}_w_codebook`, km.centroids, [km.centroids.length]));
      before.push(
        { name: `haq_kmeans_${i}_cast`, opType: 'Cast', domain: '', input: [`haq_${i}_w_indices`], output: [`haq_${i}_w_index64`], attribute: [intAttr('to', DataType.INT64)] },
        { name: `haq_kmeans_${i}_gather`, opType: 'Gather', domain: '', input: [`haq_${i}_w_codebook`, `haq_${i}_w_index64`], output: [wOut], attribute: [intAttr('axis', 0)] },
      );
      weightFormat = 'kmeans-uint8';
    } else {
      const q = options.recovered?.[i] ?? quantizeWeightsLinear(l.weight, l.weightDims, bits.wBits, { perChannel, axis: l.channelAxis });
      linear = q;
      const type = int4 && bits.wBits <= 4 ? DataTypeInt4.INT4 : DataType.INT8;
      initializers.push(
        intTensor(`haq_${i}_w_codes`, type, q.codes, l.weightDims),
        float32Tensor(`haq_${i}_w_scale`, q.scales, perChannel ? [q.scales.length] : []),
      );
      before.push({
        name: `haq_qdq_${i}_weight`,
        opType: 'DequantizeLinear',
        domain: '',
        input: [`haq_${i}_w_codes`, `haq_${i}_w_scale`],
        output: [wOut],
        attribute: perChannel ? [intAttr('axis', l.channelAxis)] : [],
      });
      weightFormat = type === DataTypeInt4.INT4 ? 'qdq-int4' : 'qdq-int8';
    }
    node.input![1] = wOut;
    // ---- activation
    let activationFormat: ActivationFormat = 'float';
    if (bits.aBits !== null) {
      const c = calibration!.layers[i];
      const p = activationQuant(c.clip[clipMethod][bits.aBits - 1], bits.aBits, c.signed);
      activationScale = p.scale;
      const x = node.input![0];
      const aOut = `haq_${i}_activation`;
      const scaleName = `haq_${i}_a_scale`;
      initializers.push(float32Tensor(scaleName, Float32Array.of(p.scale), []));
      // Every activation bitwidth whose divisor is its scale (all but signed 1 bit) is QDQ in an
      // 8-bit container; below 8 bits a Clip first narrows x to the b-bit code range, so the
      // codes are exactly the evaluator's. 8-bit containers, not INT4/UINT4: onnxruntime's
      // optimizer moves QDQ pairs across MaxPool, which has no 4-bit kernel.
      const qdqType = p.divisor === p.scale ? (p.signed ? DataType.INT8 : DataType.UINT8) : null;
      if (qdqType !== null) {
        let src = x;
        const needLow = p.signed; // QuantizeLinear alone would also produce -2^7 (or 0 < qmin)
        const needHigh = p.bits < 8; // uint8/int8 saturation already is the 8-bit top
        if (needLow || needHigh) {
          const low = `haq_${i}_a_low`;
          initializers.push(float32Tensor(low, Float32Array.of(Math.fround(p.qmin * p.scale)), []));
          const ins = [x, low];
          if (needHigh) {
            initializers.push(float32Tensor(`haq_${i}_a_high`, Float32Array.of(Math.fround(p.qmax * p.scale)), []));
            ins.push(`haq_${i}_a_high`);
          }
          before.push({ name: `haq_qdq_${i}_narrow`, opType: 'Clip', domain: '', input: ins, output: [`haq_${i}_a_clipped`] });
          src = `haq_${i}_a_clipped`;
        }
        initializers.push(intTensor(`haq_${i}_a_zero`, qdqType, [0], []));
        before.push(
          { name: `haq_qdq_${i}_quantize`, opType: 'QuantizeLinear', domain: '', input: [src, scaleName, `haq_${i}_a_zero`], output: [`haq_${i}_a_q`] },
          { name: `haq_qdq_${i}_dequantize`, opType: 'DequantizeLinear', domain: '', input: [`haq_${i}_a_q`, scaleName, `haq_${i}_a_zero`], output: [aOut] },
        );
        activationFormat = p.signed ? 'qdq-int8' : 'qdq-uint8';
      } else {
        const t = (s: string) => `haq_fakequant_${i}_${s}`;
        initializers.push(float32Tensor(t('qmin'), Float32Array.of(p.qmin), []), float32Tensor(t('qmax'), Float32Array.of(p.qmax), []));
        const n = (op: string, ins: string[], out: string): NodeProto => ({ name: t(op.toLowerCase()), opType: op, domain: '', input: ins, output: [out] });
        const divisorName = p.divisor === p.scale ? scaleName : t('divisor');
        if (divisorName !== scaleName) initializers.push(float32Tensor(divisorName, Float32Array.of(p.divisor), []));
        before.push(
          n('Div', [x, divisorName], t('scaled')),
          n('Round', [t('scaled')], t('rounded')),
          n('Clip', [t('rounded'), t('qmin'), t('qmax')], t('codes')),
          n('Mul', [t('codes'), scaleName], aOut),
        );
        activationFormat = 'fake-quant';
      }
      node.input![0] = aOut;
    }
    inserts.set(nodeIndex, [...(inserts.get(nodeIndex) ?? []), ...before]);
    // ---- bias: with recovery's correction; an int32 accumulator value whenever codes x codes are accumulated
    let biasFormat: BiasFormat = bias ? 'model' : 'none';
    const delta = (options.recovered?.[i] as QuantizedLayer | undefined)?.biasDelta ?? null;
    if (bias && (delta || (linear && activationScale !== null && bias.values.some((b) => b !== 0)))) {
      const values = delta ? Float32Array.from(bias.values, (b, c) => b + delta[c]) : bias.values;
      const out = `haq_${i}_bias`;
      if (linear && activationScale !== null) {
        const acc = accumulatorBias(values, activationScale, linear.scales);
        initializers.push(
          { name: `haq_${i}_b_codes`, dataType: DataType.INT32, dims: [acc.codes.length], rawData: new Uint8Array(acc.codes.buffer.slice(0)) },
          float32Tensor(`haq_${i}_b_scale`, acc.scales, acc.scales.length === 1 ? [] : [acc.scales.length]),
        );
        const dq: NodeProto = {
          name: `haq_qdq_${i}_bias`,
          opType: 'DequantizeLinear',
          domain: '',
          input: [`haq_${i}_b_codes`, `haq_${i}_b_scale`],
          output: [out],
          attribute: acc.scales.length === 1 ? [] : [intAttr('axis', 0)],
        };
        inserts.set(bias.nodeIndex, [...(inserts.get(bias.nodeIndex) ?? []), dq]);
        biasFormat = 'qdq-int32';
      } else {
        initializers.push(float32Tensor(out, values, [values.length]));
        biasFormat = 'float';
      }
      nodes[bias.nodeIndex].input![bias.inputIndex] = out;
    }
    exported.push({ name: l.name, wBits: bits.wBits, aBits: bits.aBits, weight: weightFormat, activation: activationFormat, bias: biasFormat });
  });

  const rewritten: NodeProto[] = [];
  nodes.forEach((n, i) => rewritten.push(...(inserts.get(i) ?? []), n));
  const used = tensorsRead(graph, rewritten); // subgraphs read outer-scope initializers too
  const kept = (graph.initializer ?? []).filter((t) => used.has(t.name ?? ''));
  // Constant nodes whose output only the float weights used are dropped too.
  const finalNodes = rewritten.filter((n) => n.opType !== 'Constant' || (n.output ?? []).some((o) => used.has(o)));
  const fakeQuant = exported.filter((e) => e.activation === 'fake-quant').map((e) => `${e.name} (${e.aBits} bits)`);
  const summary = { format: 'haq-qdq-v1', opset: outOpset, weightMode, perChannel, clipMethod, layers: exported };
  const metadata = [
    ...(model.metadataProps ?? []).filter((p) => !p.key?.startsWith('haq.')),
    { key: 'haq.quantization', value: JSON.stringify(summary) },
    {
      key: 'haq.note',
      value: fakeQuant.length
        ? `Activations of ${fakeQuant.join(', ')} are fake-quantized with float ops (nodes haq_fakequant_<i>_*: Div, Round, Clip, Mul) because a signed 1-bit code (sign x alpha) has no QuantizeLinear equivalent; all other quantization is standard QuantizeLinear/DequantizeLinear.`
        : 'All quantization is standard QuantizeLinear/DequantizeLinear (nodes haq_qdq_<i>_*) or a k-means codebook look-up (haq_kmeans_<i>_*).',
    },
  ];
  const out = {
    ...model,
    irVersion: int4 ? Math.max(toNumber(model.irVersion), 10) : model.irVersion,
    opsetImport: (model.opsetImport ?? []).map((o) => (!o.domain || o.domain === 'ai.onnx' ? { ...o, version: outOpset } : o)),
    metadataProps: metadata,
    graph: {
      ...graph,
      node: finalNodes,
      initializer: [...kept, ...initializers],
      input: (graph.input ?? []).filter((v) => !(graph.initializer ?? []).some((t) => t.name === v.name) || kept.some((t) => t.name === v.name)),
    },
  };
  return { bytes: encodeModel(out), opset: outOpset, layers: exported };
}
