/** Tiny models built with the graph builder for the quantizer tests (no downloads). */
import { GraphBuilder } from '../../../shared/onnx/builder';
import { inspectModel } from '../../../shared/onnx/inspect';
import type { LayerTable } from '../../../shared/onnx/types';
import type { FloatTensor } from '../../../shared/onnx/runtime';
import type { ConvGeometry } from '../../../shared/quant/layer-stats';
import { Rng } from '../../../shared/rng';

export function randn(rng: Rng, n: number, sigma = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal(0, sigma));
}

export interface SmallModel {
  bytes: Uint8Array;
  table: LayerTable;
  /** Weights by layer name ([out, in] Gemm with transB = 1, [in, out] MatMul). */
  weights: Record<string, { w: Float32Array; b?: Float32Array; dims: number[] }>;
}

/** MLP: Gemm(8 -> 16, transB) -> Relu -> MatMul(16 -> 12) + bias -> Relu -> Gemm(12 -> 10, transB = 0). Input [N, 8]. */
export async function buildMlp(seed = 1): Promise<SmallModel> {
  const rng = new Rng(seed);
  const g = new GraphBuilder({ name: 'mlp', opset: 13 });
  const x = g.input('x', 'float32', ['N', 8]);
  const weights: SmallModel['weights'] = {
    fc1: { w: randn(rng, 16 * 8, 0.5), b: randn(rng, 16, 0.1), dims: [16, 8] },
    mm2: { w: randn(rng, 16 * 12, 0.4), b: randn(rng, 12, 0.1), dims: [16, 12] },
    fc3: { w: randn(rng, 12 * 10, 0.4), b: randn(rng, 10, 0.1), dims: [12, 10] },
  };
  let h = g.relu(g.gemm(x, { name: 'fc1', weight: weights.fc1.w, weightDims: [16, 8], bias: weights.fc1.b, transB: 1 }));
  h = g.relu(g.matMulWeight(h, { name: 'mm2', weight: weights.mm2.w, weightDims: [16, 12], bias: weights.mm2.b }));
  g.output(g.gemm(h, { name: 'fc3', weight: weights.fc3.w, weightDims: [12, 10], bias: weights.fc3.b, transB: 0 }));
  const bytes = g.toBytes();
  return { bytes, table: await inspectModel(bytes, { inputShape: [1, 8] }), weights };
}

/** CNN: Conv(1 -> 4, 3x3, pad 1) -> Relu -> depthwise Conv(4, 3x3, stride 2) -> Relu -> GAP -> Gemm(4 -> 10). Input [N, 1, 8, 8]. */
export async function buildCnn(seed = 2, opset = 13, batch: number | 'N' = 'N'): Promise<SmallModel> {
  const rng = new Rng(seed);
  const g = new GraphBuilder({ name: 'cnn', opset });
  const x = g.input('x', 'float32', [batch, 1, 8, 8]);
  const weights: SmallModel['weights'] = {
    conv1: { w: randn(rng, 4 * 9, 0.5), b: randn(rng, 4, 0.1), dims: [4, 1, 3, 3] },
    dw2: { w: randn(rng, 4 * 9, 0.5), dims: [4, 1, 3, 3] },
    fc: { w: randn(rng, 10 * 4, 0.5), b: randn(rng, 10, 0.1), dims: [10, 4] },
  };
  let h = g.relu(g.conv(x, { name: 'conv1', weight: weights.conv1.w, weightDims: [4, 1, 3, 3], bias: weights.conv1.b, pads: [1, 1, 1, 1] }));
  h = g.relu(g.conv(h, { name: 'dw2', weight: weights.dw2.w, weightDims: [4, 1, 3, 3], group: 4, strides: [2, 2], pads: [1, 1, 1, 1] }));
  g.output(g.gemm(g.flatten(g.globalAveragePool(h)), { name: 'fc', weight: weights.fc.w, weightDims: [10, 4], bias: weights.fc.b, transB: 1 }));
  const bytes = g.toBytes();
  return { bytes, table: await inspectModel(bytes, { inputShape: [1, 1, 8, 8] }), weights };
}

export function randomInputs(seed: number, dims: number[], sigma = 1): FloatTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return { data: randn(new Rng(seed), n, sigma), dims };
}

/**
 * A CNN wide enough for onnxruntime's NCHWc convolutions: Conv(1 -> 16, 3x3) -> Relu ->
 * Conv(16 -> 32, 3x3, stride 2) -> Relu -> depthwise Conv(32, 3x3) -> Relu -> Conv(32 -> 32, 1x1)
 * + residual -> Relu -> GAP -> Gemm(32 -> 10). Optionally a BatchNormalization after the first
 * Conv (onnxruntime folds it into that Conv's weights). Input [N, 1, 12, 12].
 */
