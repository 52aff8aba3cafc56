/**
 * The real statemachines/search.asl.json, end to end in the embedded runner, with the real
 * handlers over filesystem stores, on the zoo's fmnist-cnn (few episodes, 100 validation
 * samples): a clean run; transient failures that are retried give the identical result; a
 * continue-as-new crossing gives the same policy; failures write status.json and leave
 * earlier results untouched; the held-out test-split figures equal a direct evaluation.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runLocalSearch, type LocalSearchResult } from '../../cli/embedded/local';
import type { HandlerMap } from '../../cli/embedded/runner';
import { makeHandler as makeFinalize } from '../../functions/finalize';
import { silentLogger } from '../../functions/lib/runtime';
import { loadDataset, requireSplit } from '../../shared/data/dataset';
import { searchKeys } from '../../shared/keys';
import { LayerTable } from '../../shared/onnx/types';
import { Calibration } from '../../shared/quant/calibration';
import { prepareQuantEvaluator } from '../../shared/quant/evaluator';
import { recoveryKeys, storedRecovery } from '../../shared/quant/recovery';
import { FsStore } from '../../shared/store/fs-store';
import { getJson } from '../../shared/store/object-store';
import { EvaluationResult, SearchHistory, SearchStatus } from '../../shared/search/results';
import { CandidateResult, SelectionPlan } from '../../shared/search/selection';
import { carveIndices } from '../../shared/data/selection-split';
import { Rng } from '../../shared/rng';
import { decodeNpy, encodeNpy } from '../../shared/data/npy';
import { expectClose } from '../helpers/expect-close';
import { tempDir } from '../helpers/tmp';

const root = join(import.meta.dirname, '..', '..');
const model = join(root, 'models', 'zoo', 'fmnist-cnn', 'model.onnx');
const data = join(root, 'models', 'zoo', 'data');
const base = {
  hardware: 'bismo-edge',
  constraint: { kind: 'latency' as const, ratio: 0.5 },
  strategy: 'ddpg' as const,
  episodes: 4,
  warmupEpisodes: 2,
  parallel: 2,
  seed: 7,
  evalSamples: 100,
  calibSamples: 64,
};

/** Every file under a folder with its bytes (to prove nothing changed). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

/** A copy of the zoo's data folder at `dir` with the files `keep` accepts (all by default); returns dir. */
function copyData(dir: string, keep: (file: string) => boolean = () => true): string {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(data).filter(keep)) copyFileSync(join(data, f), join(dir, f));
  return dir;
}

const policyOf = (r: LocalSearchResult) => JSON.parse(readFileSync(r.files!.policy, 'utf8'));

