/**
 * Cost tables: the time to build the full cost table of ResNet-50 (54 layers x 8 weight x 8
 * activation bit widths) on every built-in target, median of repeats in one process (the
 * first, cold build is reported apart: it includes JIT warm-up). The layer table comes from
 * the zoo's analytic ResNet-50, identical to what the ONNX loader finds (test/unit/zoo).
 * Context: the whole-model latency at uniform 8/8 and 4/4. Fidelity: bismo-cloud against HAQ's
 * BISMO cloud table (per-cell error, uniform totals, rank correlation; the parameter fit and its
 * leave-one-shape-out cross-validation), BitFusion against the published sweep and against 340
 * golden single-layer rows of its own simulator.
 */
import { simulateBitFusionConv } from '../../shared/hardware/bitfusion';
import { buildCostTable, uniformCosts } from '../../shared/hardware/cost-table';
import { resolveTarget, targetNames } from '../../shared/hardware/targets';
import type { CostTable } from '../../shared/hardware/types';
import { zooLayerTable } from '../../shared/zoo/architectures';
import { loadGolden, goldenModelGrids } from '../../test/fixtures/reference/bitfusion/golden';
import { convArgs, loadReference, referenceRows, referenceTarget } from '../../test/fixtures/reference/bitfusion/reference';
import { fitBismoCloud, modelCycles } from '../../test/fixtures/reference/haq-bismo-cloud/fit';
import { cyclesByShape, fidelity, loadBismoReference, type Fidelity } from '../../test/fixtures/reference/haq-bismo-cloud/reference';
import type { BismoTarget, BitFusionTarget } from '../../shared/hardware/targets';
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

/** Golden single-layer rows (BitFusion's own simulator) the cost table matches within 2% cycles and 5% energy. */
function bitFusionGolden(): { rows: number; within: number; maxCycleError: number; maxEnergyError: number } {
  const golden = loadGolden();
  const target = resolveTarget('bitfusion') as BitFusionTarget;
  const grids = new Map(golden.shapes.map((s) => [s.name, goldenModelGrids(target, s)]));
  let within = 0;
  let maxCycleError = 0;
  let maxEnergyError = 0;
  for (const r of golden.rows) {
    const g = grids.get(r.shape);
    if (!g) continue;
    const dc = Math.abs(g.cycles[r.wBits - 1][r.aBits - 1] / r.cycles - 1);
    const de = Math.abs(g.energyPj[r.wBits - 1][r.aBits - 1] / r.energyPj - 1);
    maxCycleError = Math.max(maxCycleError, dc);
    maxEnergyError = Math.max(maxEnergyError, de);
    if (dc <= 0.02 && de <= 0.05) within++;
  }
  return { rows: golden.rows.length, within, maxCycleError, maxEnergyError };
}

const pct = (x: number): number => +(100 * x).toFixed(3);
const worstTotal = (f: Fidelity): number => Math.max(...Object.values(f.uniformTotalError).map(Math.abs));

