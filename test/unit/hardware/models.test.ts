import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bismoLayerCycles, bismoMatmulStages } from '../../../shared/hardware/bismo';
import { bitFusionLayerCost } from '../../../shared/hardware/bitfusion';
import { buildCostTable, uniformCosts } from '../../../shared/hardware/cost-table';
import { layerGeometry } from '../../../shared/hardware/geometry';
import { rooflineLayerCost, roundToNative } from '../../../shared/hardware/roofline';
import { resolveTarget, type BismoTarget, type BitFusionTarget, type RooflineTarget } from '../../../shared/hardware/targets';
import type { LayerInfo } from '../../../shared/onnx/types';
import { zooLayerTable } from '../../../shared/zoo/architectures';
import { expectClose } from '../../helpers/expect-close';

const edge = resolveTarget('bismo-edge') as BismoTarget;
const cloud = resolveTarget('bismo-cloud') as BismoTarget;

function conv(partial: Partial<LayerInfo> & Pick<LayerInfo, 'inChannels' | 'outChannels' | 'kernel' | 'stride' | 'groups' | 'inputShape' | 'outputShape'>): LayerInfo {
  const params = partial.outChannels * (partial.inChannels / partial.groups) * partial.kernel[0] * partial.kernel[1];
  return {
    index: 1,
    name: 'layer',
    kind: partial.groups > 1 && partial.groups === partial.inChannels ? 'depthwise' : 'conv',
    op: 'Conv',
    params,
    macs: params * partial.outputShape[2] * partial.outputShape[3],
    inputName: 'x',
    weightName: 'w',
    biasName: null,
    outputName: 'y',
    ...partial,
  };
}

test('BISMO execute stage: ceil(M/Dm) * ceil(N/Dn) * ceil(K/Dk) * w * a', () => {
  for (const [w, a] of [[1, 1], [2, 3], [8, 8]]) {
    const s = bismoMatmulStages(edge, { m: 100, k: 1000, n: 50 }, w, a);
    assert.equal(s.executeCycles, Math.ceil(100 / 8) * Math.ceil(50 / 8) * Math.ceil(1000 / 256) * w * a);
    assert.equal(s.cycles, Math.max(s.fetchCycles, s.executeCycles, s.resultCycles));
  }
});

test('BISMO fetch stage: padded bit-planes over 4 x 64-bit AXI, read once when stripes fit', () => {
  // M = 16 rows, K = 512, N = 64: L stripe = 2 words x w planes, R fits entirely.
  const s = bismoMatmulStages(edge, { m: 16, k: 512, n: 64 }, 4, 2);
  const lhsBits = 16 * 512 * 4;
  const rhsBits = 64 * 512 * 2;
  assert.equal(s.fetchCycles, Math.ceil((lhsBits + rhsBits) / 256));
  assert.equal(s.resultCycles, Math.ceil((16 * 64 * 32) / 256));
  // A K too deep for the buffers: the weight stripe is re-read for every activation tile.
  const tiny = { ...edge, lhsBufferWords: 1, rhsBufferWords: 1 };
  const t = bismoMatmulStages(tiny, { m: 16, k: 512, n: 64 }, 4, 2);
  assert.ok(t.fetchCycles > s.fetchCycles);
});

test('BISMO conv via im2col; depthwise one group at a time', () => {
  const c = conv({ inChannels: 32, outChannels: 64, kernel: [3, 3], stride: [1, 1], groups: 1, inputShape: [1, 32, 28, 28], outputShape: [1, 64, 28, 28] });
  const g = layerGeometry(c, 1);
  assert.equal(bismoLayerCycles(edge, g, 2, 2), bismoMatmulStages(edge, { m: 64, k: 288, n: 784 }, 2, 2).cycles);
  const dw = conv({ inChannels: 32, outChannels: 32, kernel: [3, 3], stride: [1, 1], groups: 32, inputShape: [1, 32, 28, 28], outputShape: [1, 32, 28, 28] });
  assert.equal(bismoLayerCycles(edge, layerGeometry(dw, 1), 4, 4), 32 * bismoMatmulStages(edge, { m: 1, k: 9, n: 784 }, 4, 4).cycles);
});

