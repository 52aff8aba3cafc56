/**
 * `haq sweep --config sweep.json [--out DIR] [--json]`: runs statemachines/sweep.asl.json on
 * this machine: one nested search per model x target x constraint, then every best policy
 * costed on every target (comparison.json, sweep.html in --out). A search that fails is a
 * row with its error class and message; the command then exits 1 and says how many failed.
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InvalidInputError, SearchFailedError } from '../../shared/errors';
import { comparisonCells, failureLine, type Comparison } from '../../functions/compare';
import { checkSweepSpec, runLocalSweep } from '../embedded/local';
import { checkOutDir, leaveOutDirOnFailure } from '../inputs';
import type { UpdateOutput } from '../../functions/lib/contracts';
import { action, formatTable, printJson } from '../output';

/** The comparison as the terminal table, failed rows with their error, and the failures' count. */
export function comparisonText(comparison: Comparison): string {
  const { body } = comparisonCells(comparison);
  const anyFailed = comparison.rows.some((r) => r.error);
  const head = ['model', 'constraint', 'searched for', 'top-1 %', ...comparison.targets.map((t) => `on ${t}`), ...(anyFailed ? ['error'] : [])];
  const rows = body.map((cells, i) => {
    const e = comparison.rows[i].error;
    return anyFailed ? [...cells, e ? `${e.name}: ${e.message}` : ''] : cells;
  });
  const failed = comparison.rows.filter((r) => r.error);
  return [
    formatTable(head, rows),
    'latency as a fraction of 8/8 on each target (* = the target the policy was searched for)',
    ...(failed.length ? [`${failed.length} of ${comparison.rows.length} searches failed:`, ...failed.map((r) => `  ${failureLine(r)}`)] : []),
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('sweep')
    .description('search every model x target x constraint of a sweep.json and compare the policies across targets')
    .requiredOption('--config <file>', 'sweep.json: {"models":[{"path","data"}],"targets":[...],"constraints":["latency:0.5"],"config":{...}}; paths relative to its folder')
    .option('--out <dir>', 'output folder', 'haq-sweep')
    .option('--json', 'print the comparison as JSON')
    .action(
      action(async (o: { config: string; out: string; json?: boolean }) => {
        let text: string;
        try {
          text = await readFile(o.config, 'utf8');
        } catch {
          throw new InvalidInputError(`--config ${o.config}: no such file; pass the path of a sweep.json`);
        }
        let spec: unknown;
        try {
          spec = JSON.parse(text);
        } catch (err) {
          throw new InvalidInputError(`--config ${o.config} is not valid JSON: ${(err as Error).message}`);
        }
        const what = `--config ${o.config}`;
        const baseDir = dirname(resolve(o.config));
        await checkOutDir(o.out);
        await checkSweepSpec(spec, baseDir, what);
        const onRound = (u: UpdateOutput) => {
          if (!o.json && u.done) process.stderr.write(`haq sweep: a search finished (${u.episodesDone} episodes, best top-1 ${u.bestTop1?.toFixed(2) ?? '-'} %)\n`);
        };
        const result = await leaveOutDirOnFailure(
          o.out,
          () => runLocalSweep({ spec: spec as never, baseDir, outDir: o.out, onRound, what }),
          (r) => r.outcome.status !== 'SUCCEEDED',
        );
        if (result.outcome.status !== 'SUCCEEDED') {
          const e = result.outcome.error;
          throw new SearchFailedError(`sweep failed: ${e?.name ?? 'Error'}: ${e?.cause ?? ''}`, { error: e });
        }
        const comparison = result.comparison as Comparison;
        if (o.json) printJson({ ...comparison, files: result.files });
        else process.stdout.write(`${comparisonText(comparison)}\nwrote ${result.files!.comparison}, ${result.files!.report}\n`);
        if (comparison.failed > 0) {
          throw new SearchFailedError(`${comparison.failed} of ${comparison.rows.length} searches of the sweep failed (each failed row names its error)`, {
            failed: comparison.failed,
            searches: comparison.rows.length,
          });
        }
      }),
    );
}
