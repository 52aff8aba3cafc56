/**
 * Second-order statistics of each quantizable layer's input on the calibration samples, the data
 * accuracy recovery works from (shared/quant/recovery.ts). A layer computes dot products of
 * its weight rows with input vectors x: a Gemm/MatMul row of its input, a convolution's patch
 * (input channels of the group x kernel window, in the weight's [cin/groups, kh, kw] order, with
 * the zero padding, strides and dilations of the node). Per group g of a convolution:
 *     gram_g = sum_x x x^T  [cols x cols],   sum_g = sum_x x  [cols],   count = number of x,
 * with cols = cin/groups * kh * kw (K for Gemm/MatMul).
 *
 * The patches and the products run in onnxruntime: a small opset-13 graph per layer (Pad, one
 * strided Slice per kernel offset, Concat, Reshape/Transpose to [groups, cols, vectors], then
 * MatMul X X^T and ReduceSum), fed with the layer inputs of the FP32 model batch by batch
 * (calibration.ts openLayerInputs). Each batch's float32 products are summed in float64. The
 * same samples and batch size always give the same statistics on one machine.
 */
import { InvalidInputError } from '../errors';
import { GraphBuilder } from '../onnx/builder';
import { attrInt, attrInts, attrString, decodeModel } from '../onnx/proto';
import { ModelSession, type FloatTensor } from '../onnx/runtime';
import type { LayerInfo, LayerTable } from '../onnx/types';
import { openLayerInputs } from './calibration';
import { matchLayers } from './fake-quant';

export interface LayerStats {
  name: string;
  groups: number;
  /** Inputs of one dot product: cin/groups * kh * kw (Conv) or K (Gemm/MatMul). */
  cols: number;
  /** kh * kw (1 for Gemm/MatMul): the columns of one input channel, kept together when blocks are cut. */
  unit: number;
  /** [groups, cols, cols]: sum of x x^T. */
  gram: Float64Array;
  /** [groups, cols]: sum of x. */
  sum: Float64Array;
  /** Input vectors seen per group (samples x output positions). */
  count: number;
}

/** How a convolution reads its input: per spatial axis the kernel, stride, dilation and pads. */
export interface ConvGeometry {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  outSize: [number, number];
}

/** The geometry of a Conv node for an input of spatial size [h, w] (auto_pad resolved). */
export function convGeometry(node: Parameters<typeof attrInt>[0], kernel: [number, number], inSize: [number, number]): ConvGeometry {
  const s = attrInts(node, 'strides') ?? [1, 1];
  const d = attrInts(node, 'dilations') ?? [1, 1];
  const strides: [number, number] = [s[0] ?? 1, s[1] ?? 1];
  const dilations: [number, number] = [d[0] ?? 1, d[1] ?? 1];
  const autoPad = attrString(node, 'auto_pad') ?? 'NOTSET';
  let pads: [number, number, number, number];
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const total = [0, 1].map((a) => Math.max(0, (Math.ceil(inSize[a] / strides[a]) - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - inSize[a]));
    const small = total.map((t) => Math.floor(t / 2));
    const big = total.map((t, a) => t - small[a]);
    pads = autoPad === 'SAME_UPPER' ? [small[0], small[1], big[0], big[1]] : [big[0], big[1], small[0], small[1]];
  } else if (autoPad === 'VALID') {
    pads = [0, 0, 0, 0];
  } else {
    const p = attrInts(node, 'pads') ?? [0, 0, 0, 0];
    pads = [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0, p[3] ?? 0];
  }
  const outSize = [0, 1].map((a) => Math.floor((inSize[a] + pads[a] + pads[a + 2] - ((kernel[a] - 1) * dilations[a] + 1)) / strides[a]) + 1) as [number, number];
  return { kernel, strides, dilations, pads, outSize };
}

/** Adds the nodes turning input `x` into X [groups, cols, vectors] for one layer; returns X. */
function addLayerVectors(g: GraphBuilder, x: string, layer: LayerInfo, conv: ConvGeometry | null, transA: number): string {
  let constants = 0;
  const i64 = (name: string, values: number[]) => g.constant(`${x}_${name}_${constants++}`, values, [values.length], 'int64');
  if (!conv) {
    const k = layer.inChannels;
    // Gemm with transA holds K first: [K, M]; otherwise rows of K (any leading dims for MatMul).
    if (transA) return g.op('Reshape', [x, i64('shape', [1, k, -1])]);
    return g.op('Transpose', [g.op('Reshape', [x, i64('shape', [1, -1, k])])], { perm: [0, 2, 1] });
  }
  const [kh, kw] = conv.kernel;
  const [ho, wo] = conv.outSize;
  const padded = conv.pads.some((p) => p !== 0) ? g.op('Pad', [x, i64('pads', [0, 0, conv.pads[0], conv.pads[1], 0, 0, conv.pads[2], conv.pads[3]])]) : x;
  const axes = i64('axes', [2, 3]);
  const steps = i64('steps', conv.strides);
  const unsqueezeAxes = i64('axes', [2]);
  const windows: string[] = [];
  for (let ky = 0; ky < kh; ky++) {
    for (let kx = 0; kx < kw; kx++) {
      const y0 = ky * conv.dilations[0];
      const x0 = kx * conv.dilations[1];
      const slice = g.op('Slice', [padded, i64('starts', [y0, x0]), i64('ends', [y0 + (ho - 1) * conv.strides[0] + 1, x0 + (wo - 1) * conv.strides[1] + 1]), axes, steps]);
      windows.push(g.op('Unsqueeze', [slice, unsqueezeAxes]));
    }
  }
  // [N, C, kh*kw, ho, wo] -> [N, groups, cols, ho*wo] -> [groups, cols, N, ho*wo] -> [groups, cols, N*ho*wo]
  const patches = windows.length === 1 ? windows[0] : g.op('Concat', windows, { axis: 2 });
  const cols = (layer.inChannels / layer.groups) * kh * kw;
  const grouped = g.op('Reshape', [patches, i64('shape', [0, layer.groups, cols, ho * wo])]);
  const moved = g.op('Transpose', [grouped], { perm: [1, 2, 0, 3] });
  return g.op('Reshape', [moved, i64('shape', [layer.groups, cols, -1])]);
}

