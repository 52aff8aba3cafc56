/**
 * The benchmark runner's logic, apart from its command line (bench/run.ts):
 * discover bench/sections/*.ts, run them in `order` (a failing or hanging section is
 * recorded as failed and the run continues), collect the machine facts, and render
 * the results as JSON and markdown.
 */
import { readdirSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { InvalidInputError } from '../shared/errors';
import type { BenchContext, BenchModule, BenchSection, BenchTable } from './types';

export interface MachineInfo {
  cpuCores: number;
  cpuModel: string;
  memoryBytes: number;
  nodeVersion: string;
  platform: string;
  arch: string;
  /** 1-minute load average when the run started (other jobs on a shared machine skew speeds). */
  loadAverage1m: number;
}

/** One section's outcome in results.json. Failed sections keep their file name as id. */
export interface SectionResult extends BenchSection {
  file: string;
  order: number;
  status: 'ok' | 'failed';
  error?: string;
  durationSeconds: number;
  /**
   * When the section started (ISO-8601; a bare date for sections measured before this was
   * recorded) and the 1-minute load average then: a joined results.json holds sections of
   * several runs, each with its own time and load.
   */
  startedAt?: string;
  loadAverage1m?: number;
}

export interface BenchResults {
  /** ISO-8601 time the run started. */
  date: string;
  quick: boolean;
  machine: MachineInfo;
  durationSeconds: number;
  sections: SectionResult[];
  /** How many runs were joined into these results (bench/merge.ts); absent for one run. */
  runs?: number;
}

export interface LoadedModule {
  file: string;
  module: BenchModule;
}

const cell = z.union([z.string(), z.number(), z.null()]);
const BenchTableSchema = z.object({
  title: z.string(),
  headers: z.array(z.string()),
  rows: z.array(z.array(cell)),
  note: z.string().optional(),
});
const BenchSectionSchema = z.object({
  id: z.string().min(1),
  title: z.string().min(1),
  figures: z.record(cell),
  tables: z.array(BenchTableSchema),
});

/** The 1-minute load average, to two decimals. */
export function loadAverage(): number {
  return Math.round(loadavg()[0] * 100) / 100;
}

export function machineInfo(): MachineInfo {
  const cores = cpus();
  return {
    cpuCores: cores.length,
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    nodeVersion: process.version,
    platform: process.platform,
    arch: process.arch,
    loadAverage1m: loadAverage(),
  };
}

/**
 * Imports every `*.ts` file in `dir` (sorted by name). A file that fails to import or does
 * not export `order: number` and `run()` comes back in `broken` with the reason, so the
 * report shows it as a failed section instead of silently dropping it.
 */
export async function loadSections(dir: string): Promise<{ loaded: LoadedModule[]; broken: Array<{ file: string; error: string }> }> {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).sort();
  const loaded: LoadedModule[] = [];
  const broken: Array<{ file: string; error: string }> = [];
  for (const file of files) {
    try {
      const mod = (await import(pathToFileURL(join(dir, file)).href)) as Partial<BenchModule> & { default?: Partial<BenchModule> };
      const candidate = typeof mod.run === 'function' ? mod : mod.default;
      if (!candidate || typeof candidate.run !== 'function' || typeof candidate.order !== 'number') {
        broken.push({ file, error: `${file} does not export \`order: number\` and \`run(ctx)\` (see bench/types.ts BenchModule)` });
        continue;
      }
      loaded.push({ file, module: candidate as BenchModule });
    } catch (err) {
      broken.push({ file, error: `import failed: ${errorText(err)}` });
    }
  }
  return { loaded, broken };
}

export interface RunOptions {
  quick: boolean;
  root: string;
  /** Scratch root; each section gets `<scratchRoot>/<file name without .ts>`. */
  makeScratch: (sectionFile: string) => string;
  log: (line: string) => void;
  /** A section still running after this long is recorded as failed (it is not awaited further). */
  sectionTimeoutMs: number;
  /** Monotonic clock in ms (injected so the tests do not depend on time). */
  now: () => number;
  /** Wall-clock time and load average at a section's start (recorded in its result). */
  wallClock?: () => Date;
  load?: () => number;
}

