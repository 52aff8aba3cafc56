/**
 * The opset upgrade, one case per converted op: a one-op model at the old opset and its upgrade
 * run in onnxruntime on the same input must give the same outputs; refusals name the op and node.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnsupportedModelError } from '../../../shared/errors';
import { GraphBuilder, type AttrValue } from '../../../shared/onnx/builder';
import { assignNodeNames, findLayerCandidates } from '../../../shared/onnx/layers';
import { upgradeOpset, summarizeChanges } from '../../../shared/onnx/opset';
import { decodeModel, encodeModel, opsetVersion, type ModelProto } from '../../../shared/onnx/proto';
import { ModelSession } from '../../../shared/onnx/runtime';
import { Rng } from '../../../shared/rng';
import { expectClose } from '../../helpers/expect-close';

interface Case {
  name: string;
  opset: number;
  target?: number;
  inputDims: number[];
  /** Builds the graph after the input `x`; returns the output tensor names. */
  build(g: GraphBuilder, x: string): string[];
  /** Expected change summary. */
  change: RegExp;
}

const rank4 = [2, 3, 4, 5];
const node = (g: GraphBuilder, op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1) => g.node(op, inputs, attrs, { outputs });

const cases: Case[] = [
  { name: 'Clip-6 min/max', opset: 9, inputDims: rank4, build: (g, x) => node(g, 'Clip', [x], { min: { float: -0.5 }, max: { float: 0.75 } }), change: /Clip x1 \(min\/max attributes to inputs\)/ },
  { name: 'Clip-6 max only', opset: 9, inputDims: rank4, build: (g, x) => node(g, 'Clip', [x], { max: { float: 0.25 } }), change: /Clip x1/ },
  { name: 'Pad-2 constant value', opset: 9, inputDims: rank4, build: (g, x) => node(g, 'Pad', [x], { pads: [0, 0, 1, 2, 0, 0, 2, 1], value: { float: 1.5 } }), change: /Pad x1/ },
  { name: 'Pad-2 reflect', opset: 10, inputDims: rank4, build: (g, x) => node(g, 'Pad', [x], { pads: [0, 0, 1, 1, 0, 0, 1, 1], mode: 'reflect' }), change: /Pad x1/ },
  { name: 'Upsample-7 nearest (scales attribute)', opset: 7, inputDims: rank4, build: (g, x) => node(g, 'Upsample', [x], { mode: 'nearest', scales: { floats: [1, 1, 2, 3] } }), change: /Upsample x1 \(scales attribute to input\).*Upsample x1 \(Upsample to Resize\).*Resize x1/ },
  { name: 'Upsample-7 linear', opset: 8, inputDims: rank4, build: (g, x) => node(g, 'Upsample', [x], { mode: 'linear', scales: { floats: [1, 1, 2, 2] } }), change: /Resize x1/ },
  {
    name: 'Upsample-9 nearest (scales input)',
    opset: 9,
    inputDims: rank4,
    build: (g, x) => node(g, 'Upsample', [x, g.initializer('scales', [1, 1, 2, 2], [4])], { mode: 'nearest' }),
    change: /Upsample x1 \(Upsample to Resize\)/,
  },
  {
    name: 'Resize-10 nearest downsampling',
    opset: 10,
    inputDims: [1, 2, 9, 7],
    build: (g, x) => node(g, 'Resize', [x, g.initializer('scales', [1, 1, 0.5, 0.6], [4])], { mode: 'nearest' }),
    change: /Resize x1 \(roi input, asymmetric coordinates\)/,
  },
  {
    name: 'Resize-10 linear',
    opset: 10,
    inputDims: rank4,
    build: (g, x) => node(g, 'Resize', [x, g.initializer('scales', [1, 1, 2, 1.5], [4])], { mode: 'linear' }),
    change: /Resize x1/,
  },
  {
    name: 'BatchNormalization-7 spatial',
    opset: 7,
    inputDims: rank4,
    build: (g, x) => {
      let k = 0;
      const c = (v: number[]) => g.initializer(`bn_param_${k++}`, v, [3]);
      return node(g, 'BatchNormalization', [x, c([1, 2, 0.5]), c([0, 0.1, -0.2]), c([0.3, -0.1, 0]), c([1, 0.5, 2])], { spatial: 1, epsilon: { float: 1e-3 } });
    },
    change: /BatchNormalization x1 \(spatial attribute dropped\)/,
  },
  { name: 'Slice-1 with axes', opset: 9, inputDims: rank4, build: (g, x) => node(g, 'Slice', [x], { starts: [1, 0], ends: [3, -1], axes: [2, 3] }), change: /Slice x1/ },
  { name: 'Slice-1 without axes', opset: 9, inputDims: rank4, build: (g, x) => node(g, 'Slice', [x], { starts: [0, 1], ends: [1, 3] }), change: /Slice x1/ },
  { name: 'TopK-1', opset: 9, inputDims: [3, 6], build: (g, x) => node(g, 'TopK', [x], { k: 2, axis: 1 }, 2).slice(0, 1), change: /TopK x1/ },
  { name: 'Dropout-7', opset: 9, inputDims: rank4, build: (g, x) => [g.relu(node(g, 'Dropout', [x], { ratio: { float: 0.3 } })[0])], change: /Dropout x1 \(Dropout to Identity/ },
  {
    name: 'Scatter-9',
    opset: 9,
    inputDims: [3, 4],
    build: (g, x) => node(g, 'Scatter', [x, g.initializer('idx', [1, 0, 2, 1], [1, 4], 'int64'), g.initializer('upd', [9, 8, 7, 6], [1, 4])], { axis: 0 }),
    change: /Scatter x1 \(Scatter to ScatterElements\)/,
  },
  { name: 'Squeeze-11', opset: 11, target: 13, inputDims: [2, 1, 4, 1], build: (g, x) => node(g, 'Squeeze', [x], { axes: [1, 3] }), change: /Squeeze x1 \(axes attribute to input\)/ },
  { name: 'Squeeze-11 without axes', opset: 11, target: 13, inputDims: [2, 1, 4, 1], build: (g, x) => node(g, 'Squeeze', [x]), change: /Squeeze x1/ },
  { name: 'Unsqueeze-11', opset: 11, target: 13, inputDims: [2, 4], build: (g, x) => node(g, 'Unsqueeze', [x], { axes: [0, 3] }), change: /Unsqueeze x1/ },
  { name: 'Split-11', opset: 11, target: 13, inputDims: [2, 6], build: (g, x) => node(g, 'Split', [x], { axis: 1, split: [2, 4] }, 2), change: /Split x1 \(split attribute to input\)/ },
  { name: 'ReduceSum-11', opset: 11, target: 13, inputDims: rank4, build: (g, x) => node(g, 'ReduceSum', [x], { axes: [1, 3], keepdims: 0 }), change: /ReduceSum x1/ },
  { name: 'Softmax-11 axis 1 of 4-D', opset: 11, target: 13, inputDims: rank4, build: (g, x) => node(g, 'Softmax', [x], { axis: 1 }), change: /Softmax x1 \(2-D coercion made explicit\)/ },
  { name: 'Softmax-9 default axis of 2-D', opset: 9, target: 13, inputDims: [3, 5], build: (g, x) => node(g, 'Softmax', [x]), change: /Softmax x1/ },
  { name: 'LogSoftmax-11 axis 2 of 4-D', opset: 11, target: 13, inputDims: rank4, build: (g, x) => node(g, 'LogSoftmax', [x], { axis: 2 }), change: /LogSoftmax x1/ },
  { name: 'Hardmax-11 last axis', opset: 11, target: 13, inputDims: rank4, build: (g, x) => node(g, 'Hardmax', [x], { axis: 3 }), change: /Hardmax x1/ },
  { name: 'MeanVarianceNormalization-7', opset: 8, inputDims: rank4, build: (g, x) => node(g, 'MeanVarianceNormalization', [x], { across_channels: 0 }), change: /MeanVarianceNormalization x1/ },
];

function randomInput(dims: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.normal(0, 1));
}