test('BISMO on MobileNet-V2 (53 layers): uniform totals fall monotonically and smoothly with bits', () => {
  const layers = zooLayerTable('mobilenet-v2');
  assert.equal(layers.layers.length, 53);
  for (const target of [edge, cloud]) {
    const u = uniformCosts(buildCostTable(layers, target));
    for (let b = 2; b <= 8; b++) {
      const lower = u[String(b - 1)].latencyMs;
      const higher = u[String(b)].latencyMs;
      assert.ok(lower < higher, `${target.name}: ${b - 1} bits (${lower} ms) must be faster than ${b} bits (${higher} ms)`);
      // Smooth: one bit less never saves more than the bit-serial ideal b^2/(b-1)^2.
      assert.ok(higher / lower <= (b * b) / ((b - 1) * (b - 1)) + 1e-9, `${target.name}: step ${b - 1}->${b} ratio ${higher / lower}`);
    }
    // Execute-bound at high bits: 8/8 costs at least 4x 2/2 (the ideal is 16x; fetch and result stages cap it).
    assert.ok(u['8'].latencyMs >= 4 * u['2'].latencyMs, `${target.name}: 8/8 ${u['8'].latencyMs} ms vs 2/2 ${u['2'].latencyMs} ms`);
  }
});

test('BitFusion: depthwise runs one group at a time; linear layers as 1x1 convs on a 1x1 map', () => {
  const bf = resolveTarget('bitfusion') as BitFusionTarget;
  const dw = conv({ inChannels: 16, outChannels: 16, kernel: [3, 3], stride: [1, 1], groups: 16, inputShape: [1, 16, 14, 14], outputShape: [1, 16, 14, 14] });
  const single = conv({ inChannels: 1, outChannels: 1, kernel: [3, 3], stride: [1, 1], groups: 1, inputShape: [1, 1, 14, 14], outputShape: [1, 1, 14, 14] });
  assert.equal(bitFusionLayerCost(bf, layerGeometry(dw, 16), 4, 4).cycles, 16 * bitFusionLayerCost(bf, layerGeometry(single, 16), 4, 4).cycles);
  const fc: LayerInfo = { ...single, kind: 'linear', op: 'Gemm', inChannels: 512, outChannels: 10, kernel: [1, 1], groups: 1, inputShape: [1, 512], outputShape: [1, 10], params: 5120, macs: 5120 };
  const g = layerGeometry(fc, 16);
  assert.deepEqual([g.kh, g.oh, g.icPerGroup, g.ocPerGroup, g.batch, g.first], [1, 1, 512, 10, 16, false]);
  // 16 rows x ceil(10/32) x ceil(512/(16*pf)) with pf = 4 at 2/2 bits, plus memory stalls.
  assert.ok(bitFusionLayerCost(bf, g, 2, 2).cycles >= 16 * 1 * Math.ceil(512 / 64));
});

test('roofline precision: rounded up to a native precision; wider than all -> passes of the widest', () => {
  const a100 = resolveTarget('a100') as RooflineTarget;
  const h100 = resolveTarget('h100') as RooflineTarget;
  const table: Array<[RooflineTarget, number, number, number]> = [
    [a100, 1, 4, 1],
    [a100, 3, 4, 1],
    [a100, 4, 4, 1],
    [a100, 5, 8, 1],
    [a100, 8, 8, 1],
    [h100, 2, 8, 1],
    [h100, 4, 8, 1],
    [resolveTarget('cortex-a76') as RooflineTarget, 3, 8, 1],
  ];
  for (const [t, bits, precision, passes] of table) assert.deepEqual(roundToNative(t, bits), { precisionBits: precision, passes }, `${t.name} ${bits} bits`);
  const int4Only = resolveTarget({ kind: 'roofline', name: 'int4', peakOpsPerSecond: { '4': 1e12 }, memoryBandwidthBytesPerSecond: 1e9, batch: 1 }) as RooflineTarget;
  assert.deepEqual(roundToNative(int4Only, 8), { precisionBits: 4, passes: 4 });
});

