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
import { SweepSpec, type Comparison } from '../../functions/compare';
import { parse } from '../../shared/validate';
import { awsClientSettings } from '../aws-clients';
import { comparisonText } from '../sweep-table';
import { checkSweepSpec, runLocalSweep } from '../embedded/local';
import { checkOutDir, leaveOutDirOnFailure } from '../inputs';
import type { UpdateOutput } from '../../functions/lib/contracts';
import { action, printJson } from '../output';

/**
 * `--deployed`: the config goes to the models bucket at the schedule's key (Compare's plan
 * step reads it at each run); `--now` also starts the sweep machine with the input the
 * schedule gives it (infra/constructs/triggers.ts).
 */
async function storeDeployedSweep(spec: unknown, what: string, o: { key: string; now?: boolean; stack?: string; json?: boolean }): Promise<void> {
  const parsed = parse(SweepSpec, spec, what);
  const { cliS3Store, stackOutputs, withAwsHints } = await import('./policies');
  if (!/^[^/].*\.json$/.test(o.key)) throw new InvalidInputError(`--key ${o.key} must be an object key ending in .json, e.g. sweeps/default.json`);
  const outputs = await stackOutputs(o.stack);
  const bucket = outputs.ModelsBucketName;
  const store = cliS3Store(bucket);
  const missing: string[] = [];
  for (const m of parsed.models) if (!(await withAwsHints(bucket, () => store.exists(m.modelKey)))) missing.push(`${m.name} (${m.modelKey})`);
  if (missing.length) {
    throw new InvalidInputError(`${what}: the models bucket has no ${missing.join(', ')}; upload each with \`haq upload MODEL --data DIR --name NAME\` first`, { missing });
  }
  await withAwsHints(bucket, () => store.put(o.key, `${JSON.stringify(spec, null, 2)}\n`, { contentType: 'application/json' }));
  let executionArn: string | undefined;
  if (o.now) {
    const { SFNClient, StartExecutionCommand } = await import('@aws-sdk/client-sfn');
    const sfn = new SFNClient(awsClientSettings());
    const id = `manual-${Date.now().toString(36)}`;
    const input = { id, source: 'schedule', configKey: o.key, scheduledTime: new Date().toISOString() };
    try {
      ({ executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn: outputs.SweepStateMachineArn, name: id, input: JSON.stringify(input) })));
    } finally {
      sfn.destroy();
    }
  }
  if (o.json) return printJson({ bucket, key: o.key, executionArn: executionArn ?? null });
  process.stdout.write(
    `stored s3://${bucket}/${o.key}: the sweep schedule reads it at its next run` +
      `${executionArn ? `; started one now (${executionArn})` : ''}; results: npx haq policies sweeps\n`,
  );
}

export function register(program: Command): void {
  program
    .command('sweep')
    .description('search every model x target x constraint of a sweep.json and compare the policies across targets')
    .requiredOption('--config <file>', 'sweep.json: {"models":[{"path","data"}],"targets":[...],"constraints":["latency:0.5"],"config":{...}}; paths relative to its folder')
    .option('--out <dir>', 'output folder', 'haq-sweep')
    .option('--deployed', 'instead of running here: store the config where the deployed stack\'s sweep schedule reads it (models must be names uploaded with haq upload)')
    .option('--key <key>', 'with --deployed: the key the schedule reads (sweepConfigKey)', 'sweeps/default.json')
    .option('--now', 'with --deployed: also start the sweep now, with the schedule\'s input')
    .option('--stack <name>', 'with --deployed: the CloudFormation stack (default: $HAQ_STACK or Haq)')
    .option('--json', 'print the comparison as JSON')
    .action(
      action(async (o: { config: string; out: string; deployed?: boolean; key: string; now?: boolean; stack?: string; json?: boolean }) => {
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
        if (o.deployed) return storeDeployedSweep(spec, what, o);
        if (o.now) throw new InvalidInputError('--now starts a deployed sweep: add --deployed (without it the sweep runs here)');
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
