/**
 * Layer statistics (shared/quant/layer-stats.ts) against a direct computation in JS: the
 * patches of plain, padded, grouped, strided, dilated and SAME-padded convolutions, and the
 * rows of Gemm/MatMul inputs, summed as x x^T; large feature maps read on a grid of positions.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { layerInputBytesPerSample, openLayerInputs, passBatchSize, PASS_MEMORY_BYTES } from '../../../shared/quant/calibration';
import { convGeometry, layerStatistics, positionSteps } from '../../../shared/quant/layer-stats';
import { decodeModel } from '../../../shared/onnx/proto';
import { matchLayers } from '../../../shared/quant/fake-quant';
import { expectClose } from '../../helpers/expect-close';
import { buildMixedCnn, layerInputVectors, randomInputs } from './small-models';

describe('the batch size of a pass over the calibration samples', () => {
  it('fits the per-sample bytes into PASS_MEMORY_BYTES, between 1 and the maximum', () => {
    const cases: Array<[perSample: number, max: number | undefined, batch: number]> = [
      [1, undefined, 64],
      [PASS_MEMORY_BYTES / 64, undefined, 64],
      [PASS_MEMORY_BYTES / 10, undefined, 10],
      [PASS_MEMORY_BYTES / 10 + 1, undefined, 9],
      [PASS_MEMORY_BYTES * 3, undefined, 1],
      [1, 16, 16],
    ];
    for (const [perSample, max, batch] of cases) assert.equal(passBatchSize(perSample, max), batch, `${perSample} bytes per sample`);
  });

  it('counts each distinct layer input once, float32, without the batch dim', async () => {
    const m = await buildMixedCnn();
    const sizes = new Map(m.table.layers.map((l) => [l.inputName, l.inputShape.slice(1).reduce((a, b) => a * b, 1)]));
    assert.equal(layerInputBytesPerSample(m.table), 4 * [...sizes.values()].reduce((a, b) => a + b, 0));
    assert.ok(sizes.size <= m.table.layers.length);
  });

  it('the default batch gives the statistics of an explicit one (up to float summation order)', async () => {
    const m = await buildMixedCnn();
    const calib = randomInputs(4, [6, 1, 10, 10]);
    const [byDefault, byOne] = [await layerStatistics(m.bytes, m.table, calib), await layerStatistics(m.bytes, m.table, calib, { batchSize: 1 })];
    byDefault.forEach((s, i) => {
      assert.equal(s.count, byOne[i].count);
      expectClose(s.gram, byOne[i].gram, { rtol: 1e-5, atol: 1e-4 }, `${s.name} gram`);
    });
  });
});

describe('layerStatistics', () => {
  for (const [label, maxPositions] of [
    ['every output position', undefined],
    ['a grid of at most 7 output positions per sample (large feature maps)', 7],
  ] as const) {
    it(`matches x x^T, sum and count of the patches / rows computed directly, for every layer and group: ${label}`, async () => {
      const m = await buildMixedCnn();
      const calib = randomInputs(3, [5, 1, 10, 10]);
      const stats = await layerStatistics(m.bytes, m.table, calib, { batchSize: 2, maxPositions });
      const model = decodeModel(m.bytes);
      const candidates = matchLayers(model, m.table);
      const reader = await openLayerInputs(m.bytes, m.table, calib, { batchSize: 5 });
      const inputs = (await reader.batches().next()).value!;
      await reader.release();
      assert.deepEqual(stats.map((s) => [s.name, s.groups, s.cols, s.unit]), [
        ['conv', 1, 9, 9],
        ['grouped', 2, 18, 9],
        ['dw', 6, 9, 9],
        ['mm', 1, 180, 1],
        ['fc', 1, 12, 1],
      ]);
      m.table.layers.forEach((layer, i) => {
        const c = candidates[i];
        const x = inputs.get(layer.inputName)!;
        const geometry = c.op === 'Conv' ? convGeometry(model.graph!.node![c.nodeIndex], [c.weightDims[2], c.weightDims[3]], [layer.inputShape[2], layer.inputShape[3]]) : null;
        // The positions read: the grid of positionSteps (row-major per sample, as layerInputVectors lists them).
        const steps = geometry && maxPositions ? positionSteps(geometry.outSize, maxPositions) : [1, 1];
        const read = (k: number) => {
          if (!geometry) return true;
          const p = k % (geometry.outSize[0] * geometry.outSize[1]);
          return Math.floor(p / geometry.outSize[1]) % steps[0] === 0 && (p % geometry.outSize[1]) % steps[1] === 0;
        };
        if (geometry && maxPositions) assert.ok(stats[i].count <= 5 * maxPositions && stats[i].count < 5 * geometry.outSize[0] * geometry.outSize[1], `${layer.name} thinned`);
        const s = stats[i];
        for (let g = 0; g < s.groups; g++) {
          const vectors = layerInputVectors(x, s.groups, geometry, g).filter((_, k) => read(k));
          assert.equal(s.count, vectors.length, `${layer.name} count`);
          const gram = new Float64Array(s.cols * s.cols);
          const sum = new Float64Array(s.cols);
          for (const v of vectors) {
            for (let a = 0; a < s.cols; a++) {
              sum[a] += v[a];
              for (let b = 0; b < s.cols; b++) gram[a * s.cols + b] += v[a] * v[b];
            }
          }
          expectClose(s.gram.subarray(g * s.cols * s.cols, (g + 1) * s.cols * s.cols), gram, { atol: 1e-4, rtol: 1e-5 });
          expectClose(s.sum.subarray(g * s.cols, (g + 1) * s.cols), sum, { atol: 1e-4, rtol: 1e-5 });
        }
      });
    });
  }

  it('positionSteps thins the larger axis first, down to at most maxPositions', () => {
    const cases: Array<[[number, number], number, [number, number]]> = [
      [[28, 28], 1024, [1, 1]],
      [[112, 112], 1024, [4, 4]],
      [[1, 21922], 1024, [1, 22]],
      [[172, 264], 1024, [6, 8]],
    ];
    for (const [outSize, max, want] of cases) {
      const steps = positionSteps(outSize, max);
      assert.deepEqual(steps, want, `${outSize}`);
      assert.ok(Math.ceil(outSize[0] / steps[0]) * Math.ceil(outSize[1] / steps[1]) <= max);
    }
  });

  it('resolves auto_pad SAME_UPPER / SAME_LOWER and explicit pads to the output size onnxruntime computes', () => {
    const node = (attrs: Record<string, unknown>) => ({
      attribute: Object.entries(attrs).map(([name, v]) => (typeof v === 'string' ? { name, s: new TextEncoder().encode(v) } : { name, ints: v as number[] })),
    });
    const upper = convGeometry(node({ auto_pad: 'SAME_UPPER', strides: [2, 2] }), [3, 3], [7, 8]);
    assert.deepEqual([upper.pads, upper.outSize], [[1, 0, 1, 1], [4, 4]]);
    const lower = convGeometry(node({ auto_pad: 'SAME_LOWER', strides: [2, 2] }), [3, 3], [7, 8]);
    assert.deepEqual([lower.pads, lower.outSize], [[1, 1, 1, 0], [4, 4]]);
    const explicit = convGeometry(node({ pads: [1, 0, 2, 1], dilations: [2, 1] }), [3, 3], [10, 10]);
    assert.deepEqual([explicit.pads, explicit.outSize], [[1, 0, 2, 1], [9, 9]]);
  });
});
