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

/** One layer's random parameters: weight dims and sigma, and the bias length (sigma 0.1) if it has one. */
interface LayerSpec {
  dims: number[];
  sigma: number;
  bias?: number;
}

/**
 * A model named `name` with input "x" [batch, ...inputDims]: its weights drawn from one Rng(seed)
 * in the order of `layers` (weight, then bias), `body` wires the graph from x and returns its
 * output (it may draw more from the same rng). The layer table is inspected at batch 1.
 */
async function buildSmallModel(
  options: { name: string; seed: number; opset?: number; batch?: number | 'N'; inputDims: number[]; layers: Record<string, LayerSpec> },
  body: (g: GraphBuilder, x: string, weights: SmallModel['weights'], rng: Rng) => string,
): Promise<SmallModel> {
  const rng = new Rng(options.seed);
  const g = new GraphBuilder({ name: options.name, opset: options.opset ?? 13 });
  const x = g.input('x', 'float32', [options.batch ?? 'N', ...options.inputDims]);
  const weights: SmallModel['weights'] = {};
  for (const [name, spec] of Object.entries(options.layers)) {
    const w = randn(rng, spec.dims.reduce((a, b) => a * b, 1), spec.sigma);
    weights[name] = spec.bias === undefined ? { w, dims: spec.dims } : { w, b: randn(rng, spec.bias, 0.1), dims: spec.dims };
  }
  g.output(body(g, x, weights, rng));
  const bytes = g.toBytes();
  return { bytes, table: await inspectModel(bytes, { inputShape: [1, ...options.inputDims] }), weights };
}

/** A layer's builder arguments: its name, weight, weight dims and bias. */
function layer(weights: SmallModel['weights'], name: string): { name: string; weight: Float32Array; weightDims: number[]; bias?: Float32Array } {
  return { name, weight: weights[name].w, weightDims: weights[name].dims, bias: weights[name].b };
}

/** MLP: Gemm(8 -> 16, transB) -> Relu -> MatMul(16 -> 12) + bias -> Relu -> Gemm(12 -> 10, transB = 0). Input [N, 8]. */
export function buildMlp(seed = 1): Promise<SmallModel> {
  const layers = {
    fc1: { dims: [16, 8], sigma: 0.5, bias: 16 },
    mm2: { dims: [16, 12], sigma: 0.4, bias: 12 },
    fc3: { dims: [12, 10], sigma: 0.4, bias: 10 },
  };
  return buildSmallModel({ name: 'mlp', seed, inputDims: [8], layers }, (g, x, weights) => {
    let h = g.relu(g.gemm(x, { ...layer(weights, 'fc1'), transB: 1 }));
    h = g.relu(g.matMulWeight(h, layer(weights, 'mm2')));
    return g.gemm(h, { ...layer(weights, 'fc3'), transB: 0 });
  });
}

/** CNN: Conv(1 -> 4, 3x3, pad 1) -> Relu -> depthwise Conv(4, 3x3, stride 2) -> Relu -> GAP -> Gemm(4 -> 10). Input [N, 1, 8, 8]. */
export function buildCnn(seed = 2, opset = 13, batch: number | 'N' = 'N'): Promise<SmallModel> {
  const layers = {
    conv1: { dims: [4, 1, 3, 3], sigma: 0.5, bias: 4 },
    dw2: { dims: [4, 1, 3, 3], sigma: 0.5 },
    fc: { dims: [10, 4], sigma: 0.5, bias: 10 },
  };
  return buildSmallModel({ name: 'cnn', seed, opset, batch, inputDims: [1, 8, 8], layers }, (g, x, weights) => {
    let h = g.relu(g.conv(x, { ...layer(weights, 'conv1'), pads: [1, 1, 1, 1] }));
    h = g.relu(g.conv(h, { ...layer(weights, 'dw2'), group: 4, strides: [2, 2], pads: [1, 1, 1, 1] }));
    return g.gemm(g.flatten(g.globalAveragePool(h)), { ...layer(weights, 'fc'), transB: 1 });
  });
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
export function buildWideCnn(seed = 5, { batchNorm = false } = {}): Promise<SmallModel> {
  const layers = {
    stem: { dims: [16, 1, 3, 3], sigma: 0.5, bias: 16 },
    down: { dims: [32, 16, 3, 3], sigma: 0.15, bias: 32 },
    dw: { dims: [32, 1, 3, 3], sigma: 0.4, bias: 32 },
    pw: { dims: [32, 32, 1, 1], sigma: 0.2, bias: 32 },
    fc: { dims: [10, 32], sigma: 0.3, bias: 10 },
  };
  return buildSmallModel({ name: 'wide-cnn', seed, inputDims: [1, 12, 12], layers }, (g, x, weights, rng) => {
    const conv = (h: string, name: string, extra: { strides?: [number, number]; pads?: [number, number, number, number]; group?: number } = {}) =>
      g.conv(h, { ...layer(weights, name), pads: [1, 1, 1, 1], ...extra });
    let h = conv(x, 'stem');
    if (batchNorm) {
      const c = 16;
      h = g.batchNorm(h, { scale: randn(rng, c, 0.3).map((v) => 1 + v), bias: randn(rng, c, 0.1), mean: randn(rng, c, 0.1), variance: randn(rng, c, 0.2).map((v) => 1 + Math.abs(v)) });
    }
    h = g.relu(h);
    const down = g.relu(conv(h, 'down', { strides: [2, 2] }));
    h = g.relu(conv(down, 'dw', { group: 32 }));
    h = g.relu(g.add(conv(h, 'pw', { pads: [0, 0, 0, 0] }), down));
    return g.gemm(g.flatten(g.globalAveragePool(h)), { ...layer(weights, 'fc'), transB: 1 });
  });
}

/**
 * Every convolution form the recovery handles: Conv(1 -> 4, 3x3, asymmetric pads [1, 0, 2, 1])
 * -> Relu -> grouped Conv(4 -> 6, groups 2, 3x3, stride 2, dilation 2, pads 2) -> Relu ->
 * depthwise Conv(6, 3x3, auto_pad SAME_UPPER, no bias) -> Relu -> Flatten -> MatMul(180 -> 12)
 * + bias -> Relu -> Gemm(12 -> 5, transB = 0). Input [N, 1, 10, 10].
 */
export function buildMixedCnn(seed = 9): Promise<SmallModel> {
  const layers = {
    conv: { dims: [4, 1, 3, 3], sigma: 0.5, bias: 4 },
    grouped: { dims: [6, 2, 3, 3], sigma: 0.4, bias: 6 },
    dw: { dims: [6, 1, 3, 3], sigma: 0.4 },
    mm: { dims: [180, 12], sigma: 0.1, bias: 12 },
    fc: { dims: [12, 5], sigma: 0.3, bias: 5 },
  };
  return buildSmallModel({ name: 'mixed-cnn', seed, inputDims: [1, 10, 10], layers }, (g, x, weights) => {
    let h = g.relu(g.conv(x, { ...layer(weights, 'conv'), pads: [1, 0, 2, 1] }));
    h = g.relu(g.conv(h, { ...layer(weights, 'grouped'), group: 2, strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2] }));
    const dwWeight = g.initializer('dw_w', weights.dw.w, weights.dw.dims);
    h = g.relu(g.node('Conv', [h, dwWeight], { kernel_shape: [3, 3], group: 6, auto_pad: 'SAME_UPPER' }, { name: 'dw' })[0]);
    h = g.relu(g.matMulWeight(g.flatten(h), layer(weights, 'mm')));
    return g.gemm(h, { ...layer(weights, 'fc'), transB: 0 });
  });
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
