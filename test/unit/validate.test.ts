/** One-line validation messages: each bad field named once, no prefix for the value as a whole. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ConstraintSpec } from '../../shared/quant/policy';
import { parse } from '../../shared/validate';

describe('parse', () => {
  const config = z.object({ constraint: ConstraintSpec, episodes: z.number().int().positive() });
  const sweep = z.object({ constraints: z.array(ConstraintSpec) });
  const cases: Array<[string, z.ZodTypeAny, unknown, string]> = [
    ['a field', config, { constraint: 'latency:0.5', episodes: 0 }, 'search.json: episodes: Number must be greater than 0'],
    ['a message that names its field', config, { constraint: 'latency:1.5', episodes: 4 }, 'search.json: constraint "latency:1.5": the ratio must be > 0 and <= 1 (a fraction of the 8-bit cost)'],
    ['the same message inside a list', sweep, { constraints: ['latency:0.5', 'latency:1.5'] }, 'search.json: constraints.1: constraint "latency:1.5": the ratio must be > 0 and <= 1 (a fraction of the 8-bit cost)'],
    ['the value as a whole', ConstraintSpec, 'speed:0.5', 'search.json: '],
    ['not an object', config, [1, 2], 'search.json: Expected object, received array'],
  ];
  for (const [what, schema, value, start] of cases) {
    it(`names ${what} once`, () => {
      assert.throws(
        () => parse(schema, value, 'search.json'),
        (err: Error) => err.name === 'InvalidInputError' && err.message.startsWith(start) && !err.message.includes('(root)') && !/constraint: constraint/.test(err.message),
      );
    });
  }
});
