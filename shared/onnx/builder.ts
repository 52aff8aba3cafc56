/**
 * A small ONNX graph builder for tests, the architecture zoo and the quantized export.
 *
 *   const g = new GraphBuilder({ name: 'cnn', opset: 13 });
 *   const x = g.input('x', 'float32', ['N', 1, 28, 28]);
 *   const y = g.relu(g.conv(x, { weight, weightDims: [8, 1, 3, 3], pads: [1, 1, 1, 1] }));
 *   g.output(g.gemm(g.flatten(g.globalAveragePool(y)), { weight: w, weightDims: [10, 8], transB: 1 }));
 *   const bytes = g.toBytes();
 *
 * Any op goes through `g.node(opType, inputs, attrs, { outputs })`; the helpers are shorthands.
 * Tensor and node names are generated deterministically (`conv_0`, `conv_0_w`, ...) unless given.
 */
import {
  AttributeType,
  DataType,
  elementTypeCode,
  encodeModel,
  float32Tensor,
  int64Tensor,
  type AttributeProto,
  type ElementType,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './proto';

export type Dim = number | string;

/** An attribute value: integers become INT, other numbers FLOAT, number[] INTS, Float32Array FLOATS. */
export type AttrValue =
  | number
  | number[]
  | string
  | Float32Array
  | { float: number }
  | { floats: number[] }
  | { tensor: TensorProto }
  | { graph: GraphProto };

export interface BuilderOptions {
  name?: string;
  /** Default-domain opset version (default 13). */
  opset?: number;
  /** IR version (default 8, which onnxruntime 1.x reads). */
  irVersion?: number;
  producer?: string;
}

export interface WeightSpec {
  weight: Float32Array;
  weightDims: number[];
  bias?: Float32Array;
  /** Put the weight (and bias) in a Constant node instead of an initializer. */
  asConstant?: boolean;
  /** Node name (default `<op>_<n>`). */
  name?: string;
}

export interface ConvSpec extends WeightSpec {
  strides?: [number, number];
  /** [top, left, bottom, right] */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  group?: number;
}

export interface GemmSpec extends WeightSpec {
  /** 1 when weightDims is [out, in] (PyTorch Linear layout), 0 when [in, out]. Default 1. */
  transB?: 0 | 1;
}

export class GraphBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();
  private readonly counters = new Map<string, number>();
  readonly name: string;
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;

  constructor(options: BuilderOptions = {}) {
    this.name = options.name ?? 'graph';
    this.opset = options.opset ?? 13;
    this.irVersion = options.irVersion ?? 8;
    this.producer = options.producer ?? 'haq';
  }

  /** A fresh name from a prefix: `conv_0`, `conv_1`, ... (never reused). */
  fresh(prefix: string): string {
    let n = this.counters.get(prefix) ?? 0;
    let name = `${prefix}_${n}`;
    while (this.usedNames.has(name)) name = `${prefix}_${++n}`;
    this.counters.set(prefix, n + 1);
    this.usedNames.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.usedNames.has(name)) throw new Error(`GraphBuilder: name "${name}" is already used`);
    this.usedNames.add(name);
    return name;
  }

  /** Declares a graph input; string dims are symbolic (dim_param). Returns its name. */
  input(name: string, type: ElementType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /** Marks a tensor as a graph output (dims optional: untyped shape when omitted). */
  output(name: string, dims?: Dim[], type: ElementType = 'float32'): string {
    this.outputs.push(valueInfo(name, type, dims));
    return name;
  }

  /** Adds a float32 initializer (or int64 with `type: 'int64'`). */
  initializer(name: string, data: Float32Array | ArrayLike<number>, dims: number[], type: 'float32' | 'int64' = 'float32'): string {
    this.claim(name);
    this.initializers.push(type === 'int64' ? int64Tensor(name, data, dims) : float32Tensor(name, Float32Array.from(data), dims));
    return name;
  }

  /** Adds a Constant node whose output is `name`. */
  constant(name: string, data: Float32Array | ArrayLike<number>, dims: number[], type: 'float32' | 'int64' = 'float32'): string {
    const tensor = type === 'int64' ? int64Tensor(name, data, dims) : float32Tensor(name, Float32Array.from(data), dims);
    const nodeName = this.fresh('constant');
    this.claim(name);
    this.nodes.push({ name: nodeName, opType: 'Constant', input: [], output: [name], attribute: [attribute('value', { tensor })] });
    return name;
  }

  /**
   * Adds any node. `outputs` is a count (names generated) or explicit names. Returns the
   * output names.
   */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    options: { outputs?: number | string[]; name?: string; domain?: string } = {},
  ): string[] {
    const name = options.name ? this.claim(options.name) : this.fresh(opType.toLowerCase());
    const outputs =
      typeof options.outputs === 'object'
        ? options.outputs.map((o) => this.claim(o))
        : Array.from({ length: options.outputs ?? 1 }, (_, i) => this.claim(`${name}_out${i === 0 ? '' : i}`));
    this.nodes.push({
      name,
      opType,
      domain: options.domain ?? '',
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** One-output shorthand for node(). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, name?: string): string {
    return this.node(opType, inputs, attrs, { name })[0];
  }

  private weightTensors(prefix: string, spec: WeightSpec, biasLength: number): { w: string; b?: string } {
    const add = (n: string, d: Float32Array, dims: number[]) => (spec.asConstant ? this.constant(n, d, dims) : this.initializer(n, d, dims));
    const w = add(`${prefix}_w`, spec.weight, spec.weightDims);
    if (!spec.bias) return { w };
    if (spec.bias.length !== biasLength) throw new Error(`GraphBuilder: bias of ${prefix} has ${spec.bias.length} values, expected ${biasLength}`);
    return { w, b: add(`${prefix}_b`, spec.bias, [biasLength]) };
  }

  conv(x: string, spec: ConvSpec): string {
    const name = spec.name ? this.claim(spec.name) : this.fresh('conv');
    const { w, b } = this.weightTensors(name, spec, spec.weightDims[0]);
    const attrs: Record<string, AttrValue> = {
      kernel_shape: spec.weightDims.slice(2),
      strides: spec.strides ?? [1, 1],
      pads: spec.pads ?? [0, 0, 0, 0],
      dilations: spec.dilations ?? [1, 1],
      group: spec.group ?? 1,
    };
    return this.pushNode(name, 'Conv', b ? [x, w, b] : [x, w], attrs);
  }

  /** Gemm y = x * W^T + b (transB = 1, default) or x * W + b (transB = 0). */
  gemm(x: string, spec: GemmSpec): string {
    const name = spec.name ? this.claim(spec.name) : this.fresh('gemm');
    const transB = spec.transB ?? 1;
    const outFeatures = transB ? spec.weightDims[0] : spec.weightDims[1];
    const { w, b } = this.weightTensors(name, spec, outFeatures);
    return this.pushNode(name, 'Gemm', b ? [x, w, b] : [x, w], { transB, alpha: { float: 1 }, beta: { float: 1 } });
  }

  /** MatMul x * W with a constant weight [in, out] (and an Add for the bias when given). */
  matMulWeight(x: string, spec: WeightSpec): string {
    const name = spec.name ? this.claim(spec.name) : this.fresh('matmul');
    const { w, b } = this.weightTensors(name, spec, spec.weightDims[spec.weightDims.length - 1]);
    const y = this.pushNode(name, 'MatMul', [x, w], {});
    return b ? this.add(y, b) : y;
  }

  /** MatMul of two tensors (e.g. two activations). */
  matMul(a: string, b: string): string {
    return this.op('MatMul', [a, b]);
  }

  relu(x: string): string {
    return this.op('Relu', [x]);
  }

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }

  flatten(x: string, axis = 1): string {
    return this.op('Flatten', [x], { axis });
  }

  globalAveragePool(x: string): string {
    return this.op('GlobalAveragePool', [x]);
  }

  maxPool(x: string, kernel: [number, number], strides: [number, number] = kernel): string {
    return this.op('MaxPool', [x], { kernel_shape: kernel, strides });
  }

  /** Reshape to a constant shape (an int64 initializer). */
  reshape(x: string, shape: number[]): string {
    const s = this.initializer(this.fresh('shape'), shape, [shape.length], 'int64');
    return this.op('Reshape', [x, s]);
  }

  /** BatchNormalization with per-channel scale, bias, mean, var (initializers). */
  batchNorm(x: string, p: { scale: Float32Array; bias: Float32Array; mean: Float32Array; variance: Float32Array; epsilon?: number }): string {
    const name = this.fresh('batchnorm');
    const c = p.scale.length;
    const ins = [
      this.initializer(`${name}_scale`, p.scale, [c]),
      this.initializer(`${name}_bias`, p.bias, [c]),
      this.initializer(`${name}_mean`, p.mean, [c]),
      this.initializer(`${name}_var`, p.variance, [c]),
    ];
    return this.pushNode(name, 'BatchNormalization', [x, ...ins], { epsilon: { float: p.epsilon ?? 1e-5 } });
  }

  softmax(x: string, axis = -1): string {
    return this.op('Softmax', [x], { axis });
  }

  private pushNode(name: string, opType: string, inputs: string[], attrs: Record<string, AttrValue>): string {
    const out = this.claim(`${name}_out`);
    this.nodes.push({ name, opType, domain: '', input: inputs, output: [out], attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return out;
  }

  /** The GraphProto (e.g. for an If/Loop body attribute). */
  graph(): GraphProto {
    return {
      name: this.name,
      node: this.nodes.map((n) => ({ ...n })),
      initializer: [...this.initializers],
      input: [...this.inputs],
      output: [...this.outputs],
    };
  }

  model(): ModelProto {
    return {
      irVersion: this.irVersion,
      producerName: this.producer,
      opsetImport: [{ domain: '', version: this.opset }],
      graph: this.graph(),
    };
  }

  toBytes(): Uint8Array {
    if (this.outputs.length === 0) throw new Error('GraphBuilder: call output() before toBytes()');
    return encodeModel(this.model());
  }
}

/** A typed graph input/output; string dims are symbolic (dim_param), no dims: shape unknown. */
export function valueInfo(name: string, type: ElementType, dims?: readonly Dim[]): ValueInfoProto {
  const tensorType: { elemType: number; shape?: { dim: Array<{ dimValue?: number; dimParam?: string }> } } = { elemType: elementTypeCode(type) };
  if (dims) tensorType.shape = { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) };
  return { name, type: { tensorType } };
}

function attribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (value instanceof Float32Array) return { name, type: AttributeType.FLOATS, floats: Array.from(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttributeType.FLOATS, floats: value.floats };
  if ('tensor' in value) return { name, type: AttributeType.TENSOR, t: value.tensor };
  return { name, type: AttributeType.GRAPH, g: value.graph };
}

export { DataType };
