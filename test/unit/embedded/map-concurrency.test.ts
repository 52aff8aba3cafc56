/**
 * Map iterations at once: every Map state of the search machine takes its MaxConcurrency from
 * `${MapConcurrency}` (16 on AWS, infra/config.ts; localMapConcurrency = 2 in the embedded runner
 * and on LocalStack, where the functions share one machine), substituted as a number.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { allStates, aslPath, loadDefinition, localMapConcurrency, localSubstitutions, substitute } from '../../../cli/embedded/asl';
import { DeployConfig } from '../../../infra/config';

const maps = (definition: { States: Record<string, unknown> }) => allStates(definition).filter((s) => s.state.Type === 'Map');

describe('search Map states: iterations at once from ${MapConcurrency}', () => {
  const text = readFileSync(aslPath('search'), 'utf8');

  it('every Map state of the search file has MaxConcurrency ${MapConcurrency}, unquoted', () => {
    const mapStates = text.match(/"Type": "Map"/g) ?? [];
    assert.equal(mapStates.length, 3, 'EvaluatePolicies, EvaluateShards, SelectCandidates');
    assert.equal(text.match(/"MaxConcurrency": \$\{MapConcurrency\},/g)?.length, mapStates.length);
  });

  const cases = [
    { name: `the embedded runner's default (${localMapConcurrency})`, definition: () => loadDefinition('search'), want: localMapConcurrency },
    { name: 'a runner option (5)', definition: () => loadDefinition('search', 5), want: 5 },
    { name: `AWS's default (${DeployConfig.parse({}).mapConcurrency})`, definition: () => JSON.parse(substitute(text, localSubstitutions(text, DeployConfig.parse({}).mapConcurrency))), want: 16 },
  ];
  for (const c of cases) {
    it(`${c.name}: every Map state gets the number`, () => {
      const found = maps(c.definition());
      assert.equal(found.length, 3);
      for (const m of found) assert.equal(m.state.MaxConcurrency, c.want, m.name);
    });
  }

  it('the sweep machine keeps its own RunSearches MaxConcurrency (4)', () => {
    assert.deepEqual(
      maps(loadDefinition('sweep')).map((m) => [m.name, m.state.MaxConcurrency]),
      [['RunSearches', 4]],
    );
  });
});
