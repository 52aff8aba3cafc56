/**
 * Reading the state machine files: placeholder substitution (what CDK's
 * DefinitionSubstitutions does) and a walk over every state, nested ones included.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type MachineName = 'search' | 'sweep';

export const statemachinesDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'statemachines');

export const aslPath = (name: MachineName): string => join(statemachinesDir, `${name}.asl.json`);

/** Every `${Name}` placeholder in a definition text. */
export function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]))].sort();
}

/** Replaces every `${Name}`; a placeholder without a value is an error naming it. */
export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`no substitution for \${${name}} in the state machine definition`);
    return v;
  });
}

/** Handler file for a `${XxxFunctionArn}` placeholder: `RecordFailureFunctionArn` -> `record-failure`. */
export function functionFileOf(placeholder: string): string | null {
  const m = /^(.+)FunctionArn$/.exec(placeholder);
  if (!m) return null;
  return m[1].replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** The local ARN the embedded runner substitutes for a function; the handler file is its last part. */
export const localFunctionArn = (file: string): string => `arn:aws:lambda:local-1:000000000000:function:haq-${file}`;
export const localMachineArn = (name: MachineName): string => `arn:aws:states:local-1:000000000000:stateMachine:haq-${name}`;

/**
 * Iterations of each search Map state at once on this machine (`${MapConcurrency}`; 16 on AWS,
 * infra/config.ts). On AWS each iteration is a Lambda of its own; here they share one process
 * (the embedded runner) or one machine (LocalStack), where onnxruntime's run holds the CPU, so
 * more at once add no speed, only memory: a 640x640 detector's final choice at 16 held about 18 GB.
 */
export const localMapConcurrency = 2;

/** Substitutions for running a file locally: every function placeholder -> its local ARN, `${MapConcurrency}` -> `mapConcurrency`. */
export function localSubstitutions(text: string, mapConcurrency = localMapConcurrency): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of placeholders(text)) {
    const file = functionFileOf(p);
    if (file) out[p] = localFunctionArn(file);
    else if (p === 'SearchStateMachineArn') out[p] = localMachineArn('search');
    else if (p === 'SweepStateMachineArn') out[p] = localMachineArn('sweep');
    else if (p === 'MapConcurrency') out[p] = String(mapConcurrency);
  }
  return out;
}

export interface StateRef {
  name: string;
  state: Record<string, unknown>;
  /** The States object it belongs to (for resolving Next). */
  scope: Record<string, unknown>;
}

/** Every state, depth first, through Parallel branches and Map processors. */
export function allStates(definition: { States: Record<string, unknown> }): StateRef[] {
  const out: StateRef[] = [];
  const walk = (machine: { States: Record<string, unknown> }) => {
    for (const [name, s] of Object.entries(machine.States)) {
      const state = s as Record<string, unknown>;
      out.push({ name, state, scope: machine.States });
      for (const b of (state.Branches as Array<{ States: Record<string, unknown> }> | undefined) ?? []) walk(b);
      const proc = (state.ItemProcessor ?? state.Iterator) as { States: Record<string, unknown> } | undefined;
      if (proc) walk(proc);
    }
  };
  walk(definition);
  return out;
}

/** A state machine file with its local substitutions, parsed. */
export function loadDefinition(name: MachineName, mapConcurrency = localMapConcurrency): Record<string, unknown> & { States: Record<string, unknown> } {
  const text = readFileSync(aslPath(name), 'utf8');
  return JSON.parse(substitute(text, localSubstitutions(text, mapConcurrency)));
}
