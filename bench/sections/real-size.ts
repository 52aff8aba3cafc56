/**
 * Real-size searches: `haq zoo resnet-50` at 224x224 (random weights) and the corpus text
 * detector (ppocr-det, 62 quantizable layers) at 640x640, each a full local search with the
 * default recovery (few episodes, 32 calibration and 128 validation samples: the section fits
 * in the full bench run; a search's cost grows with both) in a process of its own; then every
 * state's recorded input replayed per Lambda function in a fresh process (as a cold Lambda runs
 * it; Prepare recomputes the recovered weights at the search's bitwidths). Reported: wall time, seconds per episode, the
 * search process's peak RSS, and per function kind its peak RSS and wall time against the memory
 * infra gives it (infra/function-specs.ts).
 *
 * `--quick` checks that the section runs, not the sizes: MobileNet-v2 (3.4 M weights; a ResNet-50
 * policy switch re-lays 25.5 M, its GPTQ takes minutes whatever the resolution) alone at 64x64
 * with bias correction only, one episode, each function replayed once (on its last recorded input).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { functionSpecs } from '../../infra/function-specs';
import { inspectModel } from '../../shared/onnx/inspect';
import { buildZooModel } from '../../shared/zoo/architectures';
import { ensureCorpus, readManifest } from '../../scripts/corpus/fetch';
import { ensureCorpusData } from '../../scripts/corpus/inputs';
import { probeSearch } from '../memory-probe';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 75;
/** Two searches at real size plus every function replayed: past the runner's default limit on a shared 2-core machine (ResNet-50 alone took over 1800 s there). */
export const timeoutSeconds = 3600;

/** Function kinds in the order of a search (file names in functions/). */
const kinds = ['prepare', 'simulate', 'evaluate', 'act', 'update', 'finalize'];

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const counts = ctx.quick ? { calib: 4, val: 8 } : { calib: 32, val: 128 };
  const episodes = ctx.quick ? 1 : 2;
  const [arch, resolution, recovery] = ctx.quick ? (['mobilenet-v2', 64, 'bias'] as const) : (['resnet-50', 224, 'full'] as const);
  const zooPath = join(ctx.scratch, `${arch}-${resolution}.onnx`);
  writeFileSync(zooPath, buildZooModel(arch, { seed: 1, resolution }));
  const runs = [
    {
      name: `${arch} (zoo, random weights)`,
      path: zooPath,
      data: await ensureCorpusData({ name: `zoo-${arch}`, inputs: { generator: 'scene', sampleShape: [3, resolution, resolution] } }, counts),
      shape: [1, 3, resolution, resolution],
    },
  ];
  if (!ctx.quick) {
    const files = await ensureCorpus({ only: ['ppocr-det'], log: ctx.log });
    const det = readManifest().models.find((m) => m.name === 'ppocr-det')!;
    runs.push({ name: 'ppocr-det (corpus)', path: files.get('ppocr-det')!, data: await ensureCorpusData(det, counts), shape: [1, ...det.inputs.sampleShape] });
  }
  const memoryMb = Object.fromEntries(functionSpecs.map((s) => [s.entry.replace(/^functions\/|\.ts$/g, ''), s.memorySizeMb]));
  const figures: BenchSection['figures'] = {};
  const table: BenchTable = {
    title: 'Real-size searches: time and peak memory',
    headers: ['model', 'input', 'layers', 'GMAC / sample', 'search s', 's / episode', 'search process MiB', ...kinds.map((k) => `${k} MiB / s (Lambda ${memoryMb[k]} MB)`)],
    rows: [],
    note:
      `${ctx.quick ? 'QUICK MODE, not the real sizes: MobileNet-v2 at 64x64 only, bias correction only, each function replayed on its last recorded input; ' : ''}` +
      `${episodes} episodes (random warm-up), ${counts.val} validation and ${counts.calib} calibration samples (fewer than a real search's, to keep the section within the bench run), ` +
      `bismo-edge latency 0.6, recovery ${recovery === 'full' ? 'full (GPTQ + bias correction' : 'bias (bias correction'}, every layer at the search's weight bitwidths 2-8, in Prepare); peak RSS (maxRSS) of the search process, and per function the peak RSS and ` +
      'wall time of its longest recorded input replayed in a fresh node process (tsx, not the esbuild bundle; Prepare recomputes the recovery); Lambda memory from infra/function-specs.ts',
  };
  const peaks: Record<string, number> = {};
  const seconds: Record<string, number> = {};
  for (const r of runs) {
    if (ctx.signal?.aborted) break;
    const layers = await inspectModel(new Uint8Array(readFileSync(r.path)), { inputShape: r.shape });
    ctx.log(`${r.name}: searching (${layers.layers.length} layers)`);
    const p = await probeSearch(
      { modelPath: r.path, dataDir: r.data, outDir: join(ctx.scratch, r.name.split(' ')[0]), config: { hardware: 'bismo-edge', constraint: { kind: 'latency', ratio: 0.6 }, episodes, warmupEpisodes: episodes, seed: 1, quant: { recovery } } },
      ctx.root,
      ctx.quick ? 'last-per-function' : 'all',
    );
    for (const k of kinds) {
      peaks[k] = Math.max(peaks[k] ?? 0, p.handlerPeakRssMb[k] ?? 0);
      seconds[k] = Math.max(seconds[k] ?? 0, p.handlerSeconds[k] ?? 0);
    }
    table.rows.push([
      r.name,
      r.shape.slice(1).join('x'),
      layers.layers.length,
      Number((layers.totals.macs / 1e9).toFixed(2)),
      Number(p.seconds.toFixed(1)),
      p.secondsPerEpisode === null ? null : Number(p.secondsPerEpisode.toFixed(1)),
      Math.round(p.peakRssMb),
      ...kinds.map((k) => (p.handlerPeakRssMb[k] === undefined ? null : `${Math.round(p.handlerPeakRssMb[k])} / ${p.handlerSeconds[k].toFixed(1)}`)),
    ]);
    for (const k of kinds) figures[`${r.name.split(' ')[0]}.${k}.peakRssMb`] = p.handlerPeakRssMb[k] === undefined ? null : Math.round(p.handlerPeakRssMb[k]);
    figures[`${r.name.split(' ')[0]}.searchPeakRssMb`] = Math.round(p.peakRssMb);
    figures[`${r.name.split(' ')[0]}.secondsPerEpisode`] = p.secondsPerEpisode;
    ctx.log(`${r.name}: ${p.seconds.toFixed(0)} s, peak ${Math.round(p.peakRssMb)} MiB; per function ${JSON.stringify(p.handlerPeakRssMb)}`);
  }
  for (const k of kinds) {
    figures[`${k}.peakRssMb`] = peaks[k] === undefined ? null : Math.round(peaks[k]);
    figures[`${k}.seconds`] = seconds[k] === undefined ? null : Number(seconds[k].toFixed(1));
  }
  return { id: 'real-size', title: 'Real-size searches and Lambda memory', figures, tables: [table] };
}
