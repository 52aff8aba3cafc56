/**
 * Puts the latest benchmark table into README.md:
 *
 *   npx tsx scripts/update-readme-bench.ts [bench/results.md] [README.md]
 *
 * Replaces the text between `<!-- bench:start -->` and `<!-- bench:end -->` in the README with
 * the contents of results.md (written by `npm run bench`). Fails with a clear message when the
 * markers or the results file are missing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { replaceMarkerBlock } from '../bench/framework';

const root = resolve(import.meta.dirname, '..');
const resultsPath = resolve(process.argv[2] ?? join(root, 'bench', 'results.md'));
const readmePath = resolve(process.argv[3] ?? join(root, 'README.md'));
if (!existsSync(resultsPath)) {
  console.error(`${resultsPath} does not exist: run \`npm run bench\` (or \`npm run bench -- --quick\`) first`);
  process.exit(1);
}
try {
  const updated = replaceMarkerBlock(readFileSync(readmePath, 'utf8'), readFileSync(resultsPath, 'utf8'));
  writeFileSync(readmePath, updated);
  console.log(`updated the bench block of ${readmePath} from ${resultsPath}`);
} catch (err) {
  console.error(`${readmePath}: ${(err as Error).message}`);
  process.exit(1);
}
