import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidDataError } from '../../../shared/errors';
import { decodeNpy, encodeNpy, fortranToC, type NpyData } from '../../../shared/data/npy';
import { expectClose } from '../../helpers/expect-close';

// Fixtures written by NumPy (test/fixtures/npy/make-fixtures.py): a[i,j,k] = (12i + 4j + k) / 4.
const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../../fixtures/npy/${name}`, import.meta.url)));
const expected = Float32Array.from({ length: 24 }, (_, i) => i / 4);

describe('decodeNpy on files NumPy wrote', () => {
  for (const name of ['f4-c.npy', 'f4-fortran.npy', 'f4-big-endian.npy', 'f4-v2.npy', 'f4-v3.npy', 'f8.npy']) {
    it(`${name} reads as the row-major (2, 3, 4) array`, () => {
      const a = decodeNpy(fixture(name), name);
      assert.deepEqual(a.shape, [2, 3, 4]);
      assert.equal(a.dtype, name === 'f8.npy' ? 'float64' : 'float32');
      expectClose(a.data as Float32Array, expected, { atol: 0 });
    });
  }

  it('uint8 and integer labels', () => {
    const u = decodeNpy(fixture('u1.npy'));
    assert.equal(u.dtype, 'uint8');
    assert.deepEqual(Array.from(u.data as Uint8Array), Array.from({ length: 24 }, (_, i) => (i * 10) % 256));
    const i8 = decodeNpy(fixture('i8-labels.npy'));
    assert.equal(i8.dtype, 'int64');
    assert.deepEqual(Array.from(i8.data as BigInt64Array, Number), [3, 0, 9, 1, 2]);
    const i4 = decodeNpy(fixture('i4-labels.npy'));
    assert.deepEqual([i4.dtype, Array.from(i4.data as Int32Array)], ['int32', [3, 0, 9, 1, 2]]);
  });

  it('encodeNpy writes the same bytes as numpy.save', () => {
    for (const name of ['f4-c.npy', 'u1.npy', 'i8-labels.npy', 'i4-labels.npy', 'f8.npy']) {
      const bytes = fixture(name);
      assert.deepEqual(Buffer.from(encodeNpy(decodeNpy(bytes))), Buffer.from(bytes), name);
    }
  });
});

describe('encodeNpy / decodeNpy round trip', () => {
  const cases: Array<[string, NpyData]> = [
    ['float32', Float32Array.from([1.5, -2, 1e-8, 3e30])],
    ['float64', Float64Array.from([Math.PI, -1e300, 0, 1])],
    ['uint8', Uint8Array.from([0, 255, 7, 128])],
    ['int8', Int8Array.from([-128, 127, 0, -1])],
    ['int16', Int16Array.from([-32768, 32767, 0, 5])],
    ['uint16', Uint16Array.from([65535, 0, 1, 2])],
    ['int32', Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 0, 9])],
    ['int64', BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 0n, 42n])],
  ];
  for (const [dtype, data] of cases) {
    it(dtype, () => {
      for (const shape of [[4], [2, 2], [1, 2, 2, 1]]) {
        const back = decodeNpy(encodeNpy({ data, shape }));
        assert.equal(back.dtype, dtype);
        assert.deepEqual(back.shape, shape);
        assert.deepEqual(Array.from(back.data as ArrayLike<number>), Array.from(data as ArrayLike<number>));
      }
    });
  }

  it('data starts at a multiple of 64 bytes and the header ends with a newline', () => {
    const bytes = encodeNpy({ data: new Float32Array(6), shape: [2, 3] });
    const headerLength = bytes[8] | (bytes[9] << 8);
    assert.equal((10 + headerLength) % 64, 0);
    assert.equal(bytes[10 + headerLength - 1], 0x0a);
  });
});

describe('fortranToC', () => {
  it('transposes a 2x3 column-major array', () => {
    // Fortran order stores [[1, 2, 3], [4, 5, 6]] as 1 4 2 5 3 6.
    assert.deepEqual(Array.from(fortranToC(Float32Array.from([1, 4, 2, 5, 3, 6]), [2, 3])), [1, 2, 3, 4, 5, 6]);
  });

  it('matches the index formula for random shapes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }), (shape) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const f = Float32Array.from({ length: n }, (_, i) => i);
        const c = fortranToC(f, shape);
        // c[row-major index of (i0..ik)] = f[sum i_j * prod(shape[:j])]
        for (let idx = 0; idx < n; idx++) {
          let rem = idx;
          let fIndex = 0;
          const multi = shape.map(() => 0);
          for (let j = shape.length - 1; j >= 0; j--) {
            multi[j] = rem % shape[j];
            rem = Math.floor(rem / shape[j]);
          }
          for (let j = 0, s = 1; j < shape.length; j++) {
            fIndex += multi[j] * s;
            s *= shape[j];
          }
          if (c[idx] !== fIndex) return false;
        }
        return true;
      }),
      { seed: 7, numRuns: 100 },
    );
  });
});

describe('bad .npy files', () => {
  const bad = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(() => decodeNpy(bytes, 'x.npy'), (err: Error) => err instanceof InvalidDataError && pattern.test(err.message));

  it('rejects non-npy bytes, truncated data, unsupported dtypes and versions', () => {
    bad(new TextEncoder().encode('hello, this is not numpy'), /x\.npy is not a NumPy \.npy file/);
    const good = fixture('f4-c.npy');
    bad(good.subarray(0, good.length - 4), /truncated: shape \(2, 3, 4\) of float32 needs 96 data bytes but the file has 92/);
    bad(good.subarray(0, 40), /truncated inside the \.npy header/);
    bad(fixture('c8.npy'), /dtype '<c8'/);
    const v9 = Uint8Array.from(good);
    v9[6] = 9;
    bad(v9, /version 9\.0/);
  });
});
