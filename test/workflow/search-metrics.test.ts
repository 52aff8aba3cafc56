/**
 * A model without a classifier output and data without labels: the metric resolves to output
 * SQNR against FP32, the search rewards and reports it (an SQNR axis in dB), and
 * `haq eval --policy --metric sqnr` scores the policy the same way.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runLocalSearch, type LocalSearchResult } from '../../cli/embedded/local';
import { encodeNpy } from '../../shared/data/npy';
import { searchKeys } from '../../shared/keys';
import { Rng } from '../../shared/rng';
import { SearchConfig } from '../../shared/config';
import { getJson } from '../../shared/store/object-store';
import { denseMapCnn } from '../fixtures/models';
import { haq } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

describe('a search scored by output SQNR (no labels, no classifier output)', () => {
  const tmp = tempDir('haq-metrics');
  after(() => tmp.cleanup());
  const modelPath = join(tmp.dir, 'dense-map.onnx');
  const data = join(tmp.dir, 'data');
  let result: LocalSearchResult;

  before(async () => {
    writeFileSync(modelPath, denseMapCnn());
    mkdirSync(data, { recursive: true });
    const rng = new Rng(3);
    for (const [split, n] of [['calib', 32], ['val', 48], ['test', 40]] as const) {
      writeFileSync(join(data, `${split}-inputs.npy`), encodeNpy({ data: Float32Array.from({ length: n * 64 }, () => rng.normal()), shape: [n, 1, 8, 8] }));
    }
    result = await runLocalSearch({
      modelPath,
      dataDir: data,
      outDir: join(tmp.dir, 'out'),
      config: { hardware: 'bismo-edge', constraint: { kind: 'latency', ratio: 0.85 }, strategy: 'random', episodes: 3, seed: 1, calibSamples: 32 },
      retryDelayMs: 0,
    });
  });

  it('resolves metric and reward to sqnr and records SQNR figures in dB', async () => {
    assert.equal(result.outcome.status, 'SUCCEEDED', JSON.stringify(result.outcome.error));
    const config = await getJson(result.stores.work, searchKeys.config(result.searchId), SearchConfig);
    assert.equal(config.metric, 'sqnr');
    assert.equal(config.reward, 'sqnr');
    const m = JSON.parse(readFileSync(result.files!.policy, 'utf8')).metrics;
    assert.equal(m.metric, 'sqnr');
    assert.equal(m.top1, null, 'no top-1 for a dense output without labels');
    assert.ok(m.score > 5 && m.score < 150, `validation SQNR ${m.score} dB`);
    assert.ok(typeof m.testScore === 'number', 'test SQNR');
    assert.equal(m.reward, 0.1 * m.score);
  });

  it('the report plots and tabulates SQNR in dB', () => {
    const html = readFileSync(result.files!.report, 'utf8');
    assert.match(html, /output SQNR vs FP32 \(dB\)/, 'the Pareto chart axis');
    assert.match(html, /<th>SQNR dB validation<\/th><th>SQNR dB selection<\/th><th>SQNR dB test \(held-out\)<\/th>/);
    assert.match(html, /Gain over the better uniform reference<\/b> \(uniform [^)]*\)\) on the held-out test split: [-+][0-9.]+ ± [0-9.]+ dB of output SQNR/);
    assert.ok(!/top-1/.test(html.replace(/<svg[\s\S]*?<\/svg>/g, '')), 'no top-1 wording outside the charts');
  });

  it('haq eval --policy --metric sqnr scores the policy by SQNR with its standard error', async () => {
    const r = await haq(['eval', modelPath, '--data', data, '--split', 'test', '--policy', result.files!.policy, '--metric', 'sqnr', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.metric, 'sqnr');
    assert.equal(out.top1, null);
    assert.equal(out.score, out.sqnrDb.value);
    assert.ok(out.sqnrDb.se > 0 && out.cosine.value < 1);
    const m = JSON.parse(readFileSync(result.files!.policy, 'utf8')).metrics;
    assert.ok(Math.abs(out.score - m.testScore) < 1e-6, `eval ${out.score} vs search ${m.testScore}`);
    const bad = await haq(['eval', modelPath, '--data', data, '--policy', result.files!.policy, '--metric', 'top1']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^haq: InvalidDataError: --metric top1 needs labels or a classifier output/m);
  });
});