async function runAll(bytes: Uint8Array, input: Float32Array, dims: number[]) {
  const session = await ModelSession.create(bytes, { graphOptimization: 'disabled' });
  try {
    return await session.run({ x: { data: input, dims } });
  } finally {
    await session.release();
  }
}

describe('upgradeOpset: each converted op gives the original outputs in onnxruntime', () => {
  for (const c of cases) {
    it(`${c.name} (opset ${c.opset} -> ${c.target ?? 13})`, async () => {
      const g = new GraphBuilder({ opset: c.opset, irVersion: 4 });
      const x = g.input('x', 'float32', c.inputDims);
      for (const out of c.build(g, x)) g.output(out);
      const original = g.toBytes();
      const upgrade = upgradeOpset(decodeModel(original), c.target ?? 13);
      assert.equal(opsetVersion(upgrade.model), c.target ?? 13);
      assert.match(summarizeChanges(upgrade.changes), c.change);
      const input = randomInput(c.inputDims, 7);
      const before = await runAll(original, input, c.inputDims);
      const after = await runAll(encodeModel(upgrade.model), input, c.inputDims);
      for (const [name, t] of Object.entries(before)) {
        assert.deepEqual(after[name].dims, t.dims, `${name} dims`);
        expectClose(after[name].data, t.data, { atol: 1e-6, rtol: 1e-6 }, name);
      }
    });
  }
});

