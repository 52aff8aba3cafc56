import { GraphBuilder } from '../onnx/builder';
import type { LayerInfo, LayerTable } from '../onnx/types';
import { deriveSeed, Rng } from '../rng';

/**
 * The architecture zoo writes each network once, against this small interface, and gets
 * two things from it: an ONNX model with seeded random weights (OnnxNet) and the layer table
 * computed from the shapes alone (ShapeNet), which the tests compare with what the ONNX
 * loader finds. Every node is named explicitly, and a node's output tensor is `<node>_out`,
 * so both agree on every name.
 */
export interface ConvOptions {
  out: number;
  kernel: number;
  stride?: number;
  pad?: number;
  groups?: number;
  bias?: boolean;
}

export interface Net<T> {
  conv(x: T, name: string, o: ConvOptions): T;
  batchNorm(x: T): T;
  relu(x: T): T;
  /** ReLU6 = Clip(0, 6) (MobileNet). */
  relu6(x: T): T;
  add(a: T, b: T): T;
  maxPool(x: T, kernel: number, stride: number, pad: number): T;
  globalAveragePool(x: T): T;
  flatten(x: T): T;
  linear(x: T, name: string, out: number): T;
}

/** An architecture: builds the network on a Net from its input, returns the output. */
export type Architecture = <T>(net: Net<T>, input: T) => T;

class Names {
  private counts = new Map<string, number>();
  next(prefix: string): string {
    const n = this.counts.get(prefix) ?? 0;
    this.counts.set(prefix, n + 1);
    return `${prefix}_${n}`;
  }
}

/** A tensor seen by ShapeNet: its name and NCHW (or NC) shape. */
export interface ShapeTensor {
  name: string;
  shape: number[];
}

const outSize = (size: number, k: number, s: number, p: number): number => Math.floor((size + 2 * p - k) / s) + 1;

/** Computes shapes and the layer table without building a model. */
export class ShapeNet implements Net<ShapeTensor> {
  readonly layers: LayerInfo[] = [];
  private names = new Names();

  conv(x: ShapeTensor, name: string, o: ConvOptions): ShapeTensor {
    const [n, c, h, w] = x.shape;
    const s = o.stride ?? 1;
    const p = o.pad ?? 0;
    const g = o.groups ?? 1;
    const shape = [n, o.out, outSize(h, o.kernel, s, p), outSize(w, o.kernel, s, p)];
    const out = { name: `${name}_out`, shape };
    this.layers.push({
      index: this.layers.length,
      name,
      kind: g === c && g > 1 ? 'depthwise' : 'conv',
      op: 'Conv',
      inChannels: c,
      outChannels: o.out,
      kernel: [o.kernel, o.kernel],
      stride: [s, s],
      groups: g,
      inputShape: x.shape,
      outputShape: shape,
      params: o.out * (c / g) * o.kernel * o.kernel,
      macs: n * o.out * shape[2] * shape[3] * (c / g) * o.kernel * o.kernel,
      inputName: x.name,
      weightName: `${name}_w`,
      biasName: o.bias ? `${name}_b` : null,
      outputName: out.name,
    });
    return out;
  }
  private same(x: ShapeTensor, prefix: string): ShapeTensor {
    return { name: `${this.names.next(prefix)}_out`, shape: x.shape };
  }
  batchNorm(x: ShapeTensor): ShapeTensor {
    return this.same(x, 'bn');
  }
  relu(x: ShapeTensor): ShapeTensor {
    return this.same(x, 'relu');
  }
  relu6(x: ShapeTensor): ShapeTensor {
    return this.same(x, 'relu6');
  }
  add(a: ShapeTensor, b: ShapeTensor): ShapeTensor {
    if (a.shape.join() !== b.shape.join()) throw new Error(`ShapeNet: add of [${a.shape}] and [${b.shape}]`);
    return this.same(a, 'add');
  }
  maxPool(x: ShapeTensor, kernel: number, stride: number, pad: number): ShapeTensor {
    const [n, c, h, w] = x.shape;
    return { name: `${this.names.next('maxpool')}_out`, shape: [n, c, outSize(h, kernel, stride, pad), outSize(w, kernel, stride, pad)] };
  }
  globalAveragePool(x: ShapeTensor): ShapeTensor {
    return { name: `${this.names.next('avgpool')}_out`, shape: [x.shape[0], x.shape[1], 1, 1] };
  }
  flatten(x: ShapeTensor): ShapeTensor {
    return { name: `${this.names.next('flatten')}_out`, shape: [x.shape[0], x.shape.slice(1).reduce((a, b) => a * b, 1)] };
  }
  linear(x: ShapeTensor, name: string, out: number): ShapeTensor {
    const [n, k] = x.shape;
    const shape = [n, out];
    this.layers.push({
      index: this.layers.length,
      name,
      kind: 'linear',
      op: 'Gemm',
      inChannels: k,
      outChannels: out,
      kernel: [1, 1],
      stride: [1, 1],
      groups: 1,
      inputShape: x.shape,
      outputShape: shape,
      params: k * out,
      macs: n * k * out,
      inputName: x.name,
      weightName: `${name}_w`,
      biasName: `${name}_b`,
      outputName: `${name}_out`,
    });
    return { name: `${name}_out`, shape };
  }
}

