/** Tiny models built with the graph builder for the quantizer tests (no downloads). */
import { GraphBuilder } from '../../../shared/onnx/builder';
import { inspectModel } from '../../../shared/onnx/inspect';
import type { LayerTable } from '../../../shared/onnx/types';
import type { FloatTensor } from '../../../shared/onnx/runtime';
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
