/**
 * Second-order statistics of each quantizable layer's input on the calibration samples, the data
 * accuracy recovery works from (shared/quant/recovery.ts). A layer computes dot products of
 * its weight rows with input vectors x: a Gemm/MatMul row of its input, a convolution's patch
 * (input channels of the group x kernel window, in the weight's [cin/groups, kh, kw] order, with
 * the zero padding, strides and dilations of the node). Per group g of a convolution:
 *     gram_g = sum_x x x^T  [cols x cols],   sum_g = sum_x x  [cols],   count = number of x,
 * with cols = cin/groups * kh * kw (K for Gemm/MatMul). A large feature map is read on a regular
 * grid of at most `maxPositions` output positions per sample (default 1024; 28x28 maps are read
 * whole): a Gram matrix needs some multiple of cols vectors, and every vector costs cols^2.
 *
 * The patches and the products run in onnxruntime: a small opset-13 graph per layer (a depthwise
 * Conv with one-hot kernels extracting the patches, Reshape/Transpose to [groups, cols, vectors],
 * then MatMul X X^T and ReduceSum), fed with the layer inputs of the FP32 model batch by batch
 * (calibration.ts openLayerInputs). Each batch's float32 products are summed in float64. The
 * same samples and batch size always give the same statistics on one machine.
 */
import { InvalidInputError } from '../errors';
import { GraphBuilder } from '../onnx/builder';
import { attrInt, attrInts, attrString, decodeModel } from '../onnx/proto';
import { ModelSession, type FloatTensor } from '../onnx/runtime';
import type { LayerInfo, LayerTable } from '../onnx/types';
import { layerInputBytesPerSample, openLayerInputs, passBatchSize } from './calibration';
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
  /** Input vectors seen per group (samples x output positions read, see LayerStatsOptions.maxPositions). */
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

/**
 * Per spatial axis, the step between the output positions a convolution's statistics read: 1 (every
 * position) unless a sample has more than `maxPositions`; then a regular grid, the larger axis
 * thinned first, so that at most `maxPositions` remain.
 */
export function positionSteps(outSize: [number, number], maxPositions: number): [number, number] {
  const steps: [number, number] = [1, 1];
  const kept = (a: number) => Math.ceil(outSize[a] / steps[a]);
  while (kept(0) * kept(1) > maxPositions) {
    const a = kept(0) >= kept(1) ? 0 : 1;
    steps[a]++;
  }
  return steps;
}

/** Adds the nodes turning input `x` into X [groups, cols, vectors] for one layer; returns X. */
function addLayerVectors(g: GraphBuilder, x: string, layer: LayerInfo, conv: (ConvGeometry & { steps: [number, number] }) | null, transA: number): string {
  let constants = 0;
  const i64 = (name: string, values: number[]) => g.constant(`${x}_${name}_${constants++}`, values, [values.length], 'int64');
  if (!conv) {
    const k = layer.inChannels;
    // Gemm with transA holds K first: [K, M]; otherwise rows of K (any leading dims for MatMul).
    if (transA) return g.op('Reshape', [x, i64('shape', [1, k, -1])]);
    return g.op('Transpose', [g.op('Reshape', [x, i64('shape', [1, -1, k])])], { perm: [0, 2, 1] });
  }
  const [kh, kw] = conv.kernel;
  const ho = Math.ceil(conv.outSize[0] / conv.steps[0]);
  const wo = Math.ceil(conv.outSize[1] / conv.steps[1]);
  const cin = layer.inChannels;
  // The patches as a depthwise Conv with one-hot kernels: output channel c*kh*kw + k copies input
  // channel c at kernel offset k (1 x x plus exact zeros), with the node's pads and dilations and
  // its strides times the position steps. One node per layer, whatever the kernel size.
  const oneHot = new Float32Array(cin * kh * kw * kh * kw);
  for (let c = 0; c < cin; c++) for (let k = 0; k < kh * kw; k++) oneHot[(c * kh * kw + k) * kh * kw + k] = 1;
  const patches = g.op('Conv', [x, g.constant(`${x}_patch_kernel`, oneHot, [cin * kh * kw, 1, kh, kw])], {
    kernel_shape: [kh, kw],
    strides: [conv.strides[0] * conv.steps[0], conv.strides[1] * conv.steps[1]],
    pads: conv.pads,
    dilations: conv.dilations,
    group: cin,
  });
  // [N, C*kh*kw, ho, wo] -> [N, groups, cols, ho*wo] -> [groups, cols, N, ho*wo] -> [groups, cols, N*ho*wo]
  const cols = (layer.inChannels / layer.groups) * kh * kw;
  const grouped = g.op('Reshape', [patches, i64('shape', [0, layer.groups, cols, ho * wo])]);
  const moved = g.op('Transpose', [grouped], { perm: [1, 2, 0, 3] });
  return g.op('Reshape', [moved, i64('shape', [layer.groups, cols, -1])]);
}

