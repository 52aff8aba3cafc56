/**
 * bismo-cloud against HAQ's own BISMO cloud latency table (MobileNet-V2, batch 16,
 * test/fixtures/reference/haq-bismo-cloud): every given cell, the layers whose shape has a row,
 * uniform-bit totals, the per-layer ranking at 8/8, and that the fitted parameters are a local
 * optimum of the fit. Thresholds sit just above today's figures so that any drift fails.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveTarget, type BismoTarget } from '../../../shared/hardware/targets';
import { cloudWith, FIT_GRID, modelCycles, type FitParameters } from '../../fixtures/reference/haq-bismo-cloud/fit';
import { cyclesByShape, fidelity, loadBismoReference, referenceLayerInfo } from '../../fixtures/reference/haq-bismo-cloud/reference';
import { layerGeometry } from '../../../shared/hardware/geometry';
import { bismoLayerCycles } from '../../../shared/hardware/bismo';

const reference = loadBismoReference();
const cloud = resolveTarget('bismo-cloud') as BismoTarget;
const model = modelCycles(cloud, reference.layers, reference.batch);
const given = reference.layers.filter((l) => l.cycles);
const convs = given.filter((l) => l.kind !== 'fc');
const fc = reference.layers.find((l) => l.kind === 'fc');
const byShape = cyclesByShape(reference);

const relErrors = (m: number[][], r: number[][]): number[] => r.flatMap((row, w) => row.map((c, a) => Math.abs(m[w][a] / c - 1)));

test('the reference: 53 layers, 27 with cycles, 45 whose shape has a row; batch 16', () => {
  assert.equal(reference.layers.length, 53);
  assert.equal(given.length, 27);
  assert.equal(byShape.size, 45);
  assert.equal(reference.batch, 16);
  assert.equal(cloud.batch, 16);
});

test('every given convolution cell within 1.2% (depthwise, pointwise, first conv)', () => {
  for (const l of convs) {
    const worst = Math.max(...relErrors(model[l.index], l.cycles as number[][]));
    assert.ok(worst <= 0.012, `layer ${l.index} (${l.kind} ${l.inChannels}->${l.outChannels} at ${l.outSize}): max error ${worst}`);
  }
});

test('given cells: median <= 0.01%, p90 <= 0.3%; uniform totals within 0.4%; 8/8 ranking rho = 1', () => {
  const f = fidelity(
    given.map((l) => model[l.index]),
    given.map((l) => l.cycles as number[][]),
  );
  assert.equal(f.cells, 27 * 64);
  assert.ok(f.medianError <= 1e-4, `median ${f.medianError}`);
  assert.ok(f.p90Error <= 0.003, `p90 ${f.p90Error}`);
  for (const [b, e] of Object.entries(f.uniformTotalError)) assert.ok(Math.abs(e) <= 0.004, `uniform ${b}/${b}: ${e}`);
  assert.ok(f.rho8 >= 0.9999, `rho ${f.rho8}`);
});

test('the 45 layers whose shape has a row (all given ones and 18 odd-indexed twins): p90 <= 0.1%, totals within 0.3%', () => {
  const layers = reference.layers.filter((l) => byShape.has(l.index));
  const f = fidelity(
    layers.map((l) => model[l.index]),
    layers.map((l) => byShape.get(l.index) as number[][]),
  );
  assert.ok(f.medianError <= 1e-4 && f.p90Error <= 0.001, `median ${f.medianError}, p90 ${f.p90Error}`);
  for (const [b, e] of Object.entries(f.uniformTotalError)) assert.ok(Math.abs(e) <= 0.003, `uniform ${b}/${b}: ${e}`);
  assert.ok(f.rho8 >= 0.9999, `rho ${f.rho8}`);
});

test('the fc row is the weight read of a 1280 -> 1000 classifier (within 1.2%); the listed 1280 -> 100 costs 10x less', () => {
  assert.ok(fc?.cycles);
  const g = layerGeometry(referenceLayerInfo(fc, 1000), reference.batch);
  const as1000 = [1, 2, 3, 4, 5, 6, 7, 8].map((w) => [1, 2, 3, 4, 5, 6, 7, 8].map((a) => bismoLayerCycles(cloud, g, w, a)));
  assert.ok(Math.max(...relErrors(as1000, fc.cycles)) <= 0.012);
  for (let w = 1; w <= 8; w++) assert.ok(Math.abs(model[fc.index][w - 1][0] / fc.cycles[w - 1][0] - 0.1) < 0.001);
});

test('fitted parameters are a local optimum: one grid step away on any of them fits worse', () => {
  const score = (p: FitParameters): number => {
    const m = modelCycles(cloudWith(p), given, reference.batch);
    return given.reduce((s, l, i) => s + relErrors(m[i], l.cycles as number[][]).reduce((x, e) => x + Math.abs(Math.log1p(e)), 0), 0);
  };
  const fitted: FitParameters = { dm: 16, dn: 16, dk: 256, lhsFetchBitsPerCycle: 256, rhsFetchBitsPerCycle: 256, batching: 'image' };
  assert.deepEqual(
    Object.fromEntries(Object.keys(fitted).map((k) => [k, cloud[k as keyof FitParameters]])),
    fitted,
  );
  const base = score(fitted);
  for (const key of Object.keys(FIT_GRID) as Array<keyof typeof FIT_GRID>) {
    const values = FIT_GRID[key] as ReadonlyArray<number | string>;
    const at = values.indexOf(fitted[key]);
    for (const j of [at - 1, at + 1]) {
      if (j < 0 || j >= values.length) continue;
      const other = { ...fitted, [key]: values[j] } as FitParameters;
      assert.ok(score(other) > base * 1.5, `${key} = ${values[j]} fits within 1.5x of ${fitted[key]}`);
    }
  }
});
