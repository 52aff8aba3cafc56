/**
 * BitFusion acceptance: every row of the published simulator sweep
 * (results/bitfusion-eyeriss-sim-sweep.csv of hsharma35/bitfusion, joined to layer shapes in
 * test/fixtures/reference/bitfusion/bitfusion-benchmarks.json) re-simulated with the row's
 * array configuration. Cycles must be within 1%; the count of exact matches of all ten result
 * columns is reported too.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { perfFactor, simulateBitFusionConv, tileComputeCycles } from '../../../shared/hardware/bitfusion';
import { builtinTargets, type BitFusionTarget } from '../../../shared/hardware/targets';
import { convArgs, csvRowCount, loadReference, referenceRows, referenceTarget, type ReferenceRow } from '../../fixtures/reference/bitfusion/reference';

const reference = loadReference();
const csvRows = csvRowCount();
const targetFor = (row: ReferenceRow): BitFusionTarget => referenceTarget(reference, row);

const columns: Array<[string, keyof ReturnType<typeof simulateBitFusionConv>]> = [
  ['Cycles', 'cycles'],
  ['Memory wait cycles', 'memWaitCycles'],
  ['WBUF Read', 'wbufRead'],
  ['WBUF Write', 'wbufWrite'],
  ['IBUF Read', 'ibufRead'],
  ['IBUF Write', 'ibufWrite'],
  ['OBUF Read', 'obufRead'],
  ['OBUF Write', 'obufWrite'],
  ['DRAM Read', 'dramRead'],
  ['DRAM Write', 'dramWrite'],
];

test('speed factor floor(8/max(a,2)) * floor(8/max(w,2)) over all bit pairs', () => {
  const t = builtinTargets.bitfusion as BitFusionTarget;
  const perOperand = (b: number) => (b <= 2 ? 4 : b <= 4 ? 2 : 1);
  for (let a = 1; a <= 8; a++) for (let w = 1; w <= 8; w++) assert.equal(perfFactor(t, a, w), perOperand(a) * perOperand(w), `a=${a} w=${w}`);
});

test('whole-layer compute formula: conv and im2col (README "Model")', () => {
  const t = builtinTargets.bitfusion as BitFusionTarget;
  // conv: b*ceil(OC/M)*OH*OW*K^2*ceil(IC/(N*pf)) = 16*2*13*13*9*ceil(384/64) (a=w=4, pf=4)
  assert.equal(tileComputeCycles(t, { ic: 384, oc: 64, oh: 13, ow: 13, b: 16, kh: 3, kw: 3 }, 4, 4, false), 16 * 2 * 169 * 9 * 6);
  // im2col: b*OH*OW*ceil(OC/M)*ceil(K^2*IC/(N*pf)) with a=w=8 (pf=1)
  assert.equal(tileComputeCycles(t, { ic: 3, oc: 96, oh: 55, ow: 55, b: 16, kh: 11, kw: 11 }, 8, 8, true), 16 * 55 * 55 * 3 * Math.ceil(363 / 16));
});

const rows = referenceRows(reference);
let within = 0;
let exact = 0;
const misses: string[] = [];
for (const { net, layer, row } of rows) {
  const stats = simulateBitFusionConv(targetFor(row), convArgs(layer.sim_args));
  if (Math.abs(stats.cycles - row.Cycles) <= 0.01 * row.Cycles) within++;
  else misses.push(`${net} ${layer.layer} M=${row.M} bw=${row['Bandwidth (bits/cycle)']}: ${stats.cycles} vs ${row.Cycles}`);
  if (columns.every(([csv, key]) => stats[key] === row[csv])) exact++;
}

test(`BitFusion reference: ${within} of ${csvRows} CSV rows within 1% cycles (${exact} exact in all ten columns)`, () => {
  assert.equal(rows.length, csvRows, 'every CSV row is mapped to a layer');
  assert.equal(csvRows, 305);
  assert.deepEqual(misses, []);
  assert.equal(within, 305);
  assert.equal(exact, 305);
});
