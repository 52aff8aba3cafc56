/**
 * Static checks of the state machine files: valid ASL, every Next resolves within its scope,
 * every ${X} placeholder has a substitution (a function in infra/function-specs.ts whose
 * handler file exists, the search machine's ARN, or the Map states' MapConcurrency), every custom ErrorEquals names a real
 * error class, Task state names are unique (the embedded runner overrides by name), JSONPath only.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';
import * as errors from '../../shared/errors';
import { functionSpecs, substitutionName } from '../../infra/function-specs';
import { allStates, aslPath, functionFileOf, localSubstitutions, placeholders, substitute, type MachineName } from '../../cli/embedded/asl';

type AslValidator = (definition: unknown, options?: { checkArn?: boolean; checkPaths?: boolean }) => { isValid: boolean; errorsText: (separator?: string) => string };
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

const root = join(import.meta.dirname, '..', '..');
const machines: MachineName[] = ['search', 'sweep'];
const text = (m: MachineName) => readFileSync(aslPath(m), 'utf8');
const definition = (m: MachineName) => JSON.parse(substitute(text(m), localSubstitutions(text(m))));

/** Error names Step Functions and Lambda define themselves. */
const builtinErrors = new Set([
  'States.ALL',
  'States.TaskFailed',
  'States.Timeout',
  'States.Runtime',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
  'StepFunctions.SdkClientException',
  'StepFunctions.TooManyRequestsException',
]);

describe('state machine files', () => {
  for (const m of machines) {
    describe(`${m}.asl.json`, () => {
      it('is valid Amazon States Language (asl-validator, ARNs and paths checked)', () => {
        const { isValid, errorsText } = aslValidator(definition(m), { checkArn: true, checkPaths: true });
        assert.ok(isValid, errorsText('\n'));
      });

      it('uses JSONPath only (no JSONata)', () => {
        assert.ok(!/"QueryLanguage"\s*:\s*"JSONata"/.test(text(m)));
        assert.ok(!text(m).includes('{%'));
      });

      it('resolves every StartAt, Next, Default and Catch target within its scope', () => {
        const def = definition(m);
        const scopes = [def, ...allStates(def).flatMap(({ state }) => [...((state.Branches as unknown[]) ?? []), ...(state.ItemProcessor ? [state.ItemProcessor] : [])])];
        for (const scope of scopes as Array<{ StartAt: string; States: Record<string, Record<string, unknown>> }>) {
          assert.ok(scope.States[scope.StartAt], `StartAt ${scope.StartAt}`);
          for (const [name, s] of Object.entries(scope.States)) {
            const targets = [
              s.Next,
              s.Default,
              ...((s.Choices as Array<{ Next: string }>) ?? []).map((c) => c.Next),
              ...((s.Catch as Array<{ Next: string }>) ?? []).map((c) => c.Next),
            ].filter((t): t is string => typeof t === 'string');
            for (const t of targets) assert.ok(scope.States[t], `${name} -> ${t} does not resolve`);
            const terminal = s.End === true || s.Type === 'Succeed' || s.Type === 'Fail' || s.Type === 'Choice';
            assert.ok(terminal || typeof s.Next === 'string', `${name} has neither Next nor End`);
          }
        }
      });

      it('has a substitution for every ${placeholder}', () => {
        const ids = new Set(functionSpecs.map((s) => substitutionName(s)));
        for (const p of placeholders(text(m))) {
          if (p === 'SearchStateMachineArn' || p === 'MapConcurrency') continue;
          assert.ok(ids.has(p), `\${${p}} has no function in infra/function-specs.ts`);
          const file = functionFileOf(p)!;
          assert.ok(existsSync(join(root, 'functions', `${file}.ts`)), `functions/${file}.ts missing for \${${p}}`);
          const spec = functionSpecs.find((s) => substitutionName(s) === p)!;
          assert.equal(spec.entry, `functions/${file}.ts`);
        }
      });

      it('names only real error classes in Retry and Catch', () => {
        const names = new Set<string>(errors.domainErrorNames);
        for (const { name, state } of allStates(definition(m))) {
          for (const rule of [...((state.Retry as Array<{ ErrorEquals: string[] }>) ?? []), ...((state.Catch as Array<{ ErrorEquals: string[] }>) ?? [])]) {
            for (const e of rule.ErrorEquals) {
              if (builtinErrors.has(e)) continue;
              assert.ok(names.has(e), `${name}: ErrorEquals "${e}" is not in domainErrorNames`);
              const cls = (errors as Record<string, unknown>)[e] as { prototype: Error } | undefined;
              assert.ok(typeof cls === 'function', `${e} is not an exported class of shared/errors.ts`);
            }
          }
          const catches = (state.Catch as Array<{ ErrorEquals: string[] }>) ?? [];
          if (catches.length) assert.deepEqual(catches.at(-1)!.ErrorEquals, ['States.ALL'], `${name}: States.ALL must be the last Catch`);
        }
      });

      it('has unique state names across nested scopes', () => {
        const names = allStates(definition(m)).map((s) => s.name);
        assert.equal(new Set(names).size, names.length);
      });
    });
  }

  it('search: every Lambda task retries the transient Lambda errors and the top-level ones catch into RecordFailure', () => {
    const def = definition('search');
    for (const { name, state } of allStates(def)) {
      if (state.Type !== 'Task' || !String(state.Resource).includes(':function:')) continue;
      const retried = ((state.Retry as Array<{ ErrorEquals: string[] }>) ?? []).flatMap((r) => r.ErrorEquals);
      for (const e of ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException', 'TransientError']) {
        assert.ok(retried.includes(e), `${name} does not retry ${e}`);
      }
    }
    for (const [name, s] of Object.entries(def.States as Record<string, Record<string, unknown>>)) {
      if (!['Task', 'Map', 'Parallel'].includes(String(s.Type)) || name === 'RecordFailure') continue;
      const catches = (s.Catch as Array<{ Next: string }>) ?? [];
      assert.ok(catches.length > 0 && catches.every((c) => c.Next === 'RecordFailure'), `${name} must catch into RecordFailure`);
    }
  });
});