describe('search state machine, embedded, end to end', () => {
  const tmp = tempDir('haq-wf');
  after(() => tmp.cleanup());
  let clean: LocalSearchResult;
  let carved: LocalSearchResult;

  before(async () => {
    clean = await runLocalSearch({ modelPath: model, dataDir: data, outDir: join(tmp.dir, 'clean'), config: base, retryDelayMs: 0 });
  });

  it('runs to a policy, a report and a quantized model', () => {
    assert.equal(clean.outcome.status, 'SUCCEEDED', JSON.stringify(clean.outcome.error));
    assert.equal(clean.outcome.executions, 1);
    const policy = policyOf(clean);
    assert.equal(policy.layers.length, 6);
    assert.ok(policy.metrics.costRatio <= 0.5 + 1e-9, `cost ratio ${policy.metrics.costRatio} over budget`);
    assert.equal(policy.layers[0].wBits, 8, 'first layer pinned to 8 bits');
    const html = readFileSync(clean.files!.report, 'utf8');
    assert.ok(html.startsWith('<!doctype html>') && (html.match(/<svg/g) ?? []).length >= 4, 'report with inline SVG charts');
    assert.ok(!/<script|https?:\/\/(?!www\.w3\.org)/.test(html), 'report is self-contained');
    assert.ok(statSync(clean.files!.quantModel).size > 1000);
  });

  it('records validation, selection and test figures with standard errors, equal to a direct evaluation', async () => {
    const m = policyOf(clean).metrics;
    assert.equal(m.valSamples, 100, 'validation limited by evalSamples');
    assert.equal(m.selectSamples, 4000, 'the whole selection split (select-inputs.npy)');
    assert.equal(m.selectSource, 'file');
    assert.equal(m.testSamples, 8000, 'the whole test split');
    assert.equal(m.testAccuracyMode, 'labels');
    // An independent evaluator (its own session) over the search's layer table, calibration and recovered weights.
    const [table, calibration] = await Promise.all([
      getJson(clean.stores.work, searchKeys.layers(clean.searchId), LayerTable),
      getJson(clean.stores.work, searchKeys.calibration(clean.searchId), Calibration),
    ]);
    const recovery = storedRecovery(clean.stores.work, recoveryKeys(table.modelHash, calibration.dataSha256, 'full', true).layer, table);
    const evaluator = await prepareQuantEvaluator(readFileSync(model), table, calibration, { seed: base.seed, recovery });
    try {
      const splits = await loadDataset(new FsStore(data), '', ['select', 'test']);
      const [select, test] = [requireSplit(splits, 'select'), requireSplit(splits, 'test')];
      const policy = policyOf(clean);
      const same = async (figure: { score: number; scoreSe: number }, run: Promise<{ score: number; scoreSe: number; samples: number }>) => {
        const r = await run;
        expectClose(figure.score, r.score, { atol: 1e-9 });
        // top-1's standard error, sqrt(p(1-p)/n) in points
        expectClose(figure.scoreSe, 100 * Math.sqrt((r.score / 100) * (1 - r.score / 100) / r.samples), { atol: 1e-9 });
      };
      await same(m.evaluations.test, evaluator.evaluate({ layers: policy.layers }, test));
      await same(m.evaluations.select, evaluator.evaluate({ layers: policy.layers }, select));
      await same(m.evaluations.fp32.test, evaluator.evaluateFp32(test));
      expectClose(m.testTop1, m.evaluations.test.top1, { atol: 1e-12 });
      // The uniform references are the most accurate uniform policies in budget on selection.
      for (const ref of [m.uniformPinned, m.uniformUnpinned]) {
        assert.ok(ref, 'uniform policies fit latency 0.5');
        const bits = table.layers.map((l, i) => (ref.pinned && (i === 0 || i === table.layers.length - 1) ? { name: l.name, wBits: 8, aBits: 8 } : { name: l.name, wBits: ref.wBits, aBits: ref.aBits }));
        expectClose(ref.test.score, (await evaluator.evaluate({ layers: bits }, test)).score, { atol: 1e-9 });
      }
      assert.equal(m.uniformPinned.pinned, true);
      assert.equal(m.uniformUnpinned.pinned, false);
      const better = m.uniformPinned.test.score >= m.uniformUnpinned.test.score ? 'uniformPinned' : 'uniformUnpinned';
      assert.equal(m.reference, better);
      expectClose(m.gain.value, m.evaluations.test.score - m[better].test.score, { atol: 1e-9 });
      assert.equal(m.gain.split, 'test');
    } finally {
      await evaluator.close();
    }
    const html = readFileSync(clean.files!.report, 'utf8');
    assert.match(html, /<th>top-1 % validation<\/th><th>top-1 % selection<\/th><th>top-1 % test \(held-out\)<\/th>/);
    assert.ok(html.includes(`${m.evaluations.test.score.toFixed(2)} ± ${m.evaluations.test.scoreSe.toFixed(2)}`), 'the policy row shows its test top-1 and standard error');
    assert.match(html, /Gain over the better uniform reference<\/b>/);
  });

  it('the final policy is the best candidate on the selection split, every uniform frontier policy a candidate', async () => {
    const m = policyOf(clean).metrics;
    const candidates = m.selection.candidates as Array<{ select: { value: number }; chosen: boolean; episode: number }>;
    assert.ok(candidates.length >= 1 && candidates.length <= 4);
    const chosen = candidates.find((c) => c.chosen)!;
    assert.equal(chosen.episode, m.episode);
    assert.equal(chosen.select.value, Math.max(...candidates.map((c) => c.select.value)));
    const plan = await getJson(clean.stores.work, searchKeys.selectionPlan(clean.searchId), SelectionPlan);
    assert.deepEqual(plan.candidates.map((c) => c.kind).filter((k, i, a) => a.indexOf(k) === i), ['search', 'uniform-pinned', 'uniform-unpinned', 'uniform8', 'fp32']);
    // Each uniform reference is its family's most accurate candidate on the selection split, whatever its width.
    for (const [kind, ref] of [['uniform-pinned', m.uniformPinned], ['uniform-unpinned', m.uniformUnpinned]] as const) {
      const scores = [];
      for (let i = 0; i < plan.candidates.length; i++) {
        if (plan.candidates[i].kind === kind) scores.push((await getJson(clean.stores.work, searchKeys.selectionResult(clean.searchId, i), CandidateResult)).select.score);
      }
      assert.ok(scores.length > 1, `several ${kind} policies fit`);
      assert.equal(ref.select.score, Math.max(...scores), kind);
    }
  });

  it('the reward never sees the selection split: other selection data, the same rounds', async () => {
    const dir = copyData(join(tmp.dir, 'other-select-data'));
    // The selection split replaced by the first 2000 test samples (other images, other labels).
    const test = requireSplit(await loadDataset(new FsStore(data), '', ['test']), 'test');
    writeFileSync(join(dir, 'select-inputs.npy'), encodeNpy({ data: test.inputs.data.subarray(0, 2000 * 784), shape: [2000, ...test.sampleShape] }));
    writeFileSync(join(dir, 'select-labels.npy'), encodeNpy({ data: BigInt64Array.from(test.labels!.subarray(0, 2000), BigInt), shape: [2000] }));
    const r = await runLocalSearch({ modelPath: model, dataDir: dir, outDir: join(tmp.dir, 'other-select'), config: base, retryDelayMs: 0 });
    assert.equal(r.outcome.status, 'SUCCEEDED', JSON.stringify(r.outcome.error));
    const history = async (x: LocalSearchResult) => (await x.stores.work.get(searchKeys.history(x.searchId))).toString();
    assert.equal(await history(r), await history(clean), 'identical rewards, episodes and policies');
    for (const key of [searchKeys.baseline, (id: string) => searchKeys.evaluation(id, 1, 1)]) {
      const [a, b] = [await getJson(r.stores.work, key(r.searchId), EvaluationResult), await getJson(clean.stores.work, key(clean.searchId), EvaluationResult)];
      assert.deepEqual({ ...a, seconds: 0 }, { ...b, seconds: 0 });
    }
    assert.notEqual(policyOf(r).metrics.selectScore, policyOf(clean).metrics.selectScore, 'the selection figures did change');
  });

  it('without select-inputs.npy: a seeded third of val is carved out for selection, and the report says so', async () => {
    const dir = copyData(join(tmp.dir, 'no-select-data'), (f) => !f.startsWith('select-'));
    const r = await runLocalSearch({ modelPath: model, dataDir: dir, outDir: join(tmp.dir, 'no-select'), config: { ...base, episodes: 2 }, retryDelayMs: 0 });
    assert.equal(r.outcome.status, 'SUCCEEDED', JSON.stringify(r.outcome.error));
    const m = policyOf(r).metrics;
    assert.equal(m.selectSource, 'carved');
    assert.equal(m.selectSamples, Math.round(4000 / 3));
    assert.match(readFileSync(r.files!.report, 'utf8'), /samples carved out of val-inputs\.npy/);
    carved = r;
  });

  it('the reward never sees the carved selection samples: poisoned, the same rounds', async () => {
    const dir = copyData(join(tmp.dir, 'poisoned-carve-data'), (f) => !f.startsWith('select-'));
    // Every sample carved out for selection replaced by noise with a wrong label (in the files' own encoding); the reward's part untouched.
    const inputs = decodeNpy(new Uint8Array(readFileSync(join(data, 'val-inputs.npy'))));
    const labels = decodeNpy(new Uint8Array(readFileSync(join(data, 'val-labels.npy'))));
    const samples = inputs.shape[0];
    const per = inputs.data.length / samples;
    const rng = new Rng(1);
    for (const i of carveIndices(samples).select) {
      for (let k = 0; k < per; k++) (inputs.data as Uint8Array)[i * per + k] = rng.int(256);
      (labels.data as BigInt64Array)[i] = ((labels.data as BigInt64Array)[i] + 1n) % 10n;
    }
    writeFileSync(join(dir, 'val-inputs.npy'), encodeNpy(inputs));
    writeFileSync(join(dir, 'val-labels.npy'), encodeNpy(labels));
    const r = await runLocalSearch({ modelPath: model, dataDir: dir, outDir: join(tmp.dir, 'poisoned-carve'), config: { ...base, episodes: 2 }, retryDelayMs: 0 });
    assert.equal(r.outcome.status, 'SUCCEEDED', JSON.stringify(r.outcome.error));
    const history = async (x: LocalSearchResult) => (await x.stores.work.get(searchKeys.history(x.searchId))).toString();
    assert.equal(await history(r), await history(carved), 'identical rewards, episodes and policies');
    const [a, b] = [await getJson(r.stores.work, searchKeys.baseline(r.searchId), EvaluationResult), await getJson(carved.stores.work, searchKeys.baseline(carved.searchId), EvaluationResult)];
    assert.deepEqual({ ...a, seconds: 0 }, { ...b, seconds: 0 }, 'the same FP32 reference');
    const m = policyOf(r).metrics;
    assert.equal(m.selectSource, 'carved');
    assert.ok(m.selectTop1 < policyOf(carved).metrics.selectTop1 - 50, `the poison reached the selection figures (${m.selectTop1} %)`);
  });

  it('Finalize run again publishes the same policy.json and report.html (idempotent)', async () => {
    const { work, results } = clean.stores;
    const key = (k: string) => join(results.root, ...k.split('/'));
    const policyBefore = readFileSync(key(clean.final!.keys.policy), 'utf8');
    const reportBefore = readFileSync(key(clean.final!.keys.report), 'utf8');
    const finalize = makeFinalize({ stores: clean.stores, logger: silentLogger(), now: () => new Date(0), faults: [] });
    const again = await finalize({ searchId: clean.searchId });
    assert.deepEqual(again, clean.final);
    assert.equal(readFileSync(key(clean.final!.keys.policy), 'utf8'), policyBefore);
    assert.equal(readFileSync(key(clean.final!.keys.report), 'utf8'), reportBefore);
    assert.deepEqual(await work.list('locks/'), []);
  });

  it('without a test split: null held-out figures and a report that says so', async () => {
    const dir = copyData(join(tmp.dir, 'no-test-data'), (f) => !f.startsWith('test-'));
    const r = await runLocalSearch({ modelPath: model, dataDir: dir, outDir: join(tmp.dir, 'no-test'), config: { ...base, episodes: 2 }, retryDelayMs: 0 });
    assert.equal(r.outcome.status, 'SUCCEEDED', JSON.stringify(r.outcome.error));
    const m = policyOf(r).metrics;
    assert.equal(m.testTop1, null);
    assert.equal(m.testTop1Fp32, null);
    assert.equal(m.testSamples, null);
    assert.equal(m.uniform8.test, null);
    assert.equal(m.gain.split, 'select', 'the gain on selection without a test split');
    const html = readFileSync(r.files!.report, 'utf8');
    assert.match(html, /No held-out test split<\/b>: the data folder has no test-inputs\.npy/);
    assert.ok(!/test \(held-out\)<\/th>/.test(html));
  });

  it('test inputs without labels: held-out figures in fidelity mode (agreement with FP32)', async () => {
    const dir = copyData(join(tmp.dir, 'fidelity-test-data'), (f) => f !== 'test-labels.npy');
    const r = await runLocalSearch({ modelPath: model, dataDir: dir, outDir: join(tmp.dir, 'fidelity-test'), config: { ...base, episodes: 2 }, retryDelayMs: 0 });
    assert.equal(r.outcome.status, 'SUCCEEDED', JSON.stringify(r.outcome.error));
    const m = policyOf(r).metrics;
    assert.equal(m.testAccuracyMode, 'fidelity');
    assert.equal(m.testTop1Fp32, 100, 'FP32 agrees with itself');
    assert.ok(m.testTop1 > 50 && m.testTop1 <= 100, `fidelity ${m.testTop1}`);
    assert.match(readFileSync(r.files!.report, 'utf8'), /fidelity: no test-labels\.npy/);
  });

  it('marks status.json succeeded and releases the lock', async () => {
    const status = await getJson(clean.stores.work, searchKeys.status(clean.searchId), SearchStatus);
    assert.equal(status.state, 'succeeded');
    assert.equal(status.episodesDone, 4);
    assert.deepEqual(await clean.stores.work.list('locks/'), []);
  });

  it('retries transient failures (Lambda throttling, TransientError) and ends with the identical result', async () => {
    const failedOnce = new Set<string>();
    const wrap = (handlers: HandlerMap): HandlerMap => ({
      ...handlers,
      // First Act of round 1 is throttled by "Lambda".
      act: async (event) => {
        const e = event as { mode: string; round?: number };
        if (e.mode === 'act' && e.round === 1 && !failedOnce.has('act')) {
          failedOnce.add('act');
          const err = new Error('Rate exceeded');
          err.name = 'Lambda.TooManyRequestsException';
          throw err;
        }
        return handlers.act(event);
      },
    });
    const retried = await runLocalSearch({
      modelPath: model,
      dataDir: data,
      outDir: join(tmp.dir, 'retried'),
      config: base,
      retryDelayMs: 0,
      wrapHandlers: wrap,
      faults: ['evaluate', 'simulate', 'update'],
    });
    assert.equal(retried.outcome.status, 'SUCCEEDED', JSON.stringify(retried.outcome.error));
    assert.ok(failedOnce.has('act'));
    const faults = await retried.stores.work.list(`${searchKeys.prefix(retried.searchId)}faults/`);
    assert.ok(faults.some((k) => k.includes('evaluate-')) && faults.some((k) => k.includes('update-')), 'faults were injected');
    assert.equal(readFileSync(retried.files!.policy, 'utf8'), readFileSync(clean.files!.policy, 'utf8'));
  });

  it('crosses continue-as-new (one round per execution) to the same policy', async () => {
    const crossed = await runLocalSearch({
      modelPath: model,
      dataDir: data,
      outDir: join(tmp.dir, 'crossed'),
      config: { ...base, roundsPerExecution: 1 },
      retryDelayMs: 0,
    });
    assert.equal(crossed.outcome.status, 'SUCCEEDED', JSON.stringify(crossed.outcome.error));
    assert.equal(crossed.outcome.executions, 2, 'two rounds, one execution each');
    const a = policyOf(clean);
    const b = policyOf(crossed);
    assert.deepEqual(b.layers, a.layers);
    const { searchId: _a, ...metricsA } = a.metrics;
    const { searchId: _b, ...metricsB } = b.metrics;
    assert.deepEqual(metricsB, metricsA);
  });

  describe('failures', () => {
    const out = join(tmp.dir, 'failures');
    let good: LocalSearchResult;
    let before: Map<string, string>;

    it('first, a successful search in the same folder', async () => {
      good = await runLocalSearch({ modelPath: model, dataDir: data, outDir: out, config: { ...base, episodes: 2, warmupEpisodes: 2 }, retryDelayMs: 0 });
      assert.equal(good.outcome.status, 'SUCCEEDED', JSON.stringify(good.outcome.error));
      before = snapshot(good.stores.results.root);
      assert.ok(before.size >= 4);
    });

    it('evaluating each policy as two shards of the validation set gives the same accuracies', async () => {
      const sharded = await runLocalSearch({
        modelPath: model,
        dataDir: data,
        outDir: join(tmp.dir, 'sharded'),
        config: { ...base, episodes: 2, warmupEpisodes: 2, evalShards: 2 },
        retryDelayMs: 0,
      });
      assert.equal(sharded.outcome.status, 'SUCCEEDED', JSON.stringify(sharded.outcome.error));
      const shards = await sharded.stores.work.list(`${searchKeys.prefix(sharded.searchId)}rounds/00000/eval/`);
      assert.deepEqual(shards.map((k) => k.split('/').pop()), ['000.shard-000.json', '000.shard-001.json', '001.shard-000.json', '001.shard-001.json']);
      const history = async (r: LocalSearchResult) => (await getJson(r.stores.work, searchKeys.history(r.searchId), SearchHistory)).episodes;
      const [a, b] = [await history(good), await history(sharded)];
      assert.deepEqual(b.map((e) => e.bits), a.map((e) => e.bits));
      b.forEach((e, i) => expectClose(e.top1!, a[i].top1!, { atol: 1e-9 }));
      assert.deepEqual(policyOf(sharded).layers, policyOf(good).layers);
    });

    it('an impossible budget fails with BudgetInfeasibleError in status.json; earlier results untouched', async () => {
      const bad = await runLocalSearch({
        modelPath: model,
        dataDir: data,
        outDir: out,
        config: { ...base, constraint: { kind: 'latency', ratio: 0.001 } },
        retryDelayMs: 0,
      });
      assert.equal(bad.outcome.status, 'FAILED');
      assert.equal(bad.outcome.error?.name, 'BudgetInfeasibleError');
      const status = await getJson(bad.stores.work, searchKeys.status(bad.searchId), SearchStatus);
      assert.equal(status.state, 'failed');
      assert.equal(status.error?.name, 'BudgetInfeasibleError');
      assert.match(status.error!.message, /smallest feasible latency ratio/);
      assert.deepEqual(snapshot(bad.stores.results.root), before);
      assert.deepEqual(await bad.stores.work.list('locks/'), [], 'the failed search released its lock');
    });

    it('a file that is not ONNX fails with UnsupportedModelError; earlier results untouched', async () => {
      const dir = join(tmp.dir, 'broken');
      mkdirSync(dir, { recursive: true });
      const broken = join(dir, 'fmnist-cnn.onnx');
      writeFileSync(broken, 'this is not a protobuf');
      const bad = await runLocalSearch({ modelPath: broken, dataDir: data, outDir: out, config: base, retryDelayMs: 0 });
      assert.equal(bad.outcome.status, 'FAILED');
      const status = await getJson(bad.stores.work, searchKeys.status(bad.searchId), SearchStatus);
      assert.equal(status.state, 'failed');
      assert.equal(status.error?.name, 'UnsupportedModelError');
      assert.match(status.error!.message, /fmnist-cnn/);
      assert.deepEqual(snapshot(bad.stores.results.root), before);
    });

    it('data of the wrong shape fails with InvalidDataError; earlier results untouched', async () => {
      const dir = join(tmp.dir, 'wrong-data');
      mkdirSync(dir, { recursive: true });
      // 8x8 images for a 28x28 model.
      const { encodeNpy } = await import('../../shared/data/npy');
      writeFileSync(join(dir, 'val-inputs.npy'), encodeNpy({ data: new Float32Array(4 * 64), shape: [4, 1, 8, 8] }));
      const bad = await runLocalSearch({ modelPath: model, dataDir: dir, outDir: out, config: base, retryDelayMs: 0 });
      assert.equal(bad.outcome.status, 'FAILED');
      const status = await getJson(bad.stores.work, searchKeys.status(bad.searchId), SearchStatus);
      assert.equal(status.error?.name, 'InvalidDataError');
      assert.deepEqual(snapshot(bad.stores.results.root), before);
    });

    it('a NaN in the test split fails Prepare with one line naming the file, count and first index; earlier results untouched', async () => {
      const dir = copyData(join(tmp.dir, 'nan-data'), (f) => ['calib-inputs.npy', 'val-inputs.npy', 'val-labels.npy', 'meta.json'].includes(f));
      const { encodeNpy } = await import('../../shared/data/npy');
      const images = new Float32Array(3 * 784);
      images[784 + 5] = NaN;
      writeFileSync(join(dir, 'test-inputs.npy'), encodeNpy({ data: images, shape: [3, 1, 28, 28] }));
      const bad = await runLocalSearch({ modelPath: model, dataDir: dir, outDir: out, config: base, retryDelayMs: 0 });
      assert.equal(bad.outcome.status, 'FAILED');
      const status = await getJson(bad.stores.work, searchKeys.status(bad.searchId), SearchStatus);
      assert.equal(status.error?.name, 'InvalidDataError');
      assert.match(status.error!.message, /test-inputs\.npy .*holds 1 NaN\/Inf value, the first at flat index 789 \(sample 1\)/);
      assert.doesNotMatch(status.error!.message, /\n/);
      assert.equal(await bad.stores.work.exists(searchKeys.calibration(bad.searchId)), false, 'nothing computed before the check');
      assert.deepEqual(snapshot(bad.stores.results.root), before);
      assert.deepEqual(await bad.stores.work.list('locks/'), [], 'the failed search released its lock');
    });
  });
});