export interface LayerStatsOptions {
  /** Samples per onnxruntime run (default: the layer inputs and patches of a batch within PASS_MEMORY_BYTES, at most 64; a model with a fixed batch dim uses that). */
  batchSize?: number;
  threads?: number;
  /**
   * Output positions of a convolution read per sample (default 1024): beyond that a regular grid
   * of them (positionSteps). A Gram matrix of cols^2 needs a few times cols vectors, not the
   * hundreds of thousands a large feature map gives, which cost cols^2 each.
   */
  maxPositions?: number;
  /** Applied to each layer's input before its statistics (e.g. that layer's activation quantizer); default none. */
  transformInput?: (layerIndex: number, x: FloatTensor) => FloatTensor;
}

/** Gram matrices, sums and counts of every layer's input vectors over `calib` [N, ...input dims]. */
export async function layerStatistics(modelBytes: Uint8Array, table: LayerTable, calib: FloatTensor, options: LayerStatsOptions = {}): Promise<LayerStats[]> {
  const { maxPositions = 1024 } = options;
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
    let conv: (ConvGeometry & { steps: [number, number] }) | null = null;
    if (c.op === 'Conv') {
      if (layer.inputShape.length !== 4) throw new InvalidInputError(`layer ${layer.name}: a 2-D convolution needs a 4-D input, got [${layer.inputShape.join(', ')}]`);
      const geometry = convGeometry(node, [c.weightDims[2], c.weightDims[3]], [layer.inputShape[2], layer.inputShape[3]]);
      conv = { ...geometry, steps: positionSteps(geometry.outSize, maxPositions) };
    }
    const vectors = addLayerVectors(g, x, layer, conv, c.op === 'Gemm' ? attrInt(node, 'transA', 0) : 0);
    const gram = g.op('MatMul', [vectors, g.op('Transpose', [vectors], { perm: [0, 2, 1] })]);
    const sum = g.op('ReduceSum', [vectors, g.constant(`${x}_sum_axes`, [2], [1], 'int64')], { keepdims: 0 });
    g.output(gram);
    g.output(sum);
    const cols = conv ? (layer.inChannels / layer.groups) * conv.kernel[0] * conv.kernel[1] : layer.inChannels;
    const positions = conv ? Math.ceil(conv.outSize[0] / conv.steps[0]) * Math.ceil(conv.outSize[1] / conv.steps[1]) : 0;
    const vectorsPerSample = conv ? positions : layer.inputShape.slice(1).reduce((a, b) => a * b, 1) / layer.inChannels;
    return { gram, sum, groups: conv ? layer.groups : 1, cols, unit: conv ? conv.kernel[0] * conv.kernel[1] : 1, positions, vectorsPerSample };
  });
  // Per sample: the layer inputs, and each layer's patches twice (the windows and their transposed copy).
  const patchBytes = outputs.reduce((b, o) => b + 2 * 4 * o.groups * o.cols * o.vectorsPerSample, 0);
  const batchSize = options.batchSize ?? passBatchSize(layerInputBytesPerSample(table) + patchBytes);
  const stats: LayerStats[] = table.layers.map((l, i) => {
    const o = outputs[i];
    return { name: l.name, groups: o.groups, cols: o.cols, unit: o.unit, gram: new Float64Array(o.groups * o.cols * o.cols), sum: new Float64Array(o.groups * o.cols), count: 0 };
  });
  const session = await ModelSession.create(g.toBytes(), { threads: options.threads, what: 'layer statistics graph' });
  const reader = await openLayerInputs(modelBytes, table, calib, { ...options, batchSize });
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
        const x = feeds[`x_${i}`];
        s.count += table.layers[i].op === 'Conv' ? x.dims[0] * outputs[i].positions : x.data.length / table.layers[i].inChannels;
      });
    }
  } finally {
    await reader.release();
    await session.release();
  }
  return stats;
}
