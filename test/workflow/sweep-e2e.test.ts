/**
 * The real statemachines/sweep.asl.json in the embedded runner: one model x two targets x
 * one constraint, nested search executions (startExecution.sync:2), then the cross-target
 * comparison (each best policy costed on every target).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runLocalSweep } from '../../cli/embedded/local';
import type { Comparison, ComparisonRow } from '../../functions/compare';
import { resultKeys } from '../../shared/keys';
import { tempDir } from '../helpers/tmp';

const root = join(import.meta.dirname, '..', '..');

describe('sweep state machine, embedded, end to end', () => {
  const tmp = tempDir('haq-sweep');
  after(() => tmp.cleanup());

  it('searches each target and costs every best policy on every target', async () => {
    const result = await runLocalSweep({
      spec: {
        sweepId: 'test-sweep',
        models: [{ path: 'models/zoo/fmnist-cnn/model.onnx', data: 'models/zoo/data' }] as never,
        targets: ['bismo-edge', 'bismo-cloud'],
        constraints: ['latency:0.6'],
        config: { episodes: 2, warmupEpisodes: 2, evalSamples: 100, calibSamples: 64, seed: 3 },
      },
      baseDir: root,
      outDir: tmp.dir,
      retryDelayMs: 0,
    });
    assert.equal(result.outcome.status, 'SUCCEEDED', JSON.stringify(result.outcome.error));
    const comparison = result.comparison as { targets: string[]; rows: ComparisonRow[] };
    assert.deepEqual(comparison.targets, ['bismo-edge', 'bismo-cloud']);
    assert.equal(comparison.rows.length, 2);
    for (const row of comparison.rows) {
      assert.equal(row.state, 'succeeded');
      assert.deepEqual(row.runOn.map((c) => c.target), ['bismo-edge', 'bismo-cloud']);
      const own = row.runOn.find((c) => c.target === row.specialisedFor)!;
      // On its own target the policy meets the budget it was searched for.
      assert.ok(own.latencyRatio <= 0.6 + 1e-9, `${row.specialisedFor}: ${own.latencyRatio}`);
      for (const c of row.runOn) assert.ok(c.latencyRatio > 0 && c.latencyRatio <= 1 + 1e-9);
      // Top-1 on validation and test, each with its standard error 100 sqrt(p(1-p)/n).
      const policy = JSON.parse(readFileSync(join(tmp.dir, '.haq', 'results', ...resultKeys.policy(row.model, row.specialisedFor, row.constraint, row.searchId).split('/')), 'utf8'));
      assert.equal(row.top1, policy.metrics.top1);
      assert.equal(row.top1Se, policy.metrics.evaluations.val.top1Se);
      assert.equal(row.testTop1, policy.metrics.testTop1);
      assert.equal(row.testTop1Se, policy.metrics.evaluations.test.top1Se);
      assert.ok(row.top1Se! > 0 && row.testTop1Se! > 0);
    }
    assert.match(readFileSync(result.files!.report, 'utf8'), /specialised for/);
    assert.match(readFileSync(result.files!.report, 'utf8'), /\d+\.\d\d ± \d+\.\d\d/);
  });

  it("runs the docs' example sweep.json (docs/workflow.md) with every row succeeding", async () => {
    const doc = readFileSync(join(root, 'docs', 'workflow.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## `haq sweep`'));
    const example = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]);
    // The example as documented (paths relative to the repository root, where it is saved),
    // with a short search per row: what can fail is the rows' targets and budgets.
    const spec = { ...example, config: { ...example.config, episodes: 2, warmupEpisodes: 2, evalSamples: 100, calibSamples: 64 } };
    const result = await runLocalSweep({ spec, baseDir: root, outDir: join(tmp.dir, 'docs-example'), retryDelayMs: 0 });
    assert.equal(result.outcome.status, 'SUCCEEDED', JSON.stringify(result.outcome.error));
    const comparison = result.comparison as Comparison;
    assert.equal(comparison.rows.length, example.models.length * example.targets.length * example.constraints.length);
    assert.deepEqual(comparison.rows.filter((r) => r.error).map((r) => `${r.specialisedFor} ${r.constraint}: ${r.error!.name}: ${r.error!.message}`), []);
    assert.equal(comparison.failed, 0);
  });
});

