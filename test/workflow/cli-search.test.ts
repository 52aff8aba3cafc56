/**
 * `haq search` and `haq sweep` as a user runs them (child processes): the JSON summary and
 * the three files on success; one error line and exit 1 for bad flags and failed searches.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { haq, repoRoot } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-cli-search');
after(tmp.cleanup);


const model = 'models/zoo/fmnist-cnn/model.onnx';
const data = 'models/zoo/data';
const small = ['--episodes', '2', '--warmup', '2', '--eval-samples', '100'];

describe('haq search', () => {
  it('writes policy.json, report.html, model.quant.onnx and prints a JSON summary', async () => {
    const out = join(tmp.dir, 'ok');
    const r = await haq(['search', model, '--data', data, '--hardware', 'bitfusion', '--constraint', 'energy:0.9', ...small, '--seed', '5', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.target, 'bitfusion');
    assert.deepEqual(summary.constraint, { kind: 'energy', ratio: 0.9 });
    assert.ok(summary.costRatio <= 0.9 + 1e-9);
    assert.equal(summary.layers.length, 6);
    assert.ok(typeof summary.top1 === 'number' && typeof summary.top1Fp32 === 'number' && summary.energyUj > 0);
    for (const f of ['policy.json', 'report.html', 'model.quant.onnx']) assert.ok(existsSync(join(out, f)), f);
    const policy = JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8'));
    assert.deepEqual(policy.layers, summary.layers);
    assert.match(r.stderr, /episode 2\/2/, 'progress lines on stderr when not a TTY');
    // Validation, selection and held-out test figures with standard errors, as recorded in policy.json.
    const m = policy.metrics;
    assert.deepEqual(summary.samples, { val: 100, select: 4000, test: 8000 });
    assert.equal(summary.metric, 'top1');
    assert.equal(summary.testAccuracyMode, 'labels');
    for (const split of ['val', 'select', 'test'] as const) {
      assert.deepEqual(summary.policy[split], { value: m.evaluations[split].score, se: m.evaluations[split].scoreSe });
      assert.deepEqual(summary.fp32[split], { value: m.evaluations.fp32[split].score, se: m.evaluations.fp32[split].scoreSe });
      assert.ok(summary.policy[split].se > 0, `${split} standard error`);
    }
    assert.equal(summary.testTop1, m.testTop1);
    assert.deepEqual(summary.uniform8.test, { value: m.uniform8.test.score, se: m.uniform8.test.scoreSe });
    assert.deepEqual(summary.gain, m.gain);
    assert.ok(summary.uniformPinned || summary.uniformUnpinned, 'a uniform reference in budget');
  });

  it('prints validation, selection and test top-1 with standard errors and the gain over the better uniform reference', async () => {
    const out = join(tmp.dir, 'text');
    const r = await haq(['search', model, '--data', data, ...small, '--seed', '5', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8')).metrics;
    const f = (e: { score: number; scoreSe: number }) => `${e.score.toFixed(2)} ± ${e.scoreSe.toFixed(2)}`;
    assert.match(r.stdout, /top-1 % ± standard error:\n\s+validation \(100\)\s+selection \(4000\)\s+test \(8000\)/);
    const row = r.stdout.split('\n').find((l) => l.startsWith(`policy (episode ${m.episode})`));
    assert.ok(row, r.stdout);
    assert.match(row, new RegExp(`${f(m.evaluations.val)}\\s+${f(m.evaluations.select)}\\s+${f(m.evaluations.test)}$`));
    assert.match(r.stdout, new RegExp(`^FP32\\s+.*${f(m.evaluations.fp32.test)}$`, 'm'));
    const g = m.gain;
    assert.match(r.stdout, new RegExp(`gain over the better uniform reference \\(.*\\) on test: ${g.value >= 0 ? '\\+' : '-'}${Math.abs(g.value).toFixed(2)} ± ${g.se.toFixed(2)} points \\(${g.withinNoise ? 'within noise' : ''}`));
  });

  it("one calibration: haq eval --policy reproduces the search's val and test top-1, haq export writes Finalize's model byte for byte", async () => {
    const out = join(tmp.dir, 'reproduce');
    const r = await haq(['search', model, '--data', data, ...small, '--seed', '3', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const policyPath = join(out, 'policy.json');
    const policy = JSON.parse(readFileSync(policyPath, 'utf8'));
    assert.equal(policy.quantization.calibSamples, 512, 'every calibration sample by default');
    assert.equal(policy.quantization.clipMethod, 'mse');
    assert.equal(policy.quantization.recovery, 'full', 'accuracy recovery on by default');
    assert.match(policy.quantization.calibSha256, /^[0-9a-f]{64}$/);
    const [val, test, exported, plain] = await Promise.all([
      haq(['eval', model, '--data', data, '--policy', policyPath, '--limit', '100', '--json']),
      haq(['eval', model, '--data', data, '--policy', policyPath, '--split', 'test', '--json']),
      haq(['export', model, '--data', data, '--policy', policyPath, '--out', join(out, 'exported.onnx'), '--json']),
      haq(['export', model, '--data', data, '--policy', policyPath, '--recovery', 'none', '--out', join(out, 'plain.onnx'), '--json']),
    ]);
    for (const x of [val, test, exported, plain]) assert.equal(x.code, 0, x.stderr);
    assert.equal(JSON.parse(val.stdout).top1, policy.metrics.top1);
    assert.equal(JSON.parse(val.stdout).top1Se, policy.metrics.evaluations.val.top1Se);
    assert.equal(JSON.parse(test.stdout).top1, policy.metrics.testTop1);
    assert.ok(readFileSync(join(out, 'exported.onnx')).equals(readFileSync(join(out, 'model.quant.onnx'))), 'the same model bytes');
    // The recovered weights are in those bytes: plain rounding exports a different model.
    assert.ok(!readFileSync(join(out, 'plain.onnx')).equals(readFileSync(join(out, 'model.quant.onnx'))), 'recovery changes the exported weights');
  });

  const bad: Array<[string, string[], RegExp]> = [
    ['an unknown constraint kind', ['--constraint', 'speed:0.5'], /InvalidInputError: --constraint.*latency:0\.5/],
    ['a zero episode count', ['--episodes', '0'], /InvalidInputError: --episodes 0/],
    ['a missing data folder', ['--data', 'no/such/dir'], /InvalidInputError: --data no\/such\/dir is not a folder/],
    // A folder without the validation split: named as the user gave it (not the staged copy under --out), with what it holds.
    ['a data folder without val-inputs.npy', ['--data', 'models/zoo'], /InvalidDataError: --data models\/zoo has no val-inputs\.npy \(the validation split the search scores policies on\); it holds .*fmnist-cnn.*; add it: /],
    ['an unknown target', ['--hardware', 'tpu-v9'], /UnknownTargetError: .*tpu-v9/],
    ['an impossible budget', ['--constraint', 'latency:0.01'], /BudgetInfeasibleError: budget 0.01 is below the smallest feasible/],
    // The pinned first/last layer set the floor (0.408 for the CNN): the error names the way below it.
    ['a budget only an unpinned search reaches', ['--constraint', 'latency:0.3'], /ratio 0\.40\d\d .*\(the free layers at 2 bits, the first and last pinned at 8\/8\); .*--no-pin-first-last/],
    // --no-pin-first-last reaches the budget check: the floor is every layer at 2 bits.
    ['an impossible budget unpinned', ['--constraint', 'latency:0.01', '--no-pin-first-last'], /ratio 0\.\d+ for bismo-edge \(all layers at 2 bits\); use a ratio of at least [0-9.]+$/],
  ];
  for (const [what, flags, message] of bad) {
    it(`rejects ${what} with one error line and exit 1`, async () => {
      const r = await haq(['search', model, '--data', data, ...small, '--out', join(tmp.dir, 'bad'), ...flags]);
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('haq:'));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], message);
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    });
  }
});

describe('haq sweep', () => {
  it('rejects a sweep file without models', async () => {
    const file = join(tmp.dir, 'sweep.json');
    writeFileSync(file, JSON.stringify({ targets: ['bismo-edge'], constraints: ['latency:0.5'] }));
    const r = await haq(['sweep', '--config', file, '--out', join(tmp.dir, 'sw')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /haq: InvalidInputError: --config .*sweep\.json: models: Required/);
  });

  it('rejects a model whose data folder has no val-inputs.npy, naming the folder and the model', async () => {
    // Paths in sweep.json are relative to its folder: the zoo model, and the zoo folder as its data (no val-inputs.npy there).
    const file = join(tmp.dir, 'sweep-no-val.json');
    const zoo = relative(tmp.dir, join(repoRoot, 'models', 'zoo'));
    writeFileSync(file, JSON.stringify({ models: [{ path: join(zoo, 'fmnist-cnn', 'model.onnx'), data: zoo }], targets: ['bismo-edge'], constraints: ['latency:0.5'] }));
    const r = await haq(['sweep', '--config', file, '--out', join(tmp.dir, 'sw-no-val')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /haq: InvalidDataError: .*data folder \S+models\/zoo of model \S+fmnist-cnn\/model\.onnx has no val-inputs\.npy \(the validation split the search scores policies on\); it holds /);
  });

  it('reports a failed row with its error class and message and exits 1 saying how many failed', async () => {
    const file = join(tmp.dir, 'sweep-one-fails.json');
    // bismo-edge has no energy model: that row fails; bitfusion's is feasible.
    writeFileSync(
      file,
      JSON.stringify({
        sweepId: 'one-fails',
        models: [{ path: join(repoRoot, model), data: join(repoRoot, data) }],
        targets: ['bismo-edge', 'bitfusion'],
        constraints: ['energy:0.95'],
        config: { episodes: 2, warmupEpisodes: 2, evalSamples: 100, calibSamples: 64 },
      }),
    );
    const out = join(tmp.dir, 'sweep-one-fails');
    const r = await haq(['sweep', '--config', file, '--out', out]);
    assert.equal(r.code, 1, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('haq: '));
    assert.deepEqual(errors, ['haq: SearchFailedError: 1 of 2 searches of the sweep failed (each failed row names its error)']);
    const reason = 'InvalidInputError: target bismo-edge has no energy model; use a latency or size constraint';
    assert.match(r.stdout, /error/);
    assert.ok(r.stdout.split('\n').some((l) => l.includes('bismo-edge') && l.includes('failed') && l.includes(reason)), r.stdout);
    assert.match(r.stdout, /1 of 2 searches failed:/);
    const comparison = JSON.parse(readFileSync(join(out, 'comparison.json'), 'utf8'));
    assert.equal(comparison.failed, 1);
    const failed = comparison.rows.find((row: { specialisedFor: string }) => row.specialisedFor === 'bismo-edge');
    assert.deepEqual(failed.error, { name: 'InvalidInputError', message: 'target bismo-edge has no energy model; use a latency or size constraint' });
    assert.equal(failed.state, 'failed');
    const ok = comparison.rows.find((row: { specialisedFor: string }) => row.specialisedFor === 'bitfusion');
    assert.equal(ok.error, null);
    assert.equal(ok.state, 'succeeded');
    const html = readFileSync(join(out, 'sweep.html'), 'utf8');
    assert.match(html, /1 of 2 searches failed/);
    assert.match(html, /InvalidInputError<\/code>: fmnist-cnn energy-0.95 on bismo-edge/);
  });
});

