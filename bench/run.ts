/**
 * `npm run bench [-- --quick] [--only id,id] [--out dir] [--section-timeout s]`
 *
 * Imports every bench/sections/*.ts, runs them in `order`, writes <out>/results.json and
 * <out>/results.md (default out: bench/) and prints the markdown. A section that throws,
 * returns an invalid result or exceeds the timeout is reported as failed and the run goes
 * on; the exit code is 1 when any section failed. Progress lines go to stderr.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { loadSections, failedSection, machineInfo, renderMarkdown, runSections, type BenchResults } from './framework';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = resolve(benchDir, '..');

interface Options {
  quick: boolean;
  only?: string;
  out: string;
  sectionTimeout: string;
}

const program = new Command('bench')
  .description('run the haq benchmarks and write results.json / results.md')
  .option('--quick', 'fewer repeats, models and seeds: the whole run in under a minute', false)
  .option('--only <names>', 'comma-separated section file names (without .ts) to run, e.g. zoo-throughput,evaluation')
  .option('--out <dir>', 'where results.json and results.md go', benchDir)
  .option('--section-timeout <seconds>', 'a section still running after this is recorded as failed', '')
  .parse();

const options = program.opts<Options>();
const quick = options.quick;
const timeoutSeconds = options.sectionTimeout ? Number(options.sectionTimeout) : quick ? 120 : 1800;
if (!(timeoutSeconds > 0)) {
  console.error(`--section-timeout must be a positive number of seconds, got "${options.sectionTimeout}"`);
  process.exit(2);
}

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};
const startedAt = new Date();
const scratchRoot = join(root, 'bench', 'out', 'scratch');
rmSync(scratchRoot, { recursive: true, force: true });

const { loaded, broken } = await loadSections(join(benchDir, 'sections'));
const only = options.only?.split(',').map((s) => s.trim()).filter(Boolean);
if (only) {
  const known = new Set([...loaded.map((m) => basename(m.file, '.ts')), ...broken.map((b) => basename(b.file, '.ts'))]);
  const unknown = only.filter((name) => !known.has(name));
  if (unknown.length) {
    console.error(`--only names unknown sections: ${unknown.join(', ')}; available: ${[...known].sort().join(', ')}`);
    process.exit(2);
  }
}
const selected = (file: string): boolean => !only || only.includes(basename(file, '.ts'));

log(`bench: ${loaded.filter((m) => selected(m.file)).length} sections${quick ? ' (quick)' : ''}`);
const t0 = performance.now();
const sections = await runSections(
  loaded.filter((m) => selected(m.file)),
  {
    quick,
    root,
    makeScratch: (file) => {
      const dir = join(scratchRoot, basename(file, '.ts'));
      mkdirSync(dir, { recursive: true });
      return dir;
    },
    log,
    sectionTimeoutMs: timeoutSeconds * 1000,
    now: () => performance.now(),
  },
);
for (const b of broken.filter((x) => selected(x.file))) sections.push(failedSection(b.file, Number.POSITIVE_INFINITY, b.error));

const results: BenchResults = {
  date: startedAt.toISOString(),
  quick,
  machine: machineInfo(),
  durationSeconds: Math.round(performance.now() - t0) / 1000,
  sections,
};
const markdown = renderMarkdown(results);
mkdirSync(options.out, { recursive: true });
writeFileSync(join(options.out, 'results.json'), JSON.stringify(results, (_, v) => (v === Number.POSITIVE_INFINITY ? null : v), 2) + '\n');
writeFileSync(join(options.out, 'results.md'), markdown);
process.stdout.write(markdown);
const failed = sections.filter((s) => s.status === 'failed');
log(`bench: wrote ${join(options.out, 'results.json')} and results.md; ${failed.length ? `${failed.length} FAILED: ${failed.map((s) => s.id).join(', ')}` : 'all sections ok'}`);
// Exit explicitly: a timed-out section may still hold the event loop open.
process.exit(failed.length ? 1 : 0);