/** Runs the modules in ascending `order` (ties by file name), one after another. */
export async function runSections(modules: LoadedModule[], options: RunOptions): Promise<SectionResult[]> {
  const sorted = [...modules].sort((a, b) => a.module.order - b.module.order || a.file.localeCompare(b.file));
  const results: SectionResult[] = [];
  for (const { file, module } of sorted) {
    const name = basename(file, '.ts');
    const abort = new AbortController();
    const ctx: BenchContext = {
      quick: options.quick,
      root: options.root,
      scratch: options.makeScratch(file),
      log: (line) => options.log(`[${name}] ${line}`),
      signal: abort.signal,
    };
    const start = options.now();
    const when = { startedAt: (options.wallClock?.() ?? new Date()).toISOString(), loadAverage1m: options.load?.() ?? loadAverage() };
    try {
      const limitMs = options.quick ? options.sectionTimeoutMs : Math.max(options.sectionTimeoutMs, (module.timeoutSeconds ?? 0) * 1000);
      const section = BenchSectionSchema.parse(await withTimeout(module.run(ctx), limitMs, name, abort)) as BenchSection;
      results.push({ ...section, file, order: module.order, status: 'ok', durationSeconds: seconds(options.now() - start), ...when });
    } catch (err) {
      const error = err instanceof z.ZodError ? `returned an invalid section: ${err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` : errorText(err);
      options.log(`[${name}] FAILED: ${error}`);
      results.push({ ...failedSection(file, module.order, error, seconds(options.now() - start)), ...when });
    }
  }
  return results;
}

export function failedSection(file: string, order: number, error: string, durationSeconds = 0): SectionResult {
  const name = basename(file, '.ts');
  return { id: name, title: name, figures: {}, tables: [], file, order, status: 'failed', error, durationSeconds };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, name: string, abort: AbortController): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new Error(`${name} did not finish within ${Math.round(ms / 1000)} s (raise --section-timeout)`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message.split('\n')[0]}`;
  return String(err);
}

// ----------------------------------------------------------------------------- markdown

/** A number for a table cell: integers as they are, otherwise 3 significant digits (at least 1 decimal below 1000). */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(1);
  if (abs >= 10) return value.toFixed(2);
  if (abs >= 0.01) return value.toFixed(3);
  return value.toPrecision(3);
}

function formatCell(value: string | number | null): string {
  if (value === null) return '–';
  const text = typeof value === 'number' ? formatNumber(value) : value;
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function renderTable(table: BenchTable): string {
  const lines = [`**${table.title}**`, ''];
  lines.push(`| ${table.headers.map(formatCell).join(' | ')} |`);
  lines.push(`| ${table.headers.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
  for (const row of table.rows) lines.push(`| ${row.map(formatCell).join(' | ')} |`);
  if (table.note) lines.push('', `_${table.note}_`);
  return lines.join('\n');
}

