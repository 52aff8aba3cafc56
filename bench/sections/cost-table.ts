/**
 * Cost tables: the time to build the full cost table of ResNet-50 (54 layers x 8 weight x 8
 * activation bit widths) on every built-in target, median of repeats in one process (the
 * first, cold build is reported apart: it includes JIT warm-up). The layer table comes from
 * the zoo's analytic ResNet-50, identical to what the ONNX loader finds (test/unit/zoo).
 * Context: the whole-model latency at uniform 8/8 and 4/4, and the BitFusion reference check
 * (rows of the published simulator sweep reproduced within 1% and exactly).
 */
import { simulateBitFusionConv } from '../../shared/hardware/bitfusion';
import { buildCostTable, uniformCosts } from '../../shared/hardware/cost-table';
import { resolveTarget, targetNames } from '../../shared/hardware/targets';
import type { CostTable } from '../../shared/hardware/types';
import { zooLayerTable } from '../../shared/zoo/architectures';
import { convArgs, loadReference, referenceRows, referenceTarget } from '../../test/fixtures/reference/bitfusion/reference';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 20;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Rows of the BitFusion reference sweep whose cycles the simulator reproduces (within 1%, and exactly). */
function bitFusionReference(): { rows: number; within: number; exact: number } {
  const reference = loadReference();
  const rows = referenceRows(reference);
  let within = 0;
  let exact = 0;
  for (const { layer, row } of rows) {
    const s = simulateBitFusionConv(referenceTarget(reference, row), convArgs(layer.sim_args));
    if (Math.abs(s.cycles - row.Cycles) <= 0.01 * row.Cycles) within++;
    if (s.cycles === row.Cycles) exact++;
  }
  return { rows: rows.length, within, exact };
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const repeats = ctx.quick ? 3 : 7;
  const layers = zooLayerTable('resnet-50');
  const timing: BenchTable = {
    title: 'ResNet-50 cost table build time per target (54 layers x 64 bit-width pairs)',
    headers: ['target', 'kind', 'batch', 'cold ms', 'median ms', 'median CPU ms', 'latency 8/8 ms', 'latency 4/4 ms', 'energy 8/8 uJ'],
    rows: [],
    note: `median of ${repeats} builds in one process after the cold (first) build; CPU ms = user+system time of this process (less sensitive to other load than wall time); latency and energy per batch`,
  };
  const figures: Record<string, number | string | null> = {};
  let totalMs = 0;
  let totalCpuMs = 0;
  for (const name of targetNames()) {
    const target = resolveTarget(name);
    let t = performance.now();
    let table: CostTable = buildCostTable(layers, target);
    const coldMs = performance.now() - t;
    const times: number[] = [];
    const cpuTimes: number[] = [];
    for (let i = 0; i < repeats; i++) {
      const cpu = process.cpuUsage();
      t = performance.now();
      table = buildCostTable(layers, target);
      times.push(performance.now() - t);
      const used = process.cpuUsage(cpu);
      cpuTimes.push((used.user + used.system) / 1000);
    }
    const ms = median(times);
    const cpuMs = median(cpuTimes);
    totalCpuMs += cpuMs;
    totalMs += ms;
    const u = uniformCosts(table);
    timing.rows.push([name, target.kind, target.batch, +coldMs.toFixed(1), +ms.toFixed(2), +cpuMs.toFixed(1), +u['8'].latencyMs.toPrecision(4), +u['4'].latencyMs.toPrecision(4), u['8'].energyUj === null ? null : +u['8'].energyUj.toPrecision(4)]);
    figures[`resnet50_${name}_ms`] = +ms.toFixed(2);
    figures[`resnet50_${name}_cpu_ms`] = +cpuMs.toFixed(1);
    ctx.log(`cost-table: ${name} ${ms.toFixed(1)} ms (cold ${coldMs.toFixed(1)} ms)`);
  }
  figures.resnet50_all_targets_ms = +totalMs.toFixed(1);
  figures.resnet50_all_targets_cpu_ms = +totalCpuMs.toFixed(1);
  timing.rows.push(['all targets', '', '', null, +totalMs.toFixed(1), +totalCpuMs.toFixed(1), null, null, null]);

  const ref = bitFusionReference();
  figures.bitfusion_reference_rows = ref.rows;
  figures.bitfusion_rows_within_1pct = ref.within;
  figures.bitfusion_rows_exact_cycles = ref.exact;
  const reference: BenchTable = {
    title: 'BitFusion reference sweep (hsharma35/bitfusion, 61 layers x 5 array configurations)',
    headers: ['rows', 'cycles within 1%', 'cycles exact'],
    rows: [[ref.rows, ref.within, ref.exact]],
    note: 'each row re-simulated with its own N, M, buffer sizes and bandwidth (test/fixtures/reference/bitfusion)',
  };
  return { id: 'cost-table', title: 'Hardware cost tables', figures, tables: [timing, reference] };
}
