/**
 * The evaluator's per-(layer, bits) caches (quantized weights, fed weights) and the stored
 * recovery's cache are bounded by bytes: with bounds far below what a sequence of policies
 * touches, the held bytes stay within them, what was dropped is made again (read again from the
 * store), and every figure is identical to an evaluator with the default bounds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { calibrate, type Calibration } from '../../../shared/quant/calibration';
import { prepareQuantEvaluator, splitFromTensor, type QuantEvaluatorOptions } from '../../../shared/quant/evaluator';
import type { Policy } from '../../../shared/quant/policy';
import { computeRecovery, encodeQuantizedLayer, recoveryKeys, storedRecovery } from '../../../shared/quant/recovery';
import { FsStore } from '../../../shared/store/fs-store';
import type { GetOptions } from '../../../shared/store/object-store';
import { tempDir } from '../../helpers/tmp';
import { buildCnn, randomInputs, type SmallModel } from './small-models';

/** Far below one policy's weights at a few bitwidths, above any single layer's (the largest holds 280 bytes). */
const BOUND_BYTES = 400;
const BITS = [2, 4, 8];

/** A filesystem store that counts its reads. */
class CountingStore extends FsStore {
  gets = 0;
  override async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    this.gets++;
    return super.get(key, options);
  }
}

describe('bounded caches of the evaluator and the stored recovery', () => {
  const tmp = tempDir('haq-caches');
  after(tmp.cleanup);
  let m: SmallModel;
  let cal: Calibration;
  const split = splitFromTensor(randomInputs(51, [24, 1, 8, 8]));
  /** Policies that revisit earlier (layer, bits) pairs after many others. */
  const sequence = (aBits: number | null): Policy[] => {
    const p = (w: number[]): Policy => ({ model: { name: 'model', hash: m.table.modelHash }, layers: m.table.layers.map((l, i) => ({ name: l.name, wBits: w[i], aBits })) });
    return [p([8, 8, 8]), p([2, 4, 8]), p([4, 2, 2]), p([8, 4, 2]), p([8, 8, 8]), p([2, 4, 8]), p([4, 4, 4])];
  };

  before(async () => {
    m = await buildCnn();
    cal = await calibrate(m.bytes, m.table, randomInputs(50, [32, 1, 8, 8]), { batchSize: 16 });
  });

  /** Evaluates the sequence with default and with tiny bounds: identical results, held bytes within the bound. */
  async function compareBounded(options: QuantEvaluatorOptions, policies: Policy[], bounded: QuantEvaluatorOptions): Promise<void> {
    const free = await prepareQuantEvaluator(m.bytes, m.table, cal, { batchSize: 8, ...options });
    const tight = await prepareQuantEvaluator(m.bytes, m.table, cal, { batchSize: 8, ...options, ...bounded });
    try {
      for (const [k, policy] of policies.entries()) {
        const [a, b] = [await free.evaluate(policy, split, { metric: 'sqnr' }), await tight.evaluate(policy, split, { metric: 'sqnr' })];
        assert.deepEqual({ ...b, seconds: 0 }, { ...a, seconds: 0 }, `policy ${k}`);
        const held = tight.cachedBytes();
        const bound = Math.min(bounded.weightCacheBytes ?? BOUND_BYTES, bounded.feedCacheBytes ?? BOUND_BYTES);
        assert.ok(held.weights <= bound && held.feeds <= bound, `policy ${k}: ${JSON.stringify(held)} bytes held over ${bound}`);
      }
      assert.ok(free.cachedBytes().weights > 2 * BOUND_BYTES, `the default keeps every pair (${free.cachedBytes().weights} bytes): the bound did drop some`);
    } finally {
      await free.close();
      await tight.close();
    }
  }

  for (const { weightMode, aBits } of [
    { weightMode: 'linear' as const, aBits: 8 },
    { weightMode: 'kmeans' as const, aBits: null },
  ]) {
    it(`${weightMode} weights: the weight and feed caches stay within ${BOUND_BYTES} bytes, the figures identical`, async () => {
      await compareBounded({ weightMode }, sequence(aBits), { weightCacheBytes: BOUND_BYTES, feedCacheBytes: BOUND_BYTES });
    });
  }

  it('bounds below any single layer (0 bytes): nothing held, every value made again, the figures identical', async () => {
    await compareBounded({}, sequence(8), { weightCacheBytes: 0, feedCacheBytes: 0 });
  });

  it('stored recovery: within its bound, dropped layers read again from the store, identical; the evaluator over it too', async () => {
    const store = new CountingStore(tmp.dir);
    const keys = recoveryKeys(m.table.modelHash, 'calib', 'full', true);
    const recovered = await computeRecovery(m.bytes, m.table, randomInputs(52, [24, 1, 8, 8]), { mode: 'full', bits: BITS, batchSize: 8 });
    for (const [i, perBits] of recovered.layers.entries()) {
      for (const b of BITS) await store.put(keys.layer(i, b), encodeQuantizedLayer(m.table.layers[i].name, perBits[b]));
    }
    const source = storedRecovery(store, keys.layer, m.table, BOUND_BYTES);
    const pairs = m.table.layers.flatMap((_, i) => BITS.map((b) => [i, b] as const));
    store.gets = 0;
    for (let round = 0; round < 2; round++) {
      for (const [i, b] of pairs) {
        const l = await source.layer(i, b);
        const want = recovered.layers[i][b];
        assert.deepEqual([l.codes, l.scales, l.values, l.biasDelta], [want.codes, want.scales, want.values, want.biasDelta], `layer ${i} at ${b} bits`);
        assert.ok(source.cachedBytes() <= BOUND_BYTES, `${source.cachedBytes()} bytes held`);
      }
    }
    assert.equal(store.gets, 2 * pairs.length, 'every pair read again in the second round: the bound dropped it');

    const tiny = { recovery: storedRecovery(store, keys.layer, m.table, BOUND_BYTES), weightCacheBytes: BOUND_BYTES, feedCacheBytes: BOUND_BYTES };
    await compareBounded({ recovery: storedRecovery(store, keys.layer, m.table) }, sequence(8), tiny);
  });
});