export async function buildWideCnn(seed = 5, { batchNorm = false } = {}): Promise<SmallModel> {
  const rng = new Rng(seed);
  const g = new GraphBuilder({ name: 'wide-cnn', opset: 13 });
  const x = g.input('x', 'float32', ['N', 1, 12, 12]);
  const weights: SmallModel['weights'] = {
    stem: { w: randn(rng, 16 * 9, 0.5), b: randn(rng, 16, 0.1), dims: [16, 1, 3, 3] },
    down: { w: randn(rng, 32 * 16 * 9, 0.15), b: randn(rng, 32, 0.1), dims: [32, 16, 3, 3] },
    dw: { w: randn(rng, 32 * 9, 0.4), b: randn(rng, 32, 0.1), dims: [32, 1, 3, 3] },
    pw: { w: randn(rng, 32 * 32, 0.2), b: randn(rng, 32, 0.1), dims: [32, 32, 1, 1] },
    fc: { w: randn(rng, 10 * 32, 0.3), b: randn(rng, 10, 0.1), dims: [10, 32] },
  };
  const conv = (h: string, name: string, extra: { strides?: [number, number]; pads?: [number, number, number, number]; group?: number } = {}) =>
    g.conv(h, { name, weight: weights[name].w, weightDims: weights[name].dims, bias: weights[name].b, pads: [1, 1, 1, 1], ...extra });
  let h = conv(x, 'stem');
  if (batchNorm) {
    const c = 16;
    h = g.batchNorm(h, { scale: randn(rng, c, 0.3).map((v) => 1 + v), bias: randn(rng, c, 0.1), mean: randn(rng, c, 0.1), variance: randn(rng, c, 0.2).map((v) => 1 + Math.abs(v)) });
  }
  h = g.relu(h);
  const down = g.relu(conv(h, 'down', { strides: [2, 2] }));
  h = g.relu(conv(down, 'dw', { group: 32 }));
  h = g.relu(g.add(conv(h, 'pw', { pads: [0, 0, 0, 0] }), down));
  g.output(g.gemm(g.flatten(g.globalAveragePool(h)), { name: 'fc', weight: weights.fc.w, weightDims: [10, 32], bias: weights.fc.b, transB: 1 }));
  const bytes = g.toBytes();
  return { bytes, table: await inspectModel(bytes, { inputShape: [1, 1, 12, 12] }), weights };
}

/**
 * Every convolution form the recovery handles: Conv(1 -> 4, 3x3, asymmetric pads [1, 0, 2, 1])
 * -> Relu -> grouped Conv(4 -> 6, groups 2, 3x3, stride 2, dilation 2, pads 2) -> Relu ->
 * depthwise Conv(6, 3x3, auto_pad SAME_UPPER, no bias) -> Relu -> Flatten -> MatMul(180 -> 12)
 * + bias -> Relu -> Gemm(12 -> 5, transB = 0). Input [N, 1, 10, 10].
 */
export async function buildMixedCnn(seed = 9): Promise<SmallModel> {
  const rng = new Rng(seed);
  const g = new GraphBuilder({ name: 'mixed-cnn', opset: 13 });
  const x = g.input('x', 'float32', ['N', 1, 10, 10]);
  const weights: SmallModel['weights'] = {
    conv: { w: randn(rng, 4 * 9, 0.5), b: randn(rng, 4, 0.1), dims: [4, 1, 3, 3] },
    grouped: { w: randn(rng, 6 * 2 * 9, 0.4), b: randn(rng, 6, 0.1), dims: [6, 2, 3, 3] },
    dw: { w: randn(rng, 6 * 9, 0.4), dims: [6, 1, 3, 3] },
    mm: { w: randn(rng, 180 * 12, 0.1), b: randn(rng, 12, 0.1), dims: [180, 12] },
    fc: { w: randn(rng, 12 * 5, 0.3), b: randn(rng, 5, 0.1), dims: [12, 5] },
  };
  let h = g.relu(g.conv(x, { name: 'conv', weight: weights.conv.w, weightDims: weights.conv.dims, bias: weights.conv.b, pads: [1, 0, 2, 1] }));
  h = g.relu(g.conv(h, { name: 'grouped', weight: weights.grouped.w, weightDims: weights.grouped.dims, bias: weights.grouped.b, group: 2, strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2] }));
  const dwWeight = g.initializer('dw_w', weights.dw.w, weights.dw.dims);
  h = g.relu(g.node('Conv', [h, dwWeight], { kernel_shape: [3, 3], group: 6, auto_pad: 'SAME_UPPER' }, { name: 'dw' })[0]);
  h = g.relu(g.matMulWeight(g.flatten(h), { name: 'mm', weight: weights.mm.w, weightDims: weights.mm.dims, bias: weights.mm.b }));
  g.output(g.gemm(h, { name: 'fc', weight: weights.fc.w, weightDims: weights.fc.dims, bias: weights.fc.b, transB: 0 }));
  const bytes = g.toBytes();
  return { bytes, table: await inspectModel(bytes, { inputShape: [1, 1, 10, 10] }), weights };
}

/**
 * The vectors a layer's weight rows meet, computed directly: for a convolution (geometry given)
 * the patches of group `group` in [cin/groups, kh, kw] order with zero padding (im2col); for a
 * Gemm/MatMul the rows of its input's last dim.
 */
export function layerInputVectors(x: FloatTensor, groups: number, geometry: ConvGeometry | null, group: number): number[][] {
  if (!geometry) {
    const k = x.dims[x.dims.length - 1];
    return Array.from({ length: x.data.length / k }, (_, r) => Array.from(x.data.subarray(r * k, (r + 1) * k)));
  }
  const [n, c, h, w] = x.dims;
  const cg = c / groups;
  const [kh, kw] = geometry.kernel;
  const out: number[][] = [];
  for (let s = 0; s < n; s++) {
    for (let oy = 0; oy < geometry.outSize[0]; oy++) {
      for (let ox = 0; ox < geometry.outSize[1]; ox++) {
        const v: number[] = [];
        for (let ci = 0; ci < cg; ci++) {
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const iy = oy * geometry.strides[0] - geometry.pads[0] + ky * geometry.dilations[0];
              const ix = ox * geometry.strides[1] - geometry.pads[1] + kx * geometry.dilations[1];
              const inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
              v.push(inside ? x.data[((s * c + group * cg + ci) * h + iy) * w + ix] : 0);
            }
          }
        }
        out.push(v);
      }
    }
  }
  return out;
}
