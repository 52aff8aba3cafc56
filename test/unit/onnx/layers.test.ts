import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInputError, UnsupportedModelError } from '../../../shared/errors';
import { GraphBuilder } from '../../../shared/onnx/builder';
import { inspectModel, modelHash } from '../../../shared/onnx/inspect';
import { assignNodeNames, findLayerCandidates, parseShape, readConstant, resolveInputShape } from '../../../shared/onnx/layers';
import { decodeModel } from '../../../shared/onnx/proto';
import { LayerTable, type LayerInfo } from '../../../shared/onnx/types';
import { attentionLike, depthwiseCnn, dynamicSpatialCnn, mlpWithConstants, noLayerModel, plainCnn, unknownOpModel } from '../../fixtures/models';

// Hand formulas: conv MACs = N * c_out * H_out * W_out * (c_in / groups) * kh * kw; linear = rows * K * N.
const convMacs = (n: number, cOut: number, hOut: number, wOut: number, cInPerGroup: number, k: number) => n * cOut * hOut * wOut * cInPerGroup * k * k;

type Expected = Pick<LayerInfo, 'name' | 'kind' | 'inChannels' | 'outChannels' | 'kernel' | 'stride' | 'groups' | 'inputShape' | 'outputShape' | 'params' | 'macs'>;

function pick(l: LayerInfo): Expected {
  const { name, kind, inChannels, outChannels, kernel, stride, groups, inputShape, outputShape, params, macs } = l;
  return { name, kind, inChannels, outChannels, kernel, stride, groups, inputShape, outputShape, params, macs };
}

