/**
 * Accuracy recovery (shared/quant/recovery.ts, gptq.ts): GPTQ on a layer whose answer is known
 * by hand; on every layer of a CNN with plain, grouped, strided, dilated, depthwise convolutions,
 * a MatMul and a Gemm, the output error on the calibration data (computed directly from the
 * layer inputs) is never above rounding to nearest, and bias correction zeroes the mean output
 * shift; the stored form round-trips.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { decodeModel } from '../../../shared/onnx/proto';
import type { FloatTensor } from '../../../shared/onnx/runtime';
import { openLayerInputs } from '../../../shared/quant/calibration';
import type { QuantizedLayer } from '../../../shared/quant/evaluator';
import { matchLayers, quantizableWeights } from '../../../shared/quant/fake-quant';
import { bilinearForm, gptqCodes, inverseUpperFactor, quadraticForm } from '../../../shared/quant/gptq';
import { convGeometry } from '../../../shared/quant/layer-stats';
import {
  computeRecovery,
  decodeQuantizedLayer,
  encodeQuantizedLayer,
  missingRecoveryBits,
  recoveryKeys,
  searchRecoveryBits,
  storedRecovery,
  storeRecoveryOnce,
  type RecoveryResult,
} from '../../../shared/quant/recovery';
import { FsStore } from '../../../shared/store/fs-store';
import { expectClose } from '../../helpers/expect-close';
import { tempDir } from '../../helpers/tmp';
import { after } from 'node:test';
import { join } from 'node:path';
import { buildMixedCnn, layerInputVectors, randomInputs, type SmallModel } from './small-models';

const tmp = tempDir('haq-recovery');
after(tmp.cleanup);

describe('GPTQ on a layer with a known answer', () => {
  it('two perfectly correlated inputs: the first rounding error is carried to the second input', () => {
    // y = 0.3 x1 + 0.3 x2 + 1.0 x3 with x1 = x2 and x3 independent, 2-bit weights (codes -1..1, scale 1).
    // Rounding to nearest gives codes [0, 0, 1]: error (0.6 x)^2. GPTQ rounds w1 to 0 and moves its
    // error onto w2 (0.3 + 0.3 = 0.6 -> 1): codes [0, 1, 1], error (0.4 x)^2.
    const xs = [
      [1, 1, 0.5],
      [-2, -2, 1],
      [0.5, 0.5, -1],
      [3, 3, 0.25],
    ];
    const h = new Float64Array(9);
    for (const x of xs) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) h[i * 3 + j] += x[i] * x[j];
    const res = gptqCodes(Float32Array.of(0.3, 0.3, 1), 1, 3, h, Float32Array.of(1), 2, { actOrder: false });
    assert.deepEqual(Array.from(res.codes), [0, 1, 1]);
    const sumX2 = xs.reduce((a, x) => a + x[0] * x[0], 0);
    expectClose(res.errorRounded, 0.36 * sumX2, { rtol: 1e-12 });
    expectClose(res.error, 0.16 * sumX2, { rtol: 1e-12 });
  });

  it('bilinearForm is a H b^T (written out by hand), quadraticForm is d H d^T', () => {
    const h = Float64Array.of(4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2);
    const a = Float64Array.of(1, 0, -2);
    const b = Float64Array.of(0.5, 2, 1);
    // H b = [4.5, 6.7, 2.65]; a . (H b) = 4.5 - 2 x 2.65
    expectClose(bilinearForm(a, h, b, 3), -0.8, { rtol: 1e-12 });
    // H a = [3, 0.6, -3.5]; a . (H a) = 3 + 7
    expectClose(quadraticForm(a, h, 3), 10, { rtol: 1e-12 });
    expectClose(bilinearForm(a, h, b, 3), bilinearForm(b, h, a, 3), { rtol: 1e-12 });
  });

  it('inverseUpperFactor: U^T U is the inverse of H', () => {
    const h = Float64Array.of(4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2);
    const u = inverseUpperFactor(h, 3)!;
    for (let i = 0; i < 3; i++) for (let j = 0; j < i; j++) assert.equal(u[i * 3 + j], 0, 'upper triangular');
    const hinv = new Float64Array(9);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) hinv[i * 3 + j] += u[k * 3 + i] * u[k * 3 + j];
    const product = new Float64Array(9);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) product[i * 3 + j] += h[i * 3 + k] * hinv[k * 3 + j];
    expectClose(product, [1, 0, 0, 0, 1, 0, 0, 0, 1], { atol: 1e-12 });
  });
});

describe('recovery on every kind of layer (output error computed directly on the calibration data)', () => {
  let m: SmallModel;
  const calib = randomInputs(41, [24, 1, 10, 10]);
  const results = new Map<string, RecoveryResult>();
  let vectors: Array<{ groups: number; perGroup: number[][][] }>;

  before(async () => {
    m = await buildMixedCnn();
    for (const mode of ['none', 'bias', 'full'] as const) results.set(mode, await computeRecovery(m.bytes, m.table, calib, { mode, batchSize: 10 }));
    const model = decodeModel(m.bytes);
    const candidates = matchLayers(model, m.table);
    const reader = await openLayerInputs(m.bytes, m.table, calib, { batchSize: 24 });
    const inputs = (await reader.batches().next()).value!;
    await reader.release();
    vectors = m.table.layers.map((layer, i) => {
      const c = candidates[i];
      const geometry = c.op === 'Conv' ? convGeometry(model.graph!.node![c.nodeIndex], [c.weightDims[2], c.weightDims[3]], [layer.inputShape[2], layer.inputShape[3]]) : null;
      const groups = c.op === 'Conv' ? layer.groups : 1;
      return { groups, perGroup: Array.from({ length: groups }, (_, g) => layerInputVectors(inputs.get(layer.inputName) as FloatTensor, groups, geometry, g)) };
    });
  });

  /** Per output channel over the calibration vectors: mean of (Q x + delta) - W x, and sum of its square. */
  function outputShift(layer: number, q: QuantizedLayer): { mean: number[]; squared: number } {
    const weights = quantizableWeights(decodeModel(m.bytes), m.table)[layer];
    const { groups, perGroup } = vectors[layer];
    const outs = m.table.layers[layer].outChannels;
    const rowsPerGroup = outs / groups;
    const cols = perGroup[0][0].length;
    const at = (w: Float32Array, row: number, j: number) => (weights.channelAxis === 0 ? w[row * cols + j] : w[j * outs + row]);
    const mean: number[] = [];
    let squared = 0;
    for (let row = 0; row < outs; row++) {
      const vs = perGroup[Math.floor(row / rowsPerGroup)];
      let sum = 0;
      for (const v of vs) {
        let d = q.biasDelta?.[row] ?? 0;
        for (let j = 0; j < cols; j++) d += (at(q.values, row, j) - at(weights.weight, row, j)) * v[j];
        sum += d;
        squared += d * d;
      }
      mean.push(sum / vs.length);
    }
    return { mean, squared };
  }

  it('full recovery (GPTQ + bias correction) and bias correction never increase the output error over rounding to nearest', () => {
    let strictlyBetter = 0;
    m.table.layers.forEach((layer, i) => {
      for (let bits = 2; bits <= 8; bits++) {
        const rounded = outputShift(i, results.get('none')!.layers[i][bits]).squared;
        for (const mode of ['bias', 'full'] as const) {
          const recovered = outputShift(i, results.get(mode)!.layers[i][bits]).squared;
          assert.ok(recovered <= rounded * (1 + 1e-9) + 1e-12, `${layer.name} ${bits} bits ${mode}: ${recovered} > ${rounded}`);
          if (mode === 'full' && recovered < 0.9 * rounded) strictlyBetter++;
        }
      }
    });
    assert.ok(strictlyBetter >= 20, `GPTQ cut the error by 10 % or more in ${strictlyBetter} of 35 (layer, bits) pairs`);
  });

  it('bias correction zeroes the mean output shift on the calibration data (every layer here has a bias slot, the MatMul through its Add)', () => {
    const weights = quantizableWeights(decodeModel(m.bytes), m.table);
    assert.deepEqual(weights.map((w) => w.bias !== null), [true, true, true, true, true], 'the MatMul + Add bias counts');
    m.table.layers.forEach((layer, i) => {
      for (const bits of [2, 4, 8]) {
        const shifted = outputShift(i, results.get('none')!.layers[i][bits]).mean;
        const scale = Math.max(...shifted.map(Math.abs), 1e-6);
        for (const mode of ['bias', 'full'] as const) {
          const { mean } = outputShift(i, results.get(mode)!.layers[i][bits]);
          expectClose(mean, mean.map(() => 0), { atol: 1e-5 * scale + 1e-7 }, `${layer.name} ${bits} bits ${mode}`);
        }
      }
    });
  });

  it("keeps the symmetric code range; a channel's scale is rounding's, shrunk by at most half; values are codes x scale", () => {
    for (const [i] of m.table.layers.entries()) {
      for (let bits = 1; bits <= 8; bits++) {
        const [none, full] = [results.get('none')!.layers[i][bits], results.get('full')!.layers[i][bits]];
        full.scales.forEach((s, c) => assert.ok(s <= none.scales[c] && s >= 0.49 * none.scales[c], `${bits} bits, channel ${c}: ${s} vs ${none.scales[c]}`));
        if (bits === 1) assert.deepEqual(full.scales, none.scales);
        const qmax = bits === 1 ? 1 : 2 ** (bits - 1) - 1;
        assert.ok(full.codes.every((c) => c >= -qmax && c <= qmax));
        const inner = full.axis === null ? 1 : full.shape.slice(full.axis + 1).reduce((a, b) => a * b, 1);
        full.values.forEach((v, k) => assert.equal(v, Math.fround(full.codes[k] * full.scales[full.axis === null ? 0 : Math.floor(k / inner) % full.scales.length])));
      }
    }
  });

  it('is deterministic, and the stored objects read back identical', async () => {
    const again = await computeRecovery(m.bytes, m.table, calib, { mode: 'full', batchSize: 10 });
    const full = results.get('full')!;
    for (const [i, perBits] of full.layers.entries()) {
      for (const b of full.bits) {
        assert.deepEqual(again.layers[i][b].codes, perBits[b].codes);
        const decoded = decodeQuantizedLayer(encodeQuantizedLayer(m.table.layers[i].name, perBits[b]), 'x');
        assert.deepEqual({ ...decoded, name: undefined }, { ...perBits[b], name: undefined });
      }
    }
    const store = new FsStore(tmp.dir);
    const keys = recoveryKeys(m.table.modelHash, 'abc', 'full', true);
    let computed = 0;
    // Streamed layer by layer to the store (what Prepare does): the result holds none of them.
    const compute: Parameters<typeof storeRecoveryOnce>[4] = async (layerBits, onLayer) => {
      computed++;
      const streamed = await computeRecovery(m.bytes, m.table, calib, { mode: 'full', batchSize: 10, layerBits, onLayer });
      assert.ok(streamed.layers.every((perBits) => perBits.length === 0), 'no layer held');
      return streamed;
    };
    assert.equal((await storeRecoveryOnce(store, keys, m.table, full.bits, compute)).cached, false);
    assert.equal((await storeRecoveryOnce(store, keys, m.table, full.bits, compute)).cached, true, 'the second search of the same model and data reuses them');
    assert.equal(computed, 1);
    const source = storedRecovery(store, keys.layer, m.table);
    for (const [i, perBits] of full.layers.entries()) {
      for (const b of full.bits) assert.deepEqual((await source.layer(i, b)).codes, perBits[b].codes, `streamed layer ${i} at ${b} bits`);
    }
    await assert.rejects(storedRecovery(store, (l, b) => keys.layer(l === 0 ? 1 : l, b), m.table).layer(0, 3), /holds grouped at 3 bits, not conv at 3/);
  });
});

