import assert from 'node:assert/strict';

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

/**
 * NaN-aware closeness check: |a - e| <= atol + rtol * |e| element-wise, NaN only equal to NaN.
 * Names the first failing index and both values.
 */
export function expectClose(
  actual: number | ArrayLike<number>,
  expected: number | ArrayLike<number>,
  { atol = 1e-6, rtol = 1e-5 }: Tolerance = {},
  what = 'value',
): void {
  const a = typeof actual === 'number' ? [actual] : Array.from(actual);
  const e = typeof expected === 'number' ? [expected] : Array.from(expected);
  assert.equal(a.length, e.length, `${what}: length ${a.length} != expected ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(e[i]) || Number.isNaN(a[i])) {
      assert.ok(Number.isNaN(e[i]) && Number.isNaN(a[i]), `${what}[${i}]: ${a[i]} vs expected ${e[i]}`);
      continue;
    }
    const tol = atol + rtol * Math.abs(e[i]);
    assert.ok(Math.abs(a[i] - e[i]) <= tol, `${what}[${i}]: ${a[i]} differs from expected ${e[i]} by more than ${tol}`);
  }
}