describe('layer table', () => {
  it('plain CNN: conv, conv, Gemm (transB = 1) with hand-computed MACs', async () => {
    const bytes = plainCnn();
    const table = await inspectModel(bytes);
    LayerTable.parse(table);
    assert.deepEqual(table.inputShape, [1, 3, 32, 32]);
    assert.equal(table.modelHash, modelHash(bytes));
    assert.match(table.modelHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(table.layers.map(pick), [
      { name: 'conv1', kind: 'conv', inChannels: 3, outChannels: 8, kernel: [3, 3], stride: [1, 1], groups: 1, inputShape: [1, 3, 32, 32], outputShape: [1, 8, 32, 32], params: 8 * 3 * 9, macs: convMacs(1, 8, 32, 32, 3, 3) },
      { name: 'conv2', kind: 'conv', inChannels: 8, outChannels: 16, kernel: [3, 3], stride: [2, 2], groups: 1, inputShape: [1, 8, 16, 16], outputShape: [1, 16, 8, 8], params: 16 * 8 * 9, macs: convMacs(1, 16, 8, 8, 8, 3) },
      { name: 'fc', kind: 'linear', inChannels: 16, outChannels: 10, kernel: [1, 1], stride: [1, 1], groups: 1, inputShape: [1, 16], outputShape: [1, 10], params: 160, macs: 160 },
    ]);
    assert.equal(table.layers[0].biasName, 'conv1_b');
    assert.equal(table.layers[1].biasName, null);
    assert.deepEqual(table.totals, { params: 216 + 1152 + 160, macs: 221184 + 73728 + 160, skippedMacs: 0 });
    assert.deepEqual(table.skipped, []);
  });

  it('batch is included in MACs (--input-shape 4,3,32,32)', async () => {
    const one = await inspectModel(plainCnn());
    const four = await inspectModel(plainCnn(), { inputShape: [4, 3, 32, 32] });
    assert.deepEqual(four.layers.map((l) => l.macs), one.layers.map((l) => 4 * l.macs));
    assert.deepEqual(four.layers.map((l) => l.params), one.layers.map((l) => l.params));
  });

  it('depthwise-separable CNN: depthwise (incl. multiplier 2), pointwise, grouped conv, Gemm transB = 0', async () => {
    const table = await inspectModel(depthwiseCnn());
    assert.deepEqual(
      table.layers.map((l) => [l.name, l.kind, l.groups, l.inChannels, l.outChannels, l.params, l.macs]),
      [
        ['stem', 'conv', 1, 3, 8, 8 * 3 * 9, convMacs(1, 8, 8, 8, 3, 3)],
        ['dw1', 'depthwise', 8, 8, 8, 8 * 9, convMacs(1, 8, 8, 8, 1, 3)],
        ['pw1', 'conv', 1, 8, 16, 16 * 8, convMacs(1, 16, 8, 8, 8, 1)],
        ['dw2', 'depthwise', 16, 16, 32, 32 * 9, convMacs(1, 32, 4, 4, 1, 3)],
        ['gc', 'conv', 4, 32, 32, 32 * 8, convMacs(1, 32, 4, 4, 8, 1)],
        ['head', 'linear', 1, 32, 5, 32 * 5, 32 * 5],
      ],
    );
    assert.deepEqual(table.layers[3].outputShape, [1, 32, 4, 4]);
    assert.deepEqual(table.layers[3].stride, [2, 2]);
  });

  it('MLP with Constant-node weights, an Identity in front of a MatMul weight, batch 8', async () => {
    const bytes = mlpWithConstants();
    const table = await inspectModel(bytes, { inputShape: [8, 20] });
    assert.deepEqual(
      table.layers.map((l) => [l.name, l.op, l.inChannels, l.outChannels, l.params, l.macs, l.inputShape, l.outputShape]),
      [
        ['fc1', 'Gemm', 20, 16, 320, 8 * 20 * 16, [8, 20], [8, 16]],
        ['fc2', 'MatMul', 16, 12, 192, 8 * 16 * 12, [8, 16], [8, 12]],
        ['fc3', 'Gemm', 12, 4, 48, 8 * 12 * 4, [8, 12], [8, 4]],
      ],
    );
    // The weight is named by the tensor that holds the data (the Constant's output, not the Identity's).
    assert.equal(table.layers[1].weightName, 'fc2_weight');
    const model = decodeModel(bytes);
    const w = readConstant(model, table.layers[1].weightName);
    assert.deepEqual(w.dims, [16, 12]);
    assert.equal(w.data.length, 192);
    const fc1 = readConstant(model, table.layers[0].weightName);
    assert.deepEqual(fc1.dims, [16, 20]);
  });

  it('3-D activation MatMul counts every row; MatMul of two activations and If-subgraph ops are skipped', async () => {
    const table = await inspectModel(attentionLike(), { inputShape: [2, 5, 20] });
    assert.equal(table.layers.length, 1);
    assert.deepEqual(pick(table.layers[0]), {
      name: 'proj', kind: 'linear', inChannels: 20, outChannels: 8, kernel: [1, 1], stride: [1, 1], groups: 1,
      inputShape: [2, 5, 20], outputShape: [2, 5, 8], params: 160, macs: 2 * 5 * 20 * 8,
    });
    assert.deepEqual(table.skipped.map((s) => [s.name, s.op]), [
      ['scores', 'MatMul'],
      ['gate/then_branch/then_mm', 'MatMul'],
      ['gate/else_branch/else_mm', 'MatMul'],
    ]);
    assert.match(table.skipped[0].reason, /two activations/);
    assert.match(table.skipped[1].reason, /If/);
  });

  it('a model with no quantizable layer is an UnsupportedModelError naming its ops', async () => {
    await assert.rejects(inspectModel(noLayerModel(), { what: 'm.onnx' }), (err: Error) => {
      assert.ok(err instanceof UnsupportedModelError);
      assert.match(err.message, /m\.onnx has no quantizable layer.*Relu, Softmax/);
      return true;
    });
  });

  it('an unknown op is an UnsupportedModelError naming the op and node', async () => {
    await assert.rejects(inspectModel(unknownOpModel()), (err: Error) => {
      assert.ok(err instanceof UnsupportedModelError);
      assert.match(err.message, /op FooBar \(node mystery/);
      return true;
    });
  });

  it('dynamic spatial dims need --input-shape; with it the shapes follow', async () => {
    await assert.rejects(inspectModel(dynamicSpatialCnn()), (err: Error) => err instanceof InvalidInputError && /--input-shape/.test(err.message));
    const table = await inspectModel(dynamicSpatialCnn(), { inputShape: [2, 3, 10, 12] });
    assert.deepEqual(table.layers[0].outputShape, [2, 4, 10, 12]);
    assert.equal(table.layers[0].macs, convMacs(2, 4, 10, 12, 3, 3));
  });
});

describe('edge cases of layer detection', () => {
  it('Gemm with transA = 1 reads M and K from the transposed input', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [6, 3]); // A^T: K = 6, M = 3
    const w = g.initializer('w', new Float32Array(6 * 4), [6, 4]);
    g.output(g.node('Gemm', [x, w], { transA: 1 }, { name: 'g' })[0], [3, 4]);
    const [layer] = (await inspectModel(g.toBytes())).layers;
    assert.deepEqual([layer.inChannels, layer.outChannels, layer.macs, layer.outputShape], [6, 4, 3 * 6 * 4, [3, 4]]);
  });

  it('skips 1-D Conv, ConvTranspose and a Gemm whose constant is the first input', () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2, 8]);
    const c1 = g.node('Conv', [x, g.initializer('w1', new Float32Array(4 * 2 * 3), [4, 2, 3])], {}, { name: 'conv1d' })[0];
    const ct = g.node('ConvTranspose', [g.input('y', 'float32', [1, 2, 4, 4]), g.initializer('w2', new Float32Array(2 * 2 * 9), [2, 2, 3, 3])], {}, { name: 'deconv' })[0];
    const gm = g.node('Gemm', [g.initializer('a', new Float32Array(12), [3, 4]), g.input('z', 'float32', [4, 2])], {}, { name: 'gemm_left' })[0];
    g.output(c1);
    g.output(ct);
    g.output(gm);
    const { layers, skipped } = findLayerCandidates(g.model());
    assert.equal(layers.length, 0);
    assert.deepEqual(skipped.map((s) => s.name), ['conv1d', 'deconv', 'gemm_left']);
    assert.match(skipped[0].reason, /1 spatial dims/);
    assert.match(skipped[1].reason, /ConvTranspose has no quantized form/);
    assert.match(skipped[2].reason, /constant operand is the first input/);
  });

  it('a model with several inputs or a non-float input is rejected by name', async () => {
    const g = new GraphBuilder();
    const a = g.input('a', 'float32', [1, 4]);
    const b = g.input('b', 'float32', [1, 4]);
    g.output(g.add(a, b));
    await assert.rejects(inspectModel(g.toBytes()), /has 2 inputs \(a, b\)/);
    const h = new GraphBuilder();
    h.output(h.op('Cast', [h.input('ids', 'int64', [1, 4])], { to: 1 }));
    await assert.rejects(inspectModel(h.toBytes()), /input "ids" is int64; haq evaluates models with a float32 input/);
  });
});

