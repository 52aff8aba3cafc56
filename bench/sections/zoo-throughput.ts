/**
 * Zoo FP32 throughput: images per second of each models/zoo/<name>/model.onnx in onnxruntime
 * (one intra-op thread, the product's evaluation setting) at batch 1 and batch 64, with the
 * layer count and MACs from the product's own layer table (shared/onnx/inspect).
 * Inputs are seeded uniform 8-bit pixels scaled to [0,1]: a CNN's speed does not depend on
 * the pixel values, and the section then needs nothing but the model files.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectModel } from '../../shared/onnx/inspect';
import { ModelSession } from '../../shared/onnx/runtime';
import { Rng } from '../../shared/rng';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 10;

const BATCHES = [1, 64];

/** Images of one batch as float32 [batch,1,28,28] in [0,1] (uniform, seeded). */
function batchInput(batch: number, pixelsPerImage: number, rng: Rng): Float32Array {
  const x = new Float32Array(batch * pixelsPerImage);
  for (let i = 0; i < x.length; i++) x[i] = rng.int(256) / 255;
  return x;
}

/**
 * Images/s of one batch size: `repeats` windows of at least `minMs` and `minRuns` runs each
 * (after 2 warm-up runs); returns the best window, which is the least disturbed by other load
 * on a shared machine.
 */
async function imagesPerSecond(session: ModelSession, inputName: string, x: Float32Array, dims: number[], window: { minMs: number; minRuns: number; repeats: number }): Promise<number> {
  const feeds = { [inputName]: { data: x, dims } };
  for (let i = 0; i < 2; i++) await session.run(feeds);
  let best = 0;
  for (let r = 0; r < window.repeats; r++) {
    let runs = 0;
    const start = performance.now();
    let elapsedMs = 0;
    while (runs < window.minRuns || elapsedMs < window.minMs) {
      await session.run(feeds);
      runs++;
      elapsedMs = performance.now() - start;
    }
    best = Math.max(best, (runs * dims[0]) / (elapsedMs / 1000));
  }
  return best;
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const zoo = join(ctx.root, 'models', 'zoo');
  const names = readdirSync(zoo).filter((n) => existsSync(join(zoo, n, 'model.onnx'))).sort();
  if (names.length === 0) throw new Error(`no models under ${zoo} (expected <name>/model.onnx; see models/README.md)`);
  const window = ctx.quick ? { minMs: 200, minRuns: 3, repeats: 3 } : { minMs: 1000, minRuns: 10, repeats: 5 };
  const rng = new Rng(20190616);
  const figures: Record<string, number> = {};
  const table: BenchTable = {
    title: 'FP32 inference throughput per zoo model',
    headers: ['model', 'quantizable layers', 'weights', 'MMAC / image', ...BATCHES.map((b) => `images/s (batch ${b})`), 'GMAC/s (batch 64)'],
    rows: [],
    note: `onnxruntime-node CPU, 1 intra-op thread; best of ${window.repeats} windows of >= ${window.minMs / 1000} s after 2 warm-up runs; seeded uniform random 28x28 pixels; MACs from the layer table (quantizable layers only)`,
  };
  for (const name of names) {
    const bytes = new Uint8Array(readFileSync(join(zoo, name, 'model.onnx')));
    const layers = await inspectModel(bytes, { what: name, inputShape: [1, 1, 28, 28] });
    const session = await ModelSession.create(bytes, { what: name, threads: 1 });
    try {
      const inputName = session.inputNames[0];
      const speeds: number[] = [];
      for (const batch of BATCHES) {
        const dims = [batch, 1, 28, 28];
        speeds.push(await imagesPerSecond(session, inputName, batchInput(batch, 28 * 28, rng), dims, window));
      }
      const macsPerImage = layers.totals.macs;
      const last = speeds[speeds.length - 1];
      table.rows.push([name, layers.layers.length, layers.totals.params, macsPerImage / 1e6, ...speeds, (last * macsPerImage) / 1e9]);
      figures[`${name}.imagesPerSecond`] = Math.round(last);
      ctx.log(`${name}: ${speeds.map((s, i) => `batch ${BATCHES[i]} ${s.toFixed(0)} img/s`).join(', ')}`);
    } finally {
      await session.release();
    }
  }
  return { id: 'zoo-throughput', title: 'Zoo models: FP32 throughput', figures, tables: [table] };
}
