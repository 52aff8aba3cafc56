import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allStates, loadDefinition } from '../../../cli/embedded/asl';
import { capMapConcurrency } from '../../../cli/embedded/runner';

const maps = (definition: { States: Record<string, unknown> }) => allStates(definition).filter((s) => s.state.Type === 'Map');

describe('embedded runner: Map iterations at once in one process', () => {
  it('the search machine has Map states that ask for more than 2 at once on AWS', () => {
    const definition = loadDefinition('search');
    assert.ok(maps(definition).some((m) => Number(m.state.MaxConcurrency) > 2));
  });

  const cases: Array<{ name: string; before: number | undefined; cap: number; after: number }> = [
    { name: 'above the cap: lowered to it', before: 16, cap: 2, after: 2 },
    { name: 'below the cap: kept', before: 1, cap: 2, after: 1 },
    { name: '0 (unlimited in ASL): the cap', before: 0, cap: 3, after: 3 },
    { name: 'absent (unlimited): the cap', before: undefined, cap: 2, after: 2 },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const definition = { States: { M: { Type: 'Map', ...(c.before === undefined ? {} : { MaxConcurrency: c.before }), ItemProcessor: { States: { Inner: { Type: 'Map', MaxConcurrency: c.before ?? 0 } } } } } };
      capMapConcurrency(definition, c.cap);
      for (const m of maps(definition)) assert.equal(m.state.MaxConcurrency, c.after, m.name);
    });
  }

  it('every Map of the real search definition ends at most at the cap, nothing else changed', () => {
    const definition = loadDefinition('search');
    const before = JSON.parse(JSON.stringify(definition));
    capMapConcurrency(definition, 2);
    for (const m of maps(definition)) assert.ok(Number(m.state.MaxConcurrency) >= 1 && Number(m.state.MaxConcurrency) <= 2, m.name);
    for (const m of maps(before)) m.state.MaxConcurrency = Math.min(Number(m.state.MaxConcurrency) || 2, 2);
    assert.deepEqual(definition, before);
  });
});
