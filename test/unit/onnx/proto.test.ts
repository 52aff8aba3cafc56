import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnsupportedModelError } from '../../../shared/errors';
import { GraphBuilder } from '../../../shared/onnx/builder';
import { DataType, decodeModel, encodeModel, float32Tensor, int64Tensor, opsetVersion, tensorDims, tensorToFloat32, toNumber, valueInfoDims } from '../../../shared/onnx/proto';
import { expectClose } from '../../helpers/expect-close';
import { plainCnn } from '../../fixtures/models';

const rejects = (bytes: Uint8Array, pattern: RegExp) =>
  assert.throws(() => decodeModel(bytes, 'file.onnx'), (err: Error) => {
    assert.ok(err instanceof UnsupportedModelError, `${err.name}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });

describe('decodeModel / encodeModel', () => {
  it('round-trips a built model byte for byte', () => {
    const bytes = plainCnn();
    const model = decodeModel(bytes);
    assert.equal(opsetVersion(model), 13);
    assert.equal(toNumber(model.irVersion), 8);
    assert.deepEqual(Buffer.from(encodeModel(model)), Buffer.from(bytes));
    assert.deepEqual(valueInfoDims(model.graph!.input![0]), [null, 3, 32, 32]);
  });

  it('keeps doc strings, metadata and value_info through decode + encode', () => {
    const g = new GraphBuilder();
    g.output(g.relu(g.input('x', 'float32', [1, 2])), [1, 2]);
    const model = { ...g.model(), docString: 'hello', metadataProps: [{ key: 'author', value: 'me' }] };
    model.graph!.valueInfo = [{ name: 'relu_0_out', docString: 'kept' }];
    const again = decodeModel(encodeModel(decodeModel(encodeModel(model))));
    assert.equal(again.docString, 'hello');
    assert.deepEqual(again.metadataProps!.map((m) => [m.key, m.value]), [['author', 'me']]);
    assert.equal(again.graph!.valueInfo![0].docString, 'kept');
  });

  it('rejects empty, non-ONNX, truncated and graph-less files with one clear message', () => {
    rejects(new Uint8Array(0), /file\.onnx is empty/);
    rejects(new TextEncoder().encode('{"name": "not a model", "version": 1}\n'), /file\.onnx is not an ONNX model/);
    const bytes = plainCnn();
    rejects(bytes.subarray(0, Math.floor(bytes.length / 2)), /truncated/);
    const noGraph = encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }] });
    rejects(noGraph, /has no graph/);
    const noOpset = encodeModel({ ...decodeModel(bytes), opsetImport: [] });
    rejects(noOpset, /no opset import/);
  });
});

describe('tensor data', () => {
  it('reads raw float32, typed float_data, int64 and float16 values', () => {
    const data = Float32Array.from([1.5, -2, 3.25, 0]);
    expectClose(tensorToFloat32(float32Tensor('w', data, [2, 2])), data);
    expectClose(tensorToFloat32({ name: 't', dataType: DataType.FLOAT, dims: [2], floatData: [0.5, 7] }), [0.5, 7]);
    expectClose(tensorToFloat32(int64Tensor('s', [3, -1], [2])), [3, -1]);
    // float16 bits: 0x3c00 = 1, 0xc000 = -2, 0x3800 = 0.5 (IEEE 754 binary16)
    expectClose(tensorToFloat32({ name: 'h', dataType: DataType.FLOAT16, dims: [3], int32Data: [0x3c00, 0xc000, 0x3800] }), [1, -2, 0.5]);
    assert.deepEqual(tensorDims(float32Tensor('w', data, [2, 2])), [2, 2]);
  });

  it('rejects external data and size mismatches', () => {
    assert.throws(() => tensorToFloat32({ name: 'w', dataType: DataType.FLOAT, dims: [2], dataLocation: 1, externalData: [{ key: 'location', value: 'w.bin' }] }), /external file/);
    assert.throws(() => tensorToFloat32({ name: 'w', dataType: DataType.FLOAT, dims: [3], rawData: new Uint8Array(8) }), /holds 8 bytes .* need 12/);
    assert.throws(() => tensorToFloat32({ name: 's', dataType: DataType.STRING, dims: [1] }), /string data/);
  });
});