describe('which bitwidths a search computes, and when the stored set is complete', () => {
  const cases: Array<{ range: { minBits: number; maxBits: number }; bits: number[] }> = [
    { range: { minBits: 2, maxBits: 8 }, bits: [2, 3, 4, 5, 6, 7, 8] },
    { range: { minBits: 1, maxBits: 8 }, bits: [1, 2, 3, 4, 5, 6, 7, 8] },
    { range: { minBits: 3, maxBits: 6 }, bits: [3, 4, 5, 6, 8] },
    { range: { minBits: 8, maxBits: 8 }, bits: [8] },
    { range: { minBits: 1, maxBits: 1 }, bits: [1, 8] },
  ];
  for (const c of cases) {
    it(`bits ${c.range.minBits}..${c.range.maxBits}: ${c.bits.join(', ')} (8 for the pinned layers and the 8/8 reference)`, () => {
      assert.deepEqual(searchRecoveryBits(c.range), c.bits);
    });
  }

  const names = ['conv1', 'conv2', 'fc'];
  const marker = (bits: number[], layers = names) => ({ layers, bits });
  const completeness: Array<{ what: string; done: ReturnType<typeof marker> | null; wanted: number[]; missing: number[]; complete: number[] }> = [
    { what: 'no marker: everything', done: null, wanted: [2, 3, 8], missing: [2, 3, 8], complete: [2, 3, 8] },
    { what: 'a marker with every wanted bitwidth: nothing', done: marker([1, 2, 3, 4, 5, 6, 7, 8]), wanted: [2, 3, 4, 5, 6, 7, 8], missing: [], complete: [1, 2, 3, 4, 5, 6, 7, 8] },
    { what: 'a narrower earlier search: only the new bitwidths, the old ones kept', done: marker([4, 5, 6, 8]), wanted: [2, 3, 4, 5, 6, 7, 8], missing: [2, 3, 7], complete: [2, 3, 4, 5, 6, 7, 8] },
    { what: 'a wider earlier search: nothing, the marker unchanged', done: marker([2, 3, 4, 5, 6, 7, 8]), wanted: [3, 4, 8], missing: [], complete: [2, 3, 4, 5, 6, 7, 8] },
    { what: 'disjoint bitwidths: the union', done: marker([8]), wanted: [1], missing: [1], complete: [1, 8] },
    { what: 'a marker for other layers: everything, its bits not counted', done: marker([2, 3, 8], ['conv1', 'fc']), wanted: [2, 8], missing: [2, 8], complete: [2, 8] },
    { what: 'a marker for the same layers in another order: everything', done: marker([8], ['conv2', 'conv1', 'fc']), wanted: [8], missing: [8], complete: [8] },
    { what: 'wanted bitwidths unsorted and repeated', done: marker([8]), wanted: [5, 8, 2, 5], missing: [2, 5], complete: [2, 5, 8] },
  ];
  for (const c of completeness) {
    it(c.what, () => {
      assert.deepEqual(missingRecoveryBits(c.done, names, c.wanted), { missing: c.missing, complete: c.complete });
    });
  }

  describe('in the store', () => {
    let m: SmallModel;
    const calib = randomInputs(43, [12, 1, 10, 10]);
    let reference: RecoveryResult;
    before(async () => {
      m = await buildMixedCnn();
      reference = await computeRecovery(m.bytes, m.table, calib, { mode: 'full', batchSize: 6, bits: [3, 4, 8] });
    });

    /** storeRecoveryOnce with a compute that records what it was asked for. */
    function recorder(store: FsStore) {
      const asked: number[][][] = [];
      const puts: string[] = [];
      const keys = recoveryKeys(m.table.modelHash, 'calib-sha', 'full', true);
      const run = (bits: number[]) =>
        storeRecoveryOnce(store, keys, m.table, bits, async (layerBits, onLayer) => {
          asked.push(layerBits);
          return computeRecovery(m.bytes, m.table, calib, {
            mode: 'full',
            batchSize: 6,
            layerBits,
            onLayer: async (i, perBits) => {
              perBits.forEach((l, b) => l && puts.push(keys.layer(i, b)));
              await onLayer(i, perBits);
            },
          });
        });
      return { asked, puts, keys, run };
    }

    it('a later search with other bitwidths computes only those; the stored ones stay and are listed', async () => {
      const store = new FsStore(join(tmp.dir, 'widen'));
      const r = recorder(store);
      const first = await r.run([8]);
      assert.deepEqual([first.cached, first.computedBits], [false, [8]]);
      const before8 = await store.get(r.keys.layer(0, 8));
      const second = await r.run([3, 4, 8]);
      assert.deepEqual([second.cached, second.computedBits], [false, [3, 4]]);
      assert.deepEqual(r.asked[1], m.table.layers.map(() => [3, 4]), 'only the new bitwidths, every layer');
      assert.ok(!r.puts.slice(m.table.layers.length).some((k) => k.endsWith('-w8.bin')), 'no 8-bit object rewritten');
      assert.deepEqual(await store.get(r.keys.layer(0, 8)), before8);
      assert.deepEqual((await r.run([4, 8])).cached, true);
      const source = storedRecovery(store, r.keys.layer, m.table);
      for (const [i] of m.table.layers.entries()) {
        for (const b of [3, 4, 8]) assert.deepEqual((await source.layer(i, b)).codes, reference.layers[i][b].codes, `layer ${i} at ${b} bits`);
      }
    });

    it('an attempt stopped part way resumes: layers stored at every missing bitwidth are skipped', async () => {
      const store = new FsStore(join(tmp.dir, 'resume'));
      const r = recorder(store);
      await r.run([3, 8]);
      // As if the attempt had stopped before layer 2's 8-bit object and the marker.
      await store.delete(r.keys.complete);
      await store.delete(r.keys.layer(2, 8));
      const again = await r.run([3, 8]);
      assert.equal(again.resumedLayers, m.table.layers.length - 1);
      assert.deepEqual(
        r.asked[1],
        m.table.layers.map((_, i) => (i === 2 ? [3, 8] : [])),
      );
      assert.deepEqual((await storedRecovery(store, r.keys.layer, m.table).layer(2, 8)).codes, reference.layers[2][8].codes);
      assert.equal((await r.run([3, 8])).cached, true);
    });
  });

  it("eval and export: computeRecovery's layerBits computes only each layer's listed bitwidths", async () => {
    const m = await buildMixedCnn();
    const calib = randomInputs(44, [12, 1, 10, 10]);
    const all = await computeRecovery(m.bytes, m.table, calib, { mode: 'full', batchSize: 6, bits: [2, 5] });
    const layerBits = m.table.layers.map((_, i) => (i === 1 ? [] : [i % 2 ? 2 : 5]));
    const some = await computeRecovery(m.bytes, m.table, calib, { mode: 'full', batchSize: 6, layerBits });
    assert.deepEqual(some.bits, [2, 5]);
    some.layers.forEach((perBits, i) => {
      assert.deepEqual(Object.keys(perBits).map(Number), layerBits[i], `layer ${i}`);
      for (const b of layerBits[i]) assert.deepEqual(perBits[b].codes, all.layers[i][b].codes);
    });
    await assert.rejects(computeRecovery(m.bytes, m.table, calib, { mode: 'full', layerBits: [[8]] }), /bitwidths given for 1 layers, the model has \d+/);
  });
});
