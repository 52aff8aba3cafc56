import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { overSeeds } from '../../../bench/sections/search-quality';

describe('search-quality bench: a strategy figure over seeds', () => {
  const cases: Array<{ name: string; seeds: Array<{ value: number; se: number }>; value: number; se: number }> = [
    { name: 'one seed: that search figure with its own sampling error', seeds: [{ value: 88.1, se: 0.51 }], value: 88.1, se: 0.51 },
    {
      name: 'a deterministic strategy (the same figure every seed) keeps the sampling error, not 0',
      seeds: [{ value: 88.08, se: 0.5 }, { value: 88.08, se: 0.5 }, { value: 88.08, se: 0.5 }],
      value: 88.08,
      se: 0.5,
    },
    {
      // mean 87.5; sample SD 0.5 -> SE of the mean 0.5/sqrt(3); sampling 0.4; sqrt(0.25/3 + 0.16)
      name: 'spread over seeds and sampling error add in quadrature',
      seeds: [{ value: 87, se: 0.4 }, { value: 87.5, se: 0.4 }, { value: 88, se: 0.4 }],
      value: 87.5,
      se: Math.sqrt(0.25 / 3 + 0.16),
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const e = overSeeds(c.seeds);
      assert.ok(Math.abs(e.value - c.value) < 1e-9, `value ${e.value}`);
      assert.ok(Math.abs(e.se - c.se) < 1e-9, `se ${e.se} vs ${c.se}`);
    });
  }
});