/** bismo-cloud against HAQ's table: the given layers, the layers whose shape has a row, the fit and its cross-validation. */
function bismoFidelity(ctx: BenchContext): { table: BenchTable; figures: Record<string, number | string> } {
  const reference = loadBismoReference();
  const model = modelCycles(resolveTarget('bismo-cloud') as BismoTarget, reference.layers, reference.batch);
  const given = reference.layers.filter((l) => l.cycles);
  const byShape = cyclesByShape(reference);
  const known = reference.layers.filter((l) => byShape.has(l.index));
  const convs = given.filter((l) => l.kind !== 'fc');
  const fit = fidelity(given.map((l) => model[l.index]), given.map((l) => l.cycles as number[][]));
  const conv = fidelity(convs.map((l) => model[l.index]), convs.map((l) => l.cycles as number[][]));
  const twins = fidelity(known.map((l) => model[l.index]), known.map((l) => byShape.get(l.index) as number[][]));
  const t = performance.now();
  const cv = fitBismoCloud();
  ctx.log(`cost-table: bismo-cloud grid search and cross-validation ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const cvErrors = cv.crossValidation.flatMap((c) => c.errors).sort((x, y) => x - y);
  const q = (p: number) => cvErrors[Math.min(cvErrors.length - 1, Math.floor(p * cvErrors.length))];
  const sameEveryFold = cv.crossValidation.every((c) => JSON.stringify(c.parameters) === JSON.stringify(cv.best));
  const all53 = model.reduce((s, g) => s + g[7][7], 0);
  const row = (what: string, f: Fidelity, totals: string) => [what, f.cells, pct(f.medianError), pct(f.p90Error), pct(f.maxError), totals, +f.rho8.toFixed(4)];
  const table: BenchTable = {
    title: "bismo-cloud vs HAQ's BISMO cloud latency table (MobileNet-V2, batch 16; per-cell relative error, %)",
    headers: ['cells', 'n', 'median %', 'p90 %', 'max %', 'worst uniform total %', 'rho 8/8'],
    rows: [
      row('27 given layers (fit)', fit, pct(worstTotal(fit)).toString()),
      row('26 given convolutions (fc left out)', conv, pct(worstTotal(conv)).toString()),
      row('45 layers whose shape has a row', twins, pct(worstTotal(twins)).toString()),
      ['leave-one-shape-out CV (23 shapes)', cvErrors.length, pct(q(0.5)), pct(q(0.9)), pct(cvErrors[cvErrors.length - 1]), '', ''],
    ],
    note:
      `fitted over ${cv.candidates} candidates: ${JSON.stringify(cv.best)} (mean |log ratio| ${cv.score.toFixed(4)}; runner-up ${cv.runnerUp.score.toFixed(4)}); ` +
      `CV refits ${sameEveryFold ? 'the same parameters in every fold' : 'other parameters in some folds'}; the fc row is a 1280->1000 layer's (90% off as the listed 1280->100); ` +
      `all 53 layers at 8/8: ${(all53 / 1e6).toFixed(2)} M cycles`,
  };
  return {
    table,
    figures: {
      bismo_cloud_cell_median_pct: pct(fit.medianError),
      bismo_cloud_cell_p90_pct: pct(fit.p90Error),
      bismo_cloud_cell_max_pct: pct(fit.maxError),
      bismo_cloud_conv_cell_max_pct: pct(conv.maxError),
      bismo_cloud_uniform_total_worst_pct: pct(worstTotal(fit)),
      bismo_cloud_rho_8bit: +fit.rho8.toFixed(4),
      bismo_cloud_known_shapes_p90_pct: pct(twins.p90Error),
      bismo_cloud_cv_median_pct: pct(q(0.5)),
      bismo_cloud_cv_p90_pct: pct(q(0.9)),
      bismo_cloud_all53_8bit_mcycles: +(all53 / 1e6).toFixed(3),
    },
  };
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
  const golden = bitFusionGolden();
  figures.bitfusion_golden_rows = golden.rows;
  figures.bitfusion_golden_within_2pct_cycles_5pct_energy = golden.within;
  figures.bitfusion_golden_max_cycle_error_pct = pct(golden.maxCycleError);
  figures.bitfusion_golden_max_energy_error_pct = pct(golden.maxEnergyError);
  const reference: BenchTable = {
    title: 'BitFusion vs its own simulator (hsharma35/bitfusion)',
    headers: ['reference', 'rows', 'within tolerance', 'exact cycles', 'max cycle error %', 'max energy error %'],
    rows: [
      ['published sweep: 61 layers x 5 arrays', ref.rows, ref.within, ref.exact, null, null],
      ['golden single layers x 20 bit pairs (cost table)', golden.rows, golden.within, null, pct(golden.maxCycleError), pct(golden.maxEnergyError)],
    ],
    note: 'sweep: each row re-simulated with its own N, M, buffers and bandwidth, tolerance 1% cycles; golden: each shape costed as a one-layer model, tolerance 2% cycles and 5% energy (test/fixtures/reference/bitfusion)',
  };
  const bismo = bismoFidelity(ctx);
  Object.assign(figures, bismo.figures);
  return { id: 'cost-table', title: 'Hardware cost tables', figures, tables: [timing, bismo.table, reference] };
}
