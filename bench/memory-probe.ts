/**
 * Peak memory of a search and of each Lambda handler, each in a process of its own (as Lambda
 * runs each function), for the bench's real-size section. Prints one JSON line on stdout.
 *
 *   node --import tsx bench/memory-probe.ts search <spec.json>
 *     runs a local search (spec: {modelPath, dataDir, outDir, config}); reports the process's
 *     peak RSS, the wall time, seconds per episode, and writes <outDir>/task-inputs.json: the
 *     last input of every state (Prepare, Evaluate, Act, ...) with its function name
 *   node --import tsx bench/memory-probe.ts handler <fn> <input.json> <haq-root>
 *     runs one handler (fresh process, filesystem stores under <haq-root>) on a recorded input
 *     and reports its peak RSS and wall time: what a cold Lambda of that function needs for it.
 *     Handlers are idempotent, so replaying an input rewrites the same objects; Prepare's replay
 *     first drops the stored recovered weights, so it computes them as the first search of a
 *     model does.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { localHandlers, localStores } from '../cli/embedded/handlers';
import { runLocalSearch, type LocalSearchOptions } from '../cli/embedded/local';

const run = promisify(execFile);
const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB on Linux

async function search(specFile: string): Promise<Record<string, unknown>> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as Pick<LocalSearchOptions, 'modelPath' | 'dataDir' | 'outDir' | 'config'>;
  const inputs: Record<string, { fn: string; input: unknown; ms: number }> = {};
  const acts: number[] = [];
  let lastUpdateEnd = 0;
  const t0 = performance.now();
  const result = await runLocalSearch({
    ...spec,
    onTask: (e) => {
      if (e.error) return;
      inputs[e.state] = { fn: e.fn, input: e.input, ms: e.ms };
      if (e.fn === 'act') acts.push(e.startMs);
      if (e.fn === 'update') lastUpdateEnd = e.startMs + e.ms;
    },
  });
  if (result.outcome.status !== 'SUCCEEDED') throw new Error(`search failed: ${JSON.stringify(result.outcome.error)}`);
  writeFileSync(join(spec.outDir, 'task-inputs.json'), JSON.stringify(inputs));
  const episodes = Number(spec.config.episodes ?? acts.length);
  return {
    mode: 'search',
    seconds: (performance.now() - t0) / 1000,
    secondsPerEpisode: acts.length ? (lastUpdateEnd - acts[0]) / 1000 / episodes : null,
    taskSeconds: Object.fromEntries(Object.entries(inputs).map(([state, v]) => [state, v.ms / 1000])),
    peakRssMb: peakRssMb(),
    haqRoot: join(spec.outDir, '.haq'),
  };
}

async function handler(fn: string, inputFile: string, root: string): Promise<Record<string, unknown>> {
  const input = JSON.parse(readFileSync(inputFile, 'utf8'));
  if (fn === 'prepare') rmSync(join(root, 'work', 'cache', 'recovery'), { recursive: true, force: true });
  const { handlers, close } = localHandlers(localStores(root));
  const run = handlers[fn as keyof typeof handlers];
  if (!run) throw new Error(`no handler ${fn}`);
  const t0 = performance.now();
  try {
    await run(input);
  } finally {
    await close();
  }
  return { mode: 'handler', fn, seconds: (performance.now() - t0) / 1000, peakRssMb: peakRssMb() };
}

/** Runs this script in a child process (node --import tsx) and parses its JSON line. */
export async function probe(args: string[], cwd: string): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], { cwd, maxBuffer: 64 * 2 ** 20 }).catch((err: Error & { stderr?: string }) => {
    throw new Error(`memory-probe ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim().split('\n').slice(-3).join(' ')}`);
  });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

export interface SearchProbe {
  seconds: number;
  secondsPerEpisode: number | null;
  peakRssMb: number;
  /** Peak RSS per Lambda function kind (its heaviest recorded input replayed in a fresh process). */
  handlerPeakRssMb: Record<string, number>;
  /** Wall seconds of that replay per function kind (the longest of its states). */
  handlerSeconds: Record<string, number>;
}

/**
 * A search in a child process, then the recorded states' inputs replayed per handler in fresh
 * processes: every state (`'all'`), the last state of each function (`'last-per-function'`, a
 * check that each replays, not of the heaviest input), or none (`false`).
 */
export async function probeSearch(
  spec: Pick<LocalSearchOptions, 'modelPath' | 'dataDir' | 'outDir' | 'config'>,
  cwd: string,
  withHandlers: 'all' | 'last-per-function' | false,
): Promise<SearchProbe> {
  mkdirSync(spec.outDir, { recursive: true });
  const specFile = join(spec.outDir, 'probe-spec.json');
  writeFileSync(specFile, JSON.stringify(spec));
  const s = await probe(['search', specFile], cwd);
  const handlerPeakRssMb: Record<string, number> = {};
  const handlerSeconds: Record<string, number> = {};
  if (withHandlers) {
    const inputs = JSON.parse(readFileSync(join(spec.outDir, 'task-inputs.json'), 'utf8')) as Record<string, { fn: string; input: unknown }>;
    let states = Object.entries(inputs);
    if (withHandlers === 'last-per-function') states = [...new Map(states.map(([state, v]) => [v.fn, [state, v] as [string, typeof v]])).values()];
    for (const [state, { fn, input }] of states) {
      const file = join(spec.outDir, `input-${state}.json`);
      writeFileSync(file, JSON.stringify(input));
      const h = await probe(['handler', fn, file, String(s.haqRoot)], cwd);
      handlerPeakRssMb[fn] = Math.max(handlerPeakRssMb[fn] ?? 0, Number(h.peakRssMb));
      handlerSeconds[fn] = Math.max(handlerSeconds[fn] ?? 0, Number(h.seconds));
    }
  }
  return { seconds: Number(s.seconds), secondsPerEpisode: s.secondsPerEpisode as number | null, peakRssMb: Number(s.peakRssMb), handlerPeakRssMb, handlerSeconds };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [mode, ...args] = process.argv.slice(2);
  const work = mode === 'search' ? search(args[0]) : mode === 'handler' ? handler(args[0], args[1], args[2]) : Promise.reject(new Error(`usage: memory-probe search <spec.json> | handler <fn> <input.json> <haq-root>`));
  work
    .then((out) => {
      process.stdout.write(`${JSON.stringify(out)}\n`);
      process.exit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