export interface LayerStatsOptions {
  /** Samples per onnxruntime run (default 64; a model with a fixed batch dim uses that). */
  batchSize?: number;
  threads?: number;
  /** Applied to each layer's input before its statistics (e.g. that layer's activation quantizer); default none. */
  transformInput?: (layerIndex: number, x: FloatTensor) => FloatTensor;
}

/** Gram matrices, sums and counts of every layer's input vectors over `calib` [N, ...input dims]. */
export async function layerStatistics(modelBytes: Uint8Array, table: LayerTable, calib: FloatTensor, options: LayerStatsOptions = {}): Promise<LayerStats[]> {
  const model = decodeModel(modelBytes);
  const candidates = matchLayers(model, table);
  const g = new GraphBuilder({ name: 'haq-layer-stats', opset: 13 });
  const inputs = new Map<string, string>();
  const outputs = table.layers.map((layer, i) => {
    const c = candidates[i];
    const node = model.graph!.node![c.nodeIndex];
    const dims = layer.inputShape.map((d, a) => (a === 0 ? 'N' : d));
    const x = g.input(`x_${i}`, 'float32', dims);
    inputs.set(x, layer.inputName);
    let conv: ConvGeometry | null = null;
    if (c.op === 'Conv') {
      if (layer.inputShape.length !== 4) throw new InvalidInputError(`layer ${layer.name}: a 2-D convolution needs a 4-D input, got [${layer.inputShape.join(', ')}]`);
      conv = convGeometry(node, [c.weightDims[2], c.weightDims[3]], [layer.inputShape[2], layer.inputShape[3]]);
    }
    const vectors = addLayerVectors(g, x, layer, conv, c.op === 'Gemm' ? attrInt(node, 'transA', 0) : 0);
    const gram = g.op('MatMul', [vectors, g.op('Transpose', [vectors], { perm: [0, 2, 1] })]);
    const sum = g.op('ReduceSum', [vectors, g.constant(`${x}_sum_axes`, [2], [1], 'int64')], { keepdims: 0 });
    g.output(gram);
    g.output(sum);
    const cols = conv ? (layer.inChannels / layer.groups) * conv.kernel[0] * conv.kernel[1] : layer.inChannels;
    return { gram, sum, groups: conv ? layer.groups : 1, cols, unit: conv ? conv.kernel[0] * conv.kernel[1] : 1 };
  });
  const stats: LayerStats[] = table.layers.map((l, i) => {
    const o = outputs[i];
    return { name: l.name, groups: o.groups, cols: o.cols, unit: o.unit, gram: new Float64Array(o.groups * o.cols * o.cols), sum: new Float64Array(o.groups * o.cols), count: 0 };
  });
  const session = await ModelSession.create(g.toBytes(), { threads: options.threads, what: 'layer statistics graph' });
  const reader = await openLayerInputs(modelBytes, table, calib, options);
  try {
    for await (const tensors of reader.batches()) {
      const feeds: Record<string, FloatTensor> = {};
      table.layers.forEach((l, i) => {
        const x = tensors.get(l.inputName)!;
        feeds[`x_${i}`] = options.transformInput ? options.transformInput(i, x) : x;
      });
      const out = await session.run(feeds, outputs.flatMap((o) => [o.gram, o.sum]));
      stats.forEach((s, i) => {
        const gram = out[outputs[i].gram].data;
        const sum = out[outputs[i].sum].data;
        for (let k = 0; k < gram.length; k++) s.gram[k] += gram[k];
        for (let k = 0; k < sum.length; k++) s.sum[k] += sum[k];
        s.count += vectorsIn(feeds[`x_${i}`], table.layers[i]);
      });
    }
  } finally {
    await reader.release();
    await session.release();
  }
  return stats;
}

/** Input vectors one batch contributes per group: batch x output positions (Conv), or rows of K (Gemm/MatMul). */
function vectorsIn(x: FloatTensor, layer: LayerInfo): number {
  if (layer.op !== 'Conv') return x.data.length / layer.inChannels;
  return x.dims[0] * layer.outputShape[2] * layer.outputShape[3];
}
