/**
 * Loads what a step needs for one search from the stores, and keeps the expensive parts
 * (model bytes, the onnxruntime evaluator, the data split) for the next call of the same
 * search: a warm Lambda, or the embedded runner's whole search, builds one session.
 */
import { limits } from '../../shared/limits';
import { SearchConfig } from '../../shared/config';
import { dataFiles, dataKey, limitSplit, loadDataset, loadSplit, requireSplit, sampleRange, type Split } from '../../shared/data/dataset';
import { carveSelection } from '../../shared/data/selection-split';
import { InvalidDataError } from '../../shared/errors';
import { CostTable } from '../../shared/hardware/types';
import { searchKeys } from '../../shared/keys';
import { LayerTable } from '../../shared/onnx/types';
import { Calibration } from '../../shared/quant/calibration';
import { prepareQuantEvaluator, type QuantEvaluator, type QuantEvaluatorOptions, type RecoverySource } from '../../shared/quant/evaluator';
import type { QuantizationRecord, RecoveryMode } from '../../shared/quant/policy';
import { recoveryKeys, storedRecovery } from '../../shared/quant/recovery';
import { getJson } from '../../shared/store/object-store';
import type { MetricName } from '../../shared/data/metrics';
import type { Stores } from './runtime';

export const readLayers = (stores: Stores, id: string) => getJson(stores.work, searchKeys.layers(id), LayerTable);
export const readCostTable = (stores: Stores, id: string) => getJson(stores.work, searchKeys.costTable(id), CostTable);
export const readCalibration = (stores: Stores, id: string) => getJson(stores.work, searchKeys.calibration(id), Calibration);
export const readSearchConfig = (stores: Stores, id: string) => getJson(stores.work, searchKeys.config(id), SearchConfig);

/** How a search quantizes. Model-size mode: k-means weights, float activations (DESIGN.md "The algorithm"). */
export function quantSettings(config: SearchConfig): Required<Pick<QuantEvaluatorOptions, 'weightMode' | 'perChannel' | 'clipMethod' | 'seed'>> & { recovery: RecoveryMode } {
  const kmeans = config.constraint.kind === 'size';
  return {
    weightMode: kmeans ? 'kmeans' : 'linear',
    perChannel: config.quant.weightGranularity === 'per-channel',
    clipMethod: config.quant.activationCalibration,
    seed: config.seed,
    // Recovery reconstructs linear weights; k-means centroids are fitted to the weights already.
    recovery: kmeans ? 'none' : config.quant.recovery,
  };
}

/** The recovered weights Prepare stored for a search, read on first use (null: recovery off). */
export function searchRecovery(stores: Stores, config: SearchConfig, layers: LayerTable, calibration: Calibration | null): RecoverySource | null {
  const { recovery, perChannel } = quantSettings(config);
  if (recovery === 'none' || !calibration) return null;
  return storedRecovery(stores.work, recoveryKeys(layers.modelHash, calibration.dataSha256, recovery, perChannel).layer, layers);
}

/** What policy.json records so that haq eval/export quantize exactly as the search did. */
export function quantizationRecord(config: SearchConfig, calibration: Calibration | null): QuantizationRecord {
  const q = quantSettings(config);
  return {
    weights: q.weightMode,
    perChannel: q.perChannel,
    clipMethod: calibration ? q.clipMethod : null,
    percentile: config.quant.percentile,
    calibSamples: calibration?.samples ?? 0,
    calibSha256: calibration?.dataSha256 ?? null,
    recovery: q.recovery,
    seed: config.seed,
  };
}

/** Shard s of n: contiguous, sizes differ by at most one sample. */
export function shardSplit(split: Split, shard: number, shardCount: number): Split {
  if (shardCount <= 1) return split;
  return sampleRange(split, Math.floor((split.samples * shard) / shardCount), Math.floor((split.samples * (shard + 1)) / shardCount));
}

export interface EvalContext {
  config: SearchConfig;
  /** Where the selection split comes from: the data folder's select-inputs.npy, or carved out of val. */
  selectSource: 'file' | 'carved';
  /** The carved selection split (selectSource 'carved'); never given to the reward path. */
  carvedSelect: Split | null;
  /** The selection split, loaded on first use by selectSplitOf. */
  select?: Promise<Split>;
  /** The search's metric (resolved by Prepare). */
  metric: MetricName | undefined;
  evaluator: QuantEvaluator;
  /** The search's recovered weights (null: recovery off); Finalize exports the policy's. */
  recovery: RecoverySource | null;
  val: Split;
  /** Shard splits are made once, so the evaluator's FP32 reference cache (per split) holds. */
  shards: Map<string, Split>;
  /** The held-out test split, loaded on first use by testSplitOf (null: the data folder has none). */
  test?: Promise<Split | null>;
  /** Set once the slow-path warning (plain graph, see shared/onnx/runtime-weights.ts) was logged. */
  slowPathLogged?: boolean;
}

