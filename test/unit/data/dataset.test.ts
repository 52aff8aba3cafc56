import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { InvalidDataError } from '../../../shared/errors';
import { batchRanges, checkSampleShape, inputBatch, labelsFromNpy, limitSplit, loadDataset, requireSplit, sampleRange, type Split } from '../../../shared/data/dataset';
import { encodeNpy } from '../../../shared/data/npy';
import { FsStore } from '../../../shared/store/fs-store';
import { expectClose } from '../../helpers/expect-close';
import { tempDir } from '../../helpers/tmp';

const tmp = tempDir('haq-dataset');
after(tmp.cleanup);

async function folder(name: string, files: Record<string, Uint8Array | string>): Promise<FsStore> {
  const store = new FsStore(`${tmp.dir}/${name}`);
  for (const [key, body] of Object.entries(files)) await store.put(key, body);
  return store;
}

describe('loadDataset', () => {
  it('loads uint8 inputs with the default scale 1/255 and int64 labels', async () => {
    const store = await folder('default', {
      'val-inputs.npy': encodeNpy({ data: Uint8Array.from([0, 255, 51, 102, 0, 0, 255, 255]), shape: [2, 1, 2, 2] }),
      'val-labels.npy': encodeNpy({ data: BigInt64Array.from([1n, 0n]), shape: [2] }),
      'calib-inputs.npy': encodeNpy({ data: new Uint8Array(4), shape: [1, 1, 2, 2] }),
    });
    const ds = await loadDataset(store, '');
    assert.deepEqual(ds.meta, { inputScale: 1 / 255, inputOffset: 0 });
    const val = requireSplit(ds, 'val');
    assert.equal(val.samples, 2);
    assert.deepEqual(val.sampleShape, [1, 2, 2]);
    assert.deepEqual(Array.from(val.labels!), [1, 0]);
    assert.equal(ds.calib!.labels, null);
    assert.equal(ds.test, null);
    const b = inputBatch(val, 0, 2);
    assert.deepEqual(b.dims, [2, 1, 2, 2]);
    expectClose(b.data, [0, 1, 0.2, 0.4, 0, 0, 1, 1]);
    assert.throws(() => requireSplit(ds, 'test'), (err: Error) => err instanceof InvalidDataError && /has no test-inputs\.npy \(the held-out test split\); add it: .*test-labels\.npy for top-1/.test(err.message));
  });

  it('applies meta.json inputScale/inputOffset to uint8 inputs, under a prefix', async () => {
    const store = await folder('meta', {
      'models/m/data/meta.json': JSON.stringify({ inputScale: 0.5, inputOffset: -1 }),
      'models/m/data/val-inputs.npy': encodeNpy({ data: Uint8Array.from([0, 2, 4, 6]), shape: [2, 2] }),
    });
    const ds = await loadDataset(store, 'models/m/data/', ['val']);
    expectClose(inputBatch(ds.val!, 1, 5).data, [1, 2]);
    assert.deepEqual(inputBatch(ds.val!, 1, 5).dims, [1, 2]);
  });

  it('passes float32 inputs through and accepts int32 labels of shape (N, 1)', async () => {
    const store = await folder('float', {
      'test-inputs.npy': encodeNpy({ data: Float32Array.from([0.5, -3, 2, 7]), shape: [2, 2] }),
      'test-labels.npy': encodeNpy({ data: Int32Array.from([4, 2]), shape: [2, 1] }),
    });
    const ds = await loadDataset(store, '', ['test']);
    expectClose(inputBatch(ds.test!, 0, 2).data, [0.5, -3, 2, 7]);
    assert.deepEqual(Array.from(ds.test!.labels!), [4, 2]);
  });

  it('rejects bad folders with InvalidDataError naming the file', async () => {
    const cases: Array<[string, Record<string, Uint8Array | string>, RegExp]> = [
      ['empty', {}, /no data in .* expected calib-inputs\.npy or val-inputs\.npy or test-inputs\.npy/],
      ['count', { 'val-inputs.npy': encodeNpy({ data: new Float32Array(6), shape: [3, 2] }), 'val-labels.npy': encodeNpy({ data: new Int32Array(2), shape: [2] }) }, /has 2 labels but val-inputs\.npy has 3 samples/],
      ['float-labels', { 'val-inputs.npy': encodeNpy({ data: new Float32Array(2), shape: [1, 2] }), 'val-labels.npy': encodeNpy({ data: new Float32Array(1), shape: [1] }) }, /labels must be integer class indices/],
      ['negative', { 'val-inputs.npy': encodeNpy({ data: new Float32Array(2), shape: [1, 2] }), 'val-labels.npy': encodeNpy({ data: Int32Array.from([-1]), shape: [1] }) }, /val-labels\.npy.*\[0\] = -1 is not a class index/],
      ['int-inputs', { 'val-inputs.npy': encodeNpy({ data: new Int32Array(2), shape: [1, 2] }) }, /is int32; inputs must be float32 or uint8/],
      ['rank1', { 'val-inputs.npy': encodeNpy({ data: new Float32Array(2), shape: [2] }) }, /inputs must be \[N, \.\.\.\]/],
      ['meta', { 'meta.json': '{"inputScale": -1}', 'val-inputs.npy': encodeNpy({ data: new Uint8Array(2), shape: [1, 2] }) }, /meta\.json.*inputScale/],
      ['nan', { 'calib-inputs.npy': encodeNpy({ data: Float32Array.from([0, 1, NaN, 2, -Infinity, 3]), shape: [3, 2] }) }, /calib-inputs\.npy .*holds 2 NaN\/Inf values, the first at flat index 2 \(sample 1\)/],
      ['inf64', { 'test-inputs.npy': encodeNpy({ data: Float64Array.from([0, 1, 2, Infinity]), shape: [2, 2] }) }, /test-inputs\.npy .*holds 1 NaN\/Inf value, the first at flat index 3 \(sample 1\)/],
      ['meta-json', { 'meta.json': '{oops', 'val-inputs.npy': encodeNpy({ data: new Uint8Array(2), shape: [1, 2] }) }, /meta\.json .* is not valid JSON/],
    ];
    for (const [name, files, pattern] of cases) {
      const store = await folder(`bad-${name}`, files);
      await assert.rejects(loadDataset(store, ''), (err: Error) => {
        assert.ok(err instanceof InvalidDataError, `${name}: ${err.name} ${err.message}`);
        assert.match(err.message, pattern, name);
        return true;
      });
    }
  });
});