/** Builds the ONNX graph with He-initialised weights from a seeded Rng (one stream per layer). */
export class OnnxNet implements Net<string> {
  private names = new Names();
  constructor(
    readonly g: GraphBuilder,
    private readonly seed: number,
    private readonly channels: Map<string, number>,
  ) {}

  /**
   * He initialisation (variance 2/fan_in, He et al. ICCV 2015) drawn uniformly from
   * [-sqrt(6/fan_in), sqrt(6/fan_in)]: one 32-bit draw per weight keeps ResNet-50's 25M
   * weights fast to generate.
   */
  private heUniform(name: string, count: number, fanIn: number): Float32Array {
    const rng = new Rng(deriveSeed(this.seed, name));
    const bound = Math.sqrt(6 / fanIn);
    const scale = (2 * bound) / 4294967296;
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = rng.nextUint32() * scale - bound;
    return data;
  }

  conv(x: string, name: string, o: ConvOptions): string {
    const c = this.channels.get(x) ?? 0;
    const g = o.groups ?? 1;
    const s = o.stride ?? 1;
    const p = o.pad ?? 0;
    const fanIn = (c / g) * o.kernel * o.kernel;
    const out = this.g.conv(x, {
      name,
      weight: this.heUniform(name, o.out * fanIn, fanIn),
      weightDims: [o.out, c / g, o.kernel, o.kernel],
      bias: o.bias ? new Float32Array(o.out) : undefined,
      strides: [s, s],
      pads: [p, p, p, p],
      group: g,
    });
    this.channels.set(out, o.out);
    return out;
  }
  private keep(x: string, out: string): string {
    this.channels.set(out, this.channels.get(x) ?? 0);
    return out;
  }
  batchNorm(x: string): string {
    const name = this.names.next('bn');
    const c = this.channels.get(x) ?? 0;
    const ins = [
      this.g.initializer(`${name}_scale`, new Float32Array(c).fill(1), [c]),
      this.g.initializer(`${name}_bias`, new Float32Array(c), [c]),
      this.g.initializer(`${name}_mean`, new Float32Array(c), [c]),
      this.g.initializer(`${name}_var`, new Float32Array(c).fill(1), [c]),
    ];
    return this.keep(x, this.g.op('BatchNormalization', [x, ...ins], { epsilon: { float: 1e-5 } }, name));
  }
  relu(x: string): string {
    return this.keep(x, this.g.op('Relu', [x], {}, this.names.next('relu')));
  }
  relu6(x: string): string {
    const name = this.names.next('relu6');
    const lo = this.g.initializer(`${name}_min`, [0], []);
    const hi = this.g.initializer(`${name}_max`, [6], []);
    return this.keep(x, this.g.op('Clip', [x, lo, hi], {}, name));
  }
  add(a: string, b: string): string {
    return this.keep(a, this.g.op('Add', [a, b], {}, this.names.next('add')));
  }
  maxPool(x: string, kernel: number, stride: number, pad: number): string {
    const attrs = { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad] };
    return this.keep(x, this.g.op('MaxPool', [x], attrs, this.names.next('maxpool')));
  }
  globalAveragePool(x: string): string {
    return this.keep(x, this.g.op('GlobalAveragePool', [x], {}, this.names.next('avgpool')));
  }
  flatten(x: string): string {
    return this.keep(x, this.g.op('Flatten', [x], { axis: 1 }, this.names.next('flatten')));
  }
  linear(x: string, name: string, out: number): string {
    const k = this.channels.get(x) ?? 0;
    const y = this.g.gemm(x, { name, weight: this.heUniform(name, out * k, k), weightDims: [out, k], bias: new Float32Array(out), transB: 1 });
    this.channels.set(y, out);
    return y;
  }
}

/** The layer table of an architecture for an input shape [N, C, H, W], without ONNX. */
export function architectureLayerTable(arch: Architecture, inputShape: number[], modelHash = 'analytic'): LayerTable {
  const net = new ShapeNet();
  arch(net, { name: 'input', shape: inputShape });
  const layers = net.layers;
  return {
    modelHash,
    inputShape,
    layers,
    totals: { params: layers.reduce((a, l) => a + l.params, 0), macs: layers.reduce((a, l) => a + l.macs, 0) },
    skipped: [],
  };
}

/** The ONNX model bytes of an architecture with seeded random weights; input "input" [N, C, H, W] with a symbolic batch. */
export function architectureOnnx(arch: Architecture, name: string, chw: [number, number, number], seed: number): Uint8Array {
  const g = new GraphBuilder({ name, opset: 13, producer: 'haq zoo' });
  const x = g.input('input', 'float32', ['N', ...chw]);
  const net = new OnnxNet(g, seed, new Map([[x, chw[0]]]));
  g.output(arch(net, x));
  return g.toBytes();
}
