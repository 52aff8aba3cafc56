/**
 * `haq sweep --config sweep.json [--out DIR] [--json]`: runs statemachines/sweep.asl.json on
 * this machine: one nested search per model x target x constraint, then every best policy
 * costed on every target (comparison.json, sweep.html in --out).
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InvalidInputError } from '../../shared/errors';
import type { ComparisonRow } from '../../functions/compare';
import { runLocalSweep } from '../embedded/local';
import type { UpdateOutput } from '../../functions/lib/contracts';
import { action, formatTable, printJson } from '../output';

export function register(program: Command): void {
  program
    .command('sweep')
    .description('search every model x target x constraint of a sweep.json and compare the policies across targets')
    .requiredOption('--config <file>', 'sweep.json: {"models":[{"path","data"}],"targets":[...],"constraints":["latency:0.5"],"config":{...}}')
    .option('--out <dir>', 'output folder', 'haq-sweep')
    .option('--json', 'print the comparison as JSON')
    .action(
      action(async (o: { config: string; out: string; json?: boolean }) => {
        let text: string;
        try {
          text = await readFile(o.config, 'utf8');
        } catch {
          throw new InvalidInputError(`--config ${o.config}: no such file`);
        }
        let spec: unknown;
        try {
          spec = JSON.parse(text);
        } catch (err) {
          throw new InvalidInputError(`${o.config} is not valid JSON: ${(err as Error).message}`);
        }
        if (!spec || typeof spec !== 'object' || !Array.isArray((spec as { models?: unknown }).models)) {
          throw new InvalidInputError(`${o.config}: "models" must be a list of {"path": "model.onnx", "data": "dir"} or model names`);
        }
        let rounds = 0;
        const onRound = (u: UpdateOutput) => {
          rounds++;
          if (!o.json && u.done) process.stderr.write(`haq sweep: a search finished (${u.episodesDone} episodes, best top-1 ${u.bestTop1?.toFixed(2) ?? '-'} %)\n`);
        };
        const result = await runLocalSweep({ spec: spec as never, baseDir: dirname(resolve(o.config)), outDir: o.out, onRound });
        if (result.outcome.status !== 'SUCCEEDED') {
          const e = result.outcome.error;
          throw new InvalidInputError(`sweep failed: ${e?.name ?? 'Error'}: ${e?.cause ?? ''}`, { error: e, rounds });
        }
        const comparison = result.comparison as { sweepId: string; targets: string[]; rows: ComparisonRow[] };
        if (o.json) {
          printJson({ ...comparison, files: result.files });
          return;
        }
        const rows = comparison.rows.map((r) => [
          r.model,
          r.constraint,
          r.specialisedFor,
          r.top1 === null ? r.state : r.top1.toFixed(2),
          ...comparison.targets.map((t) => {
            const c = r.runOn.find((x) => x.target === t);
            return c ? `${c.latencyRatio.toFixed(3)}${t === r.specialisedFor ? '*' : ''}` : '-';
          }),
        ]);
        process.stdout.write(
          `${formatTable(['model', 'constraint', 'searched for', 'top-1 %', ...comparison.targets.map((t) => `on ${t}`)], rows)}\n` +
            `latency as a fraction of 8/8 on each target (* = the target the policy was searched for)\n` +
            `wrote ${result.files!.comparison}, ${result.files!.report}\n`,
        );
      }),
    );
}
