/**
 * `npx tsx bench/merge.ts --out bench <run-dir> [<run-dir> ...]`
 *
 * Joins `npm run bench -- --only ... --out <run-dir>` runs of one commit made side by side (a
 * full bench split over the machine's cores) into one results.json / results.md. Each section
 * keeps its own figures and timings, so every ratio is still measured within one run.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { joinResults, renderMarkdown, type BenchResults } from './framework';

const program = new Command('bench-merge')
  .description('join bench runs made side by side into one results.json / results.md')
  .requiredOption('--out <dir>', 'where the joined results.json and results.md go')
  .argument('<runs...>', 'folders holding a results.json each')
  .parse();

try {
  const runs = program.args.map((label) => ({ label, results: JSON.parse(readFileSync(join(label, 'results.json'), 'utf8')) as BenchResults }));
  const joined = joinResults(runs);
  const { out } = program.opts<{ out: string }>();
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'results.json'), JSON.stringify(joined, null, 2) + '\n');
  writeFileSync(join(out, 'results.md'), renderMarkdown(joined));
  console.log(`joined ${runs.length} runs (${joined.sections.length} sections) into ${join(out, 'results.json')} and results.md`);
} catch (err) {
  console.error(`bench-merge: ${(err as Error).message}`);
  process.exit(2);
}