describe('helpers', () => {
  /** Five samples of shape [1, 2]: sample i holds i*10 and i*10+1, label i. */
  const five: Split = {
    name: 'val',
    inputs: { dtype: 'float32', data: Float32Array.from({ length: 10 }, (_, k) => Math.floor(k / 2) * 10 + (k % 2)), shape: [5, 1, 2] },
    labels: Int32Array.from([0, 1, 2, 3, 4]),
    sampleShape: [1, 2],
    samples: 5,
    meta: { inputScale: 1, inputOffset: 0 },
  };
  for (const { start, end } of [
    { start: 0, end: 5 },
    { start: 1, end: 3 },
    { start: 4, end: 4 },
  ]) {
    it(`sampleRange [${start}, ${end}) views those samples and labels, shape and count`, () => {
      const r = sampleRange(five, start, end);
      assert.deepEqual([...r.inputs.data], [...five.inputs.data].slice(start * 2, end * 2));
      assert.deepEqual([...r.labels!], [0, 1, 2, 3, 4].slice(start, end));
      assert.deepEqual([r.samples, r.inputs.shape], [end - start, [end - start, 1, 2]]);
      assert.equal(r.inputs.data.buffer, five.inputs.data.buffer, 'a view, not a copy');
    });
  }
  for (const { samples, want } of [
    { samples: 2, want: 2 },
    { samples: 0, want: 5 },
    { samples: 5, want: 5 },
    { samples: 9, want: 5 },
  ]) {
    it(`limitSplit to ${samples} keeps the first ${want}`, () => {
      const r = limitSplit(five, samples);
      assert.equal(r.samples, want);
      assert.deepEqual([...r.labels!], [0, 1, 2, 3, 4].slice(0, want));
      if (want === five.samples) assert.equal(r, five, 'the split itself');
    });
  }

  it('batchRanges covers every sample once', () => {
    assert.deepEqual(batchRanges(10, 4), [{ start: 0, count: 4 }, { start: 4, count: 4 }, { start: 8, count: 2 }]);
    assert.deepEqual(batchRanges(0, 4), []);
    assert.throws(() => batchRanges(3, 0), /batch size 0/);
  });

  it('checkSampleShape accepts dynamic dims and names both shapes on a mismatch', () => {
    assert.deepEqual(checkSampleShape([null, 1, 28, 28], [1, 28, 28], 'val-inputs.npy', 'x'), [1, 28, 28]);
    assert.deepEqual(checkSampleShape([null, 3, null, null], [3, 10, 12], 'val-inputs.npy', 'x'), [3, 10, 12]);
    assert.throws(() => checkSampleShape([null, 3, 32, 32], [1, 28, 28], 'val-inputs.npy', 'x'), /samples of shape \[1, 28, 28\].*"x" is \[N, 3, 32, 32\]/);
    assert.throws(() => checkSampleShape([null, 784], [1, 28, 28], 'val-inputs.npy', 'x'), InvalidDataError);
  });

  it('labelsFromNpy rejects multi-column labels', () => {
    assert.throws(() => labelsFromNpy({ dtype: 'int64', shape: [2, 3], data: new BigInt64Array(6) }, 'l.npy'), /shape \(2, 3\)/);
  });
});
