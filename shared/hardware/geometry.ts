import type { LayerInfo } from '../onnx/types';

/**
 * A quantizable layer seen by the hardware models: one group of a (grouped) convolution with
 * the batch folded in. A linear layer is a 1x1 convolution on a 1x1 map whose batch is the
 * number of rows (batch x leading dims), as BitFusion's get_FC_cycles does.
 */
export interface ConvGeometry {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  oh: number;
  ow: number;
  /** Input and output channels of ONE group. */
  icPerGroup: number;
  ocPerGroup: number;
  /** Groups computed one after the other (depthwise: one per channel). */
  groups: number;
  /** Images (or rows of a linear layer) processed together. */
  batch: number;
  /** A Gemm/MatMul layer seen as a 1x1 convolution. */
  linear: boolean;
  /** The first layer reads the raw input; BitFusion lowers it by im2col (simulator.get_cycles). */
  first: boolean;
  /** Activation elements read and written per batch item (the layer's input and output tensors). */
  inputElements: number;
  outputElements: number;
}

const product = (xs: number[]): number => xs.reduce((p, x) => p * x, 1);

/** The layer's geometry for a batch of `batch` inputs (the layer table's own batch dim is ignored). */
export function layerGeometry(layer: LayerInfo, batch: number): ConvGeometry {
  const groups = layer.groups;
  if (layer.kind === 'linear') {
    // [N, K] -> 1 row per input; [N, S, K] -> S rows per input.
    const rows = layer.inputShape.length > 2 ? product(layer.inputShape.slice(1, -1)) : 1;
    return {
      kh: 1,
      kw: 1,
      sh: 1,
      sw: 1,
      oh: 1,
      ow: 1,
      icPerGroup: layer.inChannels,
      ocPerGroup: layer.outChannels,
      groups: 1,
      batch: batch * Math.max(1, rows),
      linear: true,
      first: layer.index === 0,
      inputElements: Math.max(1, rows) * layer.inChannels,
      outputElements: Math.max(1, rows) * layer.outChannels,
    };
  }
  const out = layer.outputShape;
  const oh = out.length >= 4 ? out[2] : 1;
  const ow = out.length >= 4 ? out[3] : out.length === 3 ? out[2] : 1;
  return {
    kh: layer.kernel[0],
    kw: layer.kernel[1],
    sh: layer.stride[0],
    sw: layer.stride[1],
    oh: Math.max(1, oh),
    ow: Math.max(1, ow),
    icPerGroup: Math.max(1, Math.round(layer.inChannels / groups)),
    ocPerGroup: Math.max(1, Math.round(layer.outChannels / groups)),
    groups,
    batch,
    linear: false,
    first: layer.index === 0,
    inputElements: perItem(layer.inputShape, layer.inChannels * ((oh - 1) * layer.stride[0] + 1) * ((ow - 1) * layer.stride[1] + 1)),
    outputElements: perItem(out, layer.outChannels * oh * ow),
  };
}

/** Elements of one batch item of a [N, ...] shape, or the fallback when a dim is unknown (0). */
function perItem(shape: number[], fallback: number): number {
  const rest = shape.slice(1);
  return rest.length > 0 && rest.every((d) => d > 0) ? product(rest) : Math.max(1, fallback);
}
