import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { bismoLayerCycles, bismoMatmulShape, bismoMatmulStages } from '../../../shared/hardware/bismo';
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

const bits = [1, 2, 3, 4, 5, 6, 7, 8];

test('BISMO stages: execute = ceil(M/Dm)*ceil(N/Dn)*ceil(K/Dk)*w*a; fetch = the busier read channel; cycles >= both', () => {
  for (const [w, a] of [[1, 1], [2, 3], [8, 8]]) {
    const s = bismoMatmulStages(edge, { m: 100, k: 1000, n: 50 }, w, a);
    assert.equal(s.executeCycles, Math.ceil(100 / 8) * Math.ceil(50 / 8) * Math.ceil(1000 / 256) * w * a);
    // 64-bit channels: a 256-bit word takes 4 cycles; weights read once (they fit), activations once per plane.
    assert.equal(s.fetchCycles, Math.max(100 * 4 * w * 4, a * 50 * 4 * 4));
    assert.equal(s.resultCycles, 0, 'result writes are not charged unless resultBitsPerCycle is given');
    assert.ok(s.cycles >= Math.max(s.fetchCycles, s.executeCycles));
  }
});

// Closed forms of the cloud schedules (docs/hardware.md), per image, on shapes of HAQ's table.
const closedForms: Array<[string, { m: number; k: number; n: number }, (w: number, a: number) => number]> = [
  // 960 x 160 weights, 49 pixels: stream; fetch-bound w(959 + 4a) or execute-bound 237wa + 48a + w - 1.
  ['pointwise 160->960 at 7x7', { m: 960, k: 160, n: 49 }, (w, a) => Math.max(w * (959 + 4 * a), 237 * w * a + 48 * a + w - 1)],
  // 16 depthwise channels, 28x28: every activation plane streams 784 columns; w - 1 to drain.
  ['depthwise group at 28x28', { m: 16, k: 144, n: 784 }, (w, a) => 784 * a + w - 1],
  // 64 x 384 weights, 196 pixels, w = 8: preload; weights (512 cycles) then 12 of 13 column tiles per plane.
  ['pointwise 192->64 at 14x14, w = 8', { m: 64, k: 192, n: 196 }, (_w, a) => (a >= 5 ? 512 + a * (12 * 32 + 1) - 1 : NaN)],
];

test('BISMO closed forms on the cloud array (table-driven over every bit pair)', () => {
  for (const [what, shape, expected] of closedForms) {
    for (const w of bits) {
      for (const a of bits) {
        const want = expected(w, a);
        if (Number.isNaN(want) || (what.includes('w = 8') && w !== 8)) continue;
        assert.equal(bismoMatmulStages(cloud, shape, w, a).cycles, want, `${what} at w${w}a${a}`);
      }
    }
  }
});

test('BISMO layers: im2col per image; depthwise packs Dm channels (block-diagonal); linear takes the batch as columns', () => {
  const c = conv({ inChannels: 32, outChannels: 64, kernel: [3, 3], stride: [1, 1], groups: 1, inputShape: [1, 32, 28, 28], outputShape: [1, 64, 28, 28] });
  assert.deepEqual(bismoMatmulShape(cloud, layerGeometry(c, 16)), { count: 16, m: 64, k: 288, n: 784 });
  assert.deepEqual(bismoMatmulShape({ ...cloud, batching: 'batch' }, layerGeometry(c, 16)), { count: 1, m: 64, k: 288, n: 784 * 16 });
  const dw = conv({ inChannels: 40, outChannels: 40, kernel: [3, 3], stride: [1, 1], groups: 40, inputShape: [1, 40, 28, 28], outputShape: [1, 40, 28, 28] });
  assert.deepEqual(bismoMatmulShape(cloud, layerGeometry(dw, 2)), { count: 3 * 2, m: 16, k: 9 * 16, n: 784 });
  assert.deepEqual(bismoMatmulShape(edge, layerGeometry(dw, 1)), { count: 5, m: 8, k: 9 * 8, n: 784 });
  const shape = bismoMatmulShape(cloud, layerGeometry(dw, 2));
  assert.equal(bismoLayerCycles(cloud, layerGeometry(dw, 2), 4, 4), shape.count * bismoMatmulStages(cloud, shape, 4, 4).cycles);
  const fcLayer: LayerInfo = { ...c, kind: 'linear', op: 'Gemm', inChannels: 1280, outChannels: 1000, kernel: [1, 1], groups: 1, inputShape: [1, 1280], outputShape: [1, 1000] };
  assert.deepEqual(bismoMatmulShape(cloud, layerGeometry(fcLayer, 16)), { count: 1, m: 1000, k: 1280, n: 16 });
});

test('BISMO buffers: weights that do not fit run in blocks of rows that do (activations re-read per block); K split when a word does not fit', () => {
  const shape = { m: 256, k: 2048, n: 196 }; // 32 weight tiles x 8 words x 8 planes = 2048 words per DPU row
  const deep = { ...edge, lhsBufferWords: 2048 };
  const fits = bismoMatmulStages(deep, shape, 8, 8);
  assert.equal(bismoMatmulStages({ ...edge, lhsBufferWords: 8192 }, shape, 8, 8).cycles, fits.cycles, 'a deeper buffer than needed changes nothing');
  // 1024 words: two blocks of 128 rows, each exactly the product of 128 rows.
  const blocks = bismoMatmulStages(edge, shape, 8, 8);
  const half = bismoMatmulStages(edge, { ...shape, m: 128 }, 8, 8);
  assert.equal(blocks.cycles, 2 * half.cycles);
  assert.ok(blocks.cycles >= fits.cycles && blocks.fetchCycles > fits.fetchCycles);
  // 32 words: not even one 8-word x 8-plane tile fits; K in chunks of 4 words.
  const chunked = bismoMatmulStages({ ...edge, lhsBufferWords: 32 }, shape, 8, 8);
  const chunk = bismoMatmulStages({ ...edge, lhsBufferWords: 32 }, { ...shape, k: 1024 }, 8, 8);
  assert.equal(chunked.cycles, 2 * chunk.cycles);
  assert.throws(() => bismoMatmulStages({ ...edge, lhsBufferWords: 4 }, shape, 8, 8), /cannot hold one 8-bit weight word/);
});

test('BISMO result stage: charged when resultBitsPerCycle is given, and bounds wide outputs of shallow layers', () => {
  const shape = { m: 256, k: 16, n: 3136 };
  const free = bismoMatmulStages(cloud, shape, 1, 1);
  const charged = bismoMatmulStages({ ...cloud, resultBitsPerCycle: 256 }, shape, 1, 1);
  assert.equal(charged.resultCycles, (256 * 3136 * 32) / 256);
  assert.equal(charged.bound, 'result');
  assert.equal(charged.cycles, charged.resultCycles);
  assert.ok(free.cycles < charged.cycles);
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