describe('input shape resolution', () => {
  const input = { name: 'x', dims: [null, 3, 32, 32] };
  it('a dynamic batch defaults to 1', () => assert.deepEqual(resolveInputShape(input), [1, 3, 32, 32]));
  it('an override replaces dynamic dims and must agree with fixed ones', () => {
    assert.deepEqual(resolveInputShape(input, [8, 3, 32, 32]), [8, 3, 32, 32]);
    assert.throws(() => resolveInputShape(input, [1, 1, 32, 32]), /dim 1 is fixed at 3/);
    assert.throws(() => resolveInputShape(input, [1, 3, 32]), /has 3 dims but the model input "x" has 4/);
  });
  it('parses --input-shape text', () => {
    assert.deepEqual(parseShape('1,3,224,224'), [1, 3, 224, 224]);
    assert.deepEqual(parseShape('1x3x8x8'), [1, 3, 8, 8]);
    for (const bad of ['', '1,a', '1,0,3', '-1,3', '1.5']) assert.throws(() => parseShape(bad), InvalidInputError);
  });
});

describe('node names', () => {
  it('empty and duplicate names become <op>_<index>, never colliding with given names', () => {
    const names = assignNodeNames({
      node: [
        { opType: 'Conv', name: '' },
        { opType: 'Relu', name: 'a' },
        { opType: 'Conv', name: 'a' },
        { opType: 'Gemm' },
        { opType: 'Conv', name: 'conv_0' },
        { opType: 'Relu', name: 'gemm_3' },
      ],
    });
    assert.deepEqual(names, ['conv_0_2', 'a', 'conv_2', 'gemm_3_2', 'conv_0', 'gemm_3']);
    assert.equal(new Set(names).size, names.length);
  });

  it('unnamed builder-free nodes get deterministic names in the table', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 4]);
    g.output(g.gemm(x, { weight: new Float32Array(8), weightDims: [2, 4] }), [1, 2]);
    const model = g.model();
    model.graph!.node![0].name = '';
    const { layers } = findLayerCandidates(model);
    assert.equal(layers[0].name, 'gemm_0');
  });
});