test('roofline time: max(ops/peak, packed bytes/bandwidth), compute- and memory-bound cases', () => {
  const a100 = resolveTarget('a100') as RooflineTarget;
  const big = conv({ inChannels: 256, outChannels: 256, kernel: [3, 3], stride: [1, 1], groups: 1, inputShape: [1, 256, 56, 56], outputShape: [1, 256, 56, 56] });
  const g = layerGeometry(big, 64);
  const ops = 2 * 256 * 256 * 9 * 56 * 56 * 64;
  const at8 = rooflineLayerCost(a100, g, 8, 8);
  assert.ok(at8.computeBound);
  expectClose(at8.seconds, ops / 624e12, { rtol: 1e-12 }, 'INT8 compute-bound');
  expectClose(rooflineLayerCost(a100, g, 4, 3).seconds, ops / 1248e12, { rtol: 1e-12 }, 'INT4 runs 3/4-bit layers');
  // A linear layer at batch 1 is memory-bound: bytes at the packed bit width.
  const fc: LayerInfo = { ...big, kind: 'linear', op: 'Gemm', inChannels: 4096, outChannels: 4096, kernel: [1, 1], groups: 1, inputShape: [1, 4096], outputShape: [1, 4096], params: 4096 * 4096, macs: 4096 * 4096 };
  const gf = layerGeometry(fc, 1);
  for (const [w, a] of [[8, 8], [4, 8], [2, 2]]) {
    const c = rooflineLayerCost(a100, gf, w, a);
    assert.ok(!c.computeBound);
    expectClose(c.seconds, ((4096 * 4096 * w) / 8 + ((4096 + 4096) * a) / 8) / 2039e9, { rtol: 1e-12 }, `fc ${w}/${a}`);
  }
});

test('roofline energy only when the target defines it', () => {
  const fc: LayerInfo = conv({ inChannels: 64, outChannels: 64, kernel: [1, 1], stride: [1, 1], groups: 1, inputShape: [1, 64, 8, 8], outputShape: [1, 64, 8, 8] });
  assert.equal(rooflineLayerCost(resolveTarget('a100') as RooflineTarget, layerGeometry(fc, 1), 8, 8).energyPj, null);
  const gpu = resolveTarget({ kind: 'roofline', name: 'g', peakOpsPerSecond: { '8': 1e12 }, memoryBandwidthBytesPerSecond: 1e9, batch: 1, energy: { pjPerOp: { '8': 0.5 }, pjPerByte: 10 } }) as RooflineTarget;
  const ops = 2 * 64 * 64 * 64;
  const bytes = 64 * 64 + 2 * 64 * 64;
  expectClose(rooflineLayerCost(gpu, layerGeometry(fc, 1), 8, 8).energyPj ?? NaN, ops * 0.5 + bytes * 10, { rtol: 1e-12 });
});

test('property: BISMO cycles and roofline time never fall when a bit width grows (random layers)', () => {
  const a100 = resolveTarget('a100') as RooflineTarget;
  const orin = resolveTarget('jetson-orin') as RooflineTarget;
  fc.assert(
    fc.property(
      fc.record({
        cIn: fc.integer({ min: 1, max: 512 }),
        cOut: fc.integer({ min: 1, max: 512 }),
        k: fc.constantFrom(1, 3, 5, 7),
        hw: fc.integer({ min: 1, max: 64 }),
        depthwise: fc.boolean(),
        batch: fc.integer({ min: 1, max: 16 }),
        w: fc.integer({ min: 1, max: 7 }),
        a: fc.integer({ min: 1, max: 7 }),
      }),
      ({ cIn, cOut, k, hw, depthwise, batch, w, a }) => {
        const groups = depthwise ? cIn : 1;
        const out = depthwise ? cIn : cOut;
        const layer = conv({ inChannels: cIn, outChannels: out, kernel: [k, k], stride: [1, 1], groups, inputShape: [1, cIn, hw, hw], outputShape: [1, out, hw, hw] });
        const g = layerGeometry(layer, batch);
        for (const t of [edge, cloud]) {
          const c = bismoLayerCycles(t, g, w, a);
          assert.ok(bismoLayerCycles(t, g, w + 1, a) >= c && bismoLayerCycles(t, g, w, a + 1) >= c);
        }
        for (const t of [a100, orin]) {
          const s = rooflineLayerCost(t, g, w, a).seconds;
          assert.ok(rooflineLayerCost(t, g, w + 1, a).seconds >= s && rooflineLayerCost(t, g, w, a + 1).seconds >= s);
        }
      },
    ),
    { seed: 4, numRuns: 300 },
  );
});
