import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnsupportedModelError } from '../../../shared/errors';
import { GraphBuilder } from '../../../shared/onnx/builder';
import { decodeModel } from '../../../shared/onnx/proto';
import { ModelSession, resolveShapes } from '../../../shared/onnx/runtime';
import { expectClose } from '../../helpers/expect-close';
import { depthwiseCnn, unknownOpModel } from '../../fixtures/models';

describe('ModelSession', () => {
  it('runs a Gemm and returns float32 outputs with dims', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['N', 2]);
    // y = x W^T + b with W = [[1, 2], [3, 4], [5, 6]], b = [0.5, 0, -1]
    g.output(g.gemm(x, { weight: Float32Array.from([1, 2, 3, 4, 5, 6]), weightDims: [3, 2], bias: Float32Array.from([0.5, 0, -1]) }), ['N', 3]);
    const session = await ModelSession.create(g.toBytes());
    try {
      const out = await session.run({ x: { data: Float32Array.from([1, 1, 0, 2]), dims: [2, 2] } });
      const y = out[session.outputNames[0]];
      assert.deepEqual(y.dims, [2, 3]);
      expectClose(y.data, [3.5, 7, 10, 4.5, 8, 11]);
    } finally {
      await session.release();
    }
  });

  it('an unknown op fails at load with UnsupportedModelError naming it', async () => {
    await assert.rejects(ModelSession.create(unknownOpModel(), { what: 'u.onnx' }), (err: Error) => {
      assert.ok(err instanceof UnsupportedModelError);
      assert.match(err.message, /u\.onnx uses the op FooBar \(node mystery, opset 13\)/);
      return true;
    });
  });

  it('an unknown domain fails at load with UnsupportedModelError naming it', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', [1, 2]);
    g.output(g.node('Magic', [x], {}, { name: 'm', domain: 'com.acme' })[0], [1, 2]);
    await assert.rejects(ModelSession.create(g.toBytes()), /Magic from domain "com\.acme"/);
  });
});

describe('resolveShapes', () => {
  it('returns the concrete shapes of intermediate tensors for an input size', async () => {
    const model = decodeModel(depthwiseCnn());
    const shapes = await resolveShapes(model, { name: 'x', shape: [3, 3, 16, 16] }, ['dw1_out', 'dw2_out', 'head_out']);
    assert.deepEqual(shapes.get('x'), [3, 3, 16, 16]);
    assert.deepEqual(shapes.get('dw1_out'), [3, 8, 8, 8]);
    assert.deepEqual(shapes.get('dw2_out'), [3, 32, 4, 4]);
    assert.deepEqual(shapes.get('head_out'), [3, 5]);
    // The caller's model is not modified.
    assert.equal(model.graph!.output!.length, 1);
  });
});