/** The whole report: a machine line, then per section its figures and tables. */
export function renderMarkdown(results: BenchResults): string {
  const m = results.machine;
  const gib = (m.memoryBytes / 2 ** 30).toFixed(1);
  const failed = results.sections.filter((s) => s.status === 'failed');
  const days = [...new Set(results.sections.map((s) => (s.startedAt ?? results.date).slice(0, 10)))].sort();
  const when = days.length > 1 ? `${days[0]} to ${days[days.length - 1]}` : results.date.slice(0, 10);
  const out: string[] = [
    `Measured ${when} on ${m.cpuCores} CPU cores (${m.cpuModel}), ${gib} GiB memory, ` +
      `Node ${m.nodeVersion} (${m.platform}/${m.arch})` +
      (results.runs
        ? `${results.quick ? ', quick mode (`--quick`)' : ''}; ${results.sections.length} sections from ${results.runs} runs joined (bench/merge.ts), each saying when it ran`
        : `, load average ${formatNumber(m.loadAverage1m)} at start${results.quick ? ', quick mode (`--quick`)' : ''}; ${results.sections.length} sections in ${formatNumber(results.durationSeconds)} s`) +
      (failed.length ? `, ${failed.length} failed (${failed.map((s) => s.id).join(', ')})` : '') + '.',
  ];
  for (const section of results.sections) {
    out.push('', `#### ${section.title}`, '');
    if (section.status === 'failed') {
      out.push(`**Failed** after ${formatNumber(section.durationSeconds)} s: ${formatCell(section.error ?? 'unknown error')}`);
      continue;
    }
    const figures = Object.entries(section.figures);
    if (figures.length) {
      out.push('| figure | value |', '| --- | ---: |');
      for (const [key, value] of figures) out.push(`| ${formatCell(key)} | ${formatCell(value)} |`);
    }
    for (const table of section.tables) out.push('', renderTable(table));
    out.push('', `_Section \`${section.id}\` (${section.file}) took ${formatNumber(section.durationSeconds)} s${results.runs ? sectionStart(section) : ''}._`);
  }
  return out.join('\n') + '\n';
}

/** ", started <date> <time> UTC at load average <x>": as much as the section recorded. */
function sectionStart(section: SectionResult): string {
  if (!section.startedAt) return '';
  const time = section.startedAt.length > 10 ? ` ${section.startedAt.slice(11, 16)} UTC` : '';
  const load = section.loadAverage1m === undefined ? '' : ` at load average ${formatNumber(section.loadAverage1m)}`;
  return `, started ${section.startedAt.slice(0, 10)}${time}${load}`;
}

/** Replaces the text between the two markers (kept) with `content`; throws when a marker is missing. */
export function replaceMarkerBlock(text: string, content: string, start = '<!-- bench:start -->', end = '<!-- bench:end -->'): string {
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < 0 || j < i) {
    throw new InvalidInputError(`the text has no "${start}" ... "${end}" block; add both markers (in that order) where the results belong`);
  }
  return `${text.slice(0, i + start.length)}\n${content.trimEnd()}\n${text.slice(j)}`;
}

/**
 * Joins the results of bench runs: runs of one commit made side by side (a full bench split over
 * the machine's cores), or sections re-measured later into earlier results. Every section once,
 * in `order`, keeping when it started and the load then (a section recorded without them gets
 * its run's start and load); the earliest start and machine, the longest run's wall time.
 * Throws InvalidInputError when a section is in two runs or modes are mixed.
 */
export function joinResults(runs: Array<{ label: string; results: BenchResults }>): BenchResults {
  if (!runs.length) throw new InvalidInputError('no bench runs to join: pass folders that `npm run bench -- --out DIR` wrote');
  const seen = new Map<string, string>();
  for (const { label, results } of runs) {
    for (const s of results.sections) {
      const other = seen.get(s.id);
      if (other !== undefined) throw new InvalidInputError(`section ${s.id} is in both ${other} and ${label}: run each section in one of the runs`);
      seen.set(s.id, label);
    }
  }
  if (new Set(runs.map((r) => r.results.quick)).size > 1) throw new InvalidInputError('the runs mix --quick and full mode: join runs of one mode');
  const first = [...runs].sort((a, b) => a.results.date.localeCompare(b.results.date))[0].results;
  return {
    date: first.date,
    quick: first.quick,
    machine: first.machine,
    durationSeconds: Math.max(...runs.map((r) => r.results.durationSeconds)),
    sections: runs
      .flatMap(({ results: r }) => r.sections.map((s) => (s.startedAt ? s : { ...s, startedAt: r.date, loadAverage1m: r.machine.loadAverage1m })))
      .sort((a, b) => a.order - b.order),
    ...(runs.length > 1 || runs[0].results.runs ? { runs: runs.reduce((n, r) => n + (r.results.runs ?? 1), 0) } : {}),
  };
}