describe('upgradeOpset: what it keeps, refuses and reaches', () => {
  it('keeps the layer names of unnamed nodes (the layer table of the original fits the upgrade)', () => {
    const g = new GraphBuilder({ opset: 9 });
    const x = g.input('x', 'float32', [1, 2, 4, 4]);
    const y = node(g, 'Clip', [x], { min: { float: 0 }, max: { float: 6 } })[0];
    g.output(g.conv(y, { weight: new Float32Array(3 * 2 * 9).fill(0.1), weightDims: [3, 2, 3, 3], asConstant: true }));
    const model = decodeModel(g.toBytes());
    for (const n of model.graph!.node!) n.name = ''; // exporters often leave nodes unnamed
    const upgraded = upgradeOpset(model, 13).model;
    assert.deepEqual(findLayerCandidates(upgraded).layers.map((l) => l.name), findLayerCandidates(model).layers.map((l) => l.name));
    assert.deepEqual(assignNodeNames(upgraded.graph!).slice(0, 3), assignNodeNames(model.graph!).slice(0, 3));
  });

  it('converts the nodes of If subgraphs too', async () => {
    const branch = (max: number) => {
      const b = new GraphBuilder({ name: `b${max}`, opset: 9 });
      b.output(node(b, 'Clip', ['x'], { min: { float: 0 }, max: { float: max } })[0]);
      return b.graph();
    };
    const g = new GraphBuilder({ opset: 9 });
    const x = g.input('x', 'float32', [2, 3]);
    const cond = g.initializer('cond', [1], [], 'int64');
    const flag = node(g, 'Cast', [cond], { to: 9 })[0];
    g.output(node(g, 'If', [flag], { then_branch: { graph: branch(0.5) }, else_branch: { graph: branch(2) } })[0]);
    void x;
    const original = g.toBytes();
    const upgrade = upgradeOpset(decodeModel(original), 13);
    assert.equal(upgrade.changes.length, 2);
    assert.match(upgrade.changes[0].node, /^if_\d+\/then_branch\//);
    const input = randomInput([2, 3], 3);
    const before = await runAll(original, input, [2, 3]);
    const after = await runAll(encodeModel(upgrade.model), input, [2, 3]);
    for (const [name, t] of Object.entries(before)) expectClose(after[name].data, t.data);
  });

  it('leaves a model at or above the target untouched', () => {
    const g = new GraphBuilder({ opset: 13 });
    g.output(g.relu(g.input('x', 'float32', [1, 2])));
    const model = decodeModel(g.toBytes());
    const upgrade = upgradeOpset(model, 11);
    assert.equal(upgrade.model, model);
    assert.deepEqual(upgrade.changes, []);
  });

  const refusals: Array<{ name: string; opset: number; build(g: GraphBuilder, x: string): void; message: RegExp }> = [
    {
      name: 'BatchNormalization with spatial = 0',
      opset: 7,
      build: (g, x) => {
        let k = 0;
        const c = () => g.initializer(`p_${k++}`, [1, 1, 1], [3]);
        g.output(g.node('BatchNormalization', [x, c(), c(), c(), c()], { spatial: 0 }, { name: 'bn_a' })[0]);
      },
      message: /its BatchNormalization node "bn_a" cannot be converted to opset 13: spatial = 0/,
    },
    {
      name: 'a Dropout whose mask is read',
      opset: 9,
      build: (g, x) => {
        const [y, mask] = g.node('Dropout', [x], {}, { outputs: 2, name: 'drop' });
        g.output(y);
        g.output(mask);
      },
      message: /Dropout node "drop" cannot be converted .* mask output/,
    },
    { name: 'an experimental op', opset: 9, build: (g, x) => void g.output(g.node('Crop', [x], {}, { name: 'crop1' })[0]), message: /Crop node "crop1".*removed in opset 10/ },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}, naming the op and the node`, () => {
      const g = new GraphBuilder({ opset: r.opset });
      r.build(g, g.input('x', 'float32', [1, 3, 2, 2]));
      assert.throws(() => upgradeOpset(decodeModel(g.toBytes()), 13, 'm.onnx'), (err: Error) => err instanceof UnsupportedModelError && r.message.test(err.message) && /^m\.onnx imports opset/.test(err.message));
    });
  }

  it('refuses opsets below 7 with the fix', () => {
    const g = new GraphBuilder({ opset: 6 });
    g.output(g.relu(g.input('x', 'float32', [1])));
    const model: ModelProto = decodeModel(g.toBytes());
    assert.throws(() => upgradeOpset(model, 11), /imports opset 6; haq reads opset 7 and later/);
  });
});