/**
 * The data folder's held-out test split (test-inputs.npy, test-labels.npy optional), whole
 * (evalSamples limits only the validation split), or null when the folder has none. Loaded
 * once per context: the same Split object keeps the evaluator's FP32 reference cache (fidelity
 * mode) valid across the policies evaluated on it.
 */
export function testSplitOf(stores: Stores, ctx: EvalContext): Promise<Split | null> {
  if (!ctx.test) {
    // meta.json (uint8 scaling) applies to every split of the folder: the validation split's copy.
    ctx.test = loadSplit(stores.models, ctx.config.dataPrefix, 'test', ctx.val.meta);
    ctx.test.catch(() => (ctx.test = undefined));
  }
  return ctx.test;
}

/**
 * The data folder's selection split (select-inputs.npy), or the part carved out of val. Read
 * only by the final choice (Evaluate's candidate mode), never by the reward path; loaded once
 * per context.
 */
export function selectSplitOf(stores: Stores, ctx: EvalContext): Promise<Split> {
  if (!ctx.select) {
    ctx.select = ctx.carvedSelect
      ? Promise.resolve(ctx.carvedSelect)
      : loadSplit(stores.models, ctx.config.dataPrefix, 'select', ctx.val.meta).then((s) => {
          if (!s) throw new InvalidDataError(`${ctx.config.dataPrefix}${dataFiles.inputs('select')} disappeared during the search; restore it`);
          return s;
        });
    ctx.select.catch(() => (ctx.select = undefined));
  }
  return ctx.select;
}

/**
 * The validation split the reward sees and where the selection split comes from: with
 * select-inputs.npy in the data folder, all of val; without, val minus the carved selection
 * part (shared/data/selection-split.ts). The selection file itself is not read here.
 */
export async function rewardSplits(stores: Stores, config: SearchConfig, val: Split): Promise<{ val: Split; carvedSelect: Split | null }> {
  if (await stores.models.exists(dataKey(config.dataPrefix, dataFiles.inputs('select')))) return { val, carvedSelect: null };
  const carved = carveSelection(val);
  return { val: carved.reward, carvedSelect: carved.select };
}

/** Evaluators per search id; the oldest is released beyond `keep` (a Lambda serves one search at a time). */
export class EvaluatorCache {
  private readonly entries = new Map<string, Promise<EvalContext>>();
  constructor(private readonly keep = 2) {}

  get(stores: Stores, searchId: string): Promise<EvalContext> {
    let entry = this.entries.get(searchId);
    if (!entry) {
      entry = loadEvalContext(stores, searchId);
      entry.catch(() => this.entries.delete(searchId));
      this.entries.set(searchId, entry);
      while (this.entries.size > this.keep) {
        const [oldest, ctx] = this.entries.entries().next().value as [string, Promise<EvalContext>];
        this.entries.delete(oldest);
        void ctx.then((c) => c.evaluator.close()).catch(() => undefined);
      }
    }
    return entry;
  }

  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map((p) => p.then((c) => c.evaluator.close()).catch(() => undefined)));
  }
}

async function loadEvalContext(stores: Stores, searchId: string): Promise<EvalContext> {
  const config = await readSearchConfig(stores, searchId);
  const [layers, calibration, modelBytes, dataset] = await Promise.all([
    readLayers(stores, searchId),
    config.constraint.kind === 'size' ? Promise.resolve(null) : readCalibration(stores, searchId),
    stores.models.get(config.modelKey, { maxBytes: limits.modelBytes }),
    loadDataset(stores.models, config.dataPrefix, ['val']),
  ]);
  const recovery = searchRecovery(stores, config, layers, calibration);
  const evaluator = await prepareQuantEvaluator(modelBytes, layers, calibration, { ...quantSettings(config), recovery });
  const splits = await rewardSplits(stores, config, requireSplit(dataset, 'val'));
  const val = limitSplit(splits.val, config.evalSamples);
  return {
    config,
    metric: config.metric === 'auto' ? undefined : config.metric,
    evaluator,
    recovery,
    val,
    selectSource: splits.carvedSelect ? 'carved' : 'file',
    carvedSelect: splits.carvedSelect,
    shards: new Map(),
  };
}
