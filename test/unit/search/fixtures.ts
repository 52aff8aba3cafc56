import { proportionSe } from '../../../shared/data/metrics';
import type { SearchConfigInput } from '../../../shared/config';
import { SearchConfig } from '../../../shared/config';
import type { CostTable, Grid8 } from '../../../shared/hardware/types';
import { searchKeys } from '../../../shared/keys';
import type { LayerInfo, LayerTable } from '../../../shared/onnx/types';
import type { LayerBits, Policy } from '../../../shared/quant/policy';
import type { EvaluationResult, SimulationResult } from '../../../shared/search/results';
import { putJson, type ObjectStore } from '../../../shared/store/object-store';

/** A small CNN's layer table (shapes resolved for a 1x3x32x32 input). */
export function tinyLayers(): LayerTable {
  const mk = (index: number, name: string, kind: LayerInfo['kind'], cin: number, cout: number, k: number, s: number, hw: number, groups = 1): LayerInfo => {
    const linear = kind === 'linear';
    const out = linear ? 1 : Math.ceil(hw / s);
    const params = linear ? cin * cout : (cout * (cin / groups) * k * k);
    return {
      index,
      name,
      kind,
      op: linear ? 'Gemm' : 'Conv',
      inChannels: cin,
      outChannels: cout,
      kernel: [k, k],
      stride: [s, s],
      groups,
      inputShape: linear ? [1, cin] : [1, cin, hw, hw],
      outputShape: linear ? [1, cout] : [1, cout, out, out],
      params,
      macs: params * out * out,
      inputName: `${name}_in`,
      weightName: `${name}.weight`,
      biasName: null,
      outputName: `${name}_out`,
    };
  };
  const layers = [
    mk(0, 'conv1', 'conv', 3, 16, 3, 1, 32),
    mk(1, 'dw2', 'depthwise', 16, 16, 3, 2, 32, 16),
    mk(2, 'pw2', 'conv', 16, 32, 1, 1, 16),
    mk(3, 'conv3', 'conv', 32, 64, 3, 2, 16),
    mk(4, 'conv4', 'conv', 64, 64, 3, 1, 8),
    mk(5, 'fc', 'linear', 64, 10, 1, 1, 1),
  ];
  return {
    modelHash: 'tiny-hash',
    inputShape: [1, 3, 32, 32],
    layers,
    totals: { params: layers.reduce((s, l) => s + l.params, 0), macs: layers.reduce((s, l) => s + l.macs, 0) },
    skipped: [],
  };
}

/**
 * A hand-made cost table: bit-serial latency (BISMO-like, cycles ~ MACs x w x a / 64 plus a
 * weight fetch ~ params x w / 8) and an energy that weights memory traffic more.
 */
export function tinyCostTable(layers: LayerTable): CostTable {
  const grid = (f: (w: number, a: number) => number): Grid8 =>
    Array.from({ length: 8 }, (_, w) => Array.from({ length: 8 }, (_, a) => f(w + 1, a + 1)));
  return {
    target: { name: 'tiny-serial', kind: 'bismo' },
    batch: 1,
    modelHash: layers.modelHash,
    layers: layers.layers.map((l) => {
      const cycles = (w: number, a: number): number => (l.macs * w * a) / 64 + (l.params * w) / 8 + 100;
      return {
        name: l.name,
        latencyCycles: grid(cycles),
        latencyMs: grid((w, a) => cycles(w, a) / 1e5),
        energyUj: grid((w, a) => (l.macs * w * a) / 1e6 + (l.params * w + l.macs * a) / 2e5),
        params: l.params,
      };
    }),
  };
}

/**
 * A synthetic accuracy (the neighbour mock of the evaluator): FP32 90 %, each layer loses
 * sens x 2^-(bits-1) points for its weights and activations; the depthwise layer and the
 * activations of conv4 are the sensitive ones.
 */
export const FP32_TOP1 = 90;
const SENS: Record<string, [number, number]> = {
  conv1: [6, 6],
  dw2: [20, 4],
  pw2: [4, 3],
  conv3: [3, 3],
  conv4: [2, 14],
  fc: [5, 2],
};
export function syntheticTop1(bits: readonly LayerBits[]): number {
  let drop = 0;
  for (const b of bits) {
    const [sw, sa] = SENS[b.name] ?? [1, 1];
    drop += sw * 2 ** -(b.wBits - 1) + (b.aBits === null ? 0 : sa * 2 ** -(b.aBits - 1));
  }
  return Math.max(0, FP32_TOP1 - 4 * drop);
}

export function evaluation(top1: number): EvaluationResult {
  const top1Se = proportionSe(top1, 1000);
  return { top1, top1Se, top5: null, mode: 'labels', samples: 1000, seconds: 0, metric: 'top1', score: top1, scoreSe: top1Se, crossEntropy: null, kl: null, sqnrDb: null, cosine: null };
}

/** Per-layer costs of a policy from the cost table (the simulate step's neighbour). */
export function simulate(table: CostTable, layers: LayerTable, policy: Policy): SimulationResult {
  let latencyMs = 0;
  let energyUj = 0;
  let sizeBytes = 0;
  const per = policy.layers.map((b, i) => {
    const c = table.layers[i];
    const lat = c.latencyMs[b.wBits - 1][(b.aBits ?? 8) - 1];
    const en = c.energyUj![b.wBits - 1][(b.aBits ?? 8) - 1];
    const size = (layers.layers[i].params * b.wBits) / 8;
    latencyMs += lat;
    energyUj += en;
    sizeBytes += size;
    return { name: b.name, latencyMs: lat, energyUj: en, sizeBytes: size };
  });
  return { latencyMs, latencyCycles: null, energyUj, sizeBytes, layers: per };
}

/** Writes what Prepare and the baseline evaluation would have written for a search. */
export async function prepareSearch(store: ObjectStore, searchId: string, overrides: Partial<SearchConfigInput> = {}): Promise<{ layers: LayerTable; table: CostTable; config: SearchConfig }> {
  const layers = tinyLayers();
  const table = tinyCostTable(layers);
  const config = SearchConfig.parse({
    model: 'tiny',
    modelKey: 'models/tiny/model.onnx',
    dataPrefix: 'models/tiny/data/',
    hardware: 'tiny-serial',
    episodes: 12,
    warmupEpisodes: 4,
    ddpg: { hidden: [24, 24], batchSize: 16 },
    ...overrides,
  });
  await putJson(store, searchKeys.config(searchId), config);
  await putJson(store, searchKeys.layers(searchId), layers);
  await putJson(store, searchKeys.costTable(searchId), table);
  await putJson(store, searchKeys.baseline(searchId), evaluation(FP32_TOP1));
  return { layers, table, config };
}
