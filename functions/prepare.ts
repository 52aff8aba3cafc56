/**
 * Prepare: the first step of a search. Turns the execution input (S3 event or direct request)
 * into a search: merges models/<name>/search.json and the request over the defaults, takes the
 * results-prefix lock, parses the model into its layer table, checks the data, calibrates the
 * activation ranges and computes the accuracy recovery of every layer at every bitwidth the
 * search can choose (minBits..maxBits and 8), and writes config.json, layers.json,
 * calibration.json, recovery/*.bin, status.json.
 * Idempotent: a retry with the same input derives the same search id and rewrites the same objects.
 */
import { limits } from '../shared/limits';
import { SearchConfig } from '../shared/config';
import { checkSampleShape, inputBatch, limitSplit, loadDataset, requireSplit } from '../shared/data/dataset';
import { InvalidInputError } from '../shared/errors';
import { modelKeys, searchKeys } from '../shared/keys';
import { modelInput } from '../shared/onnx/layers';
import { decodeModel, valueInfoDims } from '../shared/onnx/proto';
import { isClassifierShape, resolveMetric } from '../shared/data/metrics';
import { checkRewardFits, defaultReward } from '../shared/search/reward';
import { inspectDecoded, modelHash } from '../shared/onnx/inspect';
import { calibrate } from '../shared/quant/calibration';
import { computeRecovery, recoveryKeys, searchRecoveryBits, storeRecoveryOnce } from '../shared/quant/recovery';
import { putJson } from '../shared/store/object-store';
import { parse, parseJsonText } from '../shared/validate';
import { PrepareInput, type PrepareOutput } from './lib/contracts';
import { acquireLock } from './lib/lock';
import { instrument, lambdaHandler, type HandlerDeps } from './lib/runtime';
import { searchRequest } from './lib/search-input';
import { lockScope, writeStatus } from './lib/status';
import { quantSettings, rewardSplits } from './lib/search-context';

/** A model's search.json: any SearchConfig field except the ones the request itself fixes. */
const SearchJson = SearchConfig.innerType().omit({ model: true, modelKey: true, dataPrefix: true }).partial().strict();

export const makeHandler = (deps: HandlerDeps) =>
  instrument('prepare', deps, async (event: unknown): Promise<PrepareOutput> => {
    const input = parse(PrepareInput, event, 'Prepare input');
    const request = searchRequest(input.event);
    const { stores } = deps;

    // Defaults < models/<name>/search.json < the request's own fields.
    const searchJsonKey = modelKeys.searchConfig(request.model);
    let fromFile: Record<string, unknown> = {};
    if (request.source === 's3-event' || request.modelKey === modelKeys.model(request.model)) {
      if (await stores.models.exists(searchJsonKey)) {
        const text = new TextDecoder().decode(await stores.models.get(searchJsonKey, { maxBytes: limits.jsonBytes }));
        fromFile = parseJsonText(SearchJson, text, `${searchJsonKey} in ${stores.models.location}`);
      }
    }
    const requested = parse(
      SearchConfig,
      { ...fromFile, ...request.overrides, model: request.model, modelKey: request.modelKey, dataPrefix: request.dataPrefix },
      'search config',
    );
    // The metric and reward, resolved once from the model's first output and the data (validated below).
    const modelBytes = await stores.models.get(requested.modelKey, { maxBytes: limits.modelBytes });
    const model = decodeModel(modelBytes, requested.modelKey);
    // The selection and test splits are only scored at the end, but a broken one (NaN/Inf, wrong shape) fails here, before any work.
    const dataset = await loadDataset(stores.models, requested.dataPrefix, ['calib', 'val', 'select', 'test']);
    const val = requireSplit(dataset, 'val');
    const firstOutput = model.graph?.output?.[0];
    // An output without a declared shape counts as a classifier's when the data has labels.
    const firstOutputDims = (firstOutput && valueInfoDims(firstOutput)) ?? (val.labels ? [null, null] : []);
    const metric = resolveMetric(requested.metric, { hasLabels: val.labels !== null, firstOutputDims });
    const config = { ...requested, metric, reward: requested.reward === 'auto' ? defaultReward(metric, { hasLabels: val.labels !== null }) : requested.reward };
    checkRewardFits(config.reward, { hasLabels: val.labels !== null, classifier: isClassifierShape(firstOutputDims) });
    if (config.warmupEpisodes > config.episodes && config.strategy === 'ddpg') {
      // Not an error: HAQ's warm-up is random episodes; fewer episodes just means all random.
      deps.logger.warn('every episode is a warm-up episode', { episodes: config.episodes, warmupEpisodes: config.warmupEpisodes });
    }
    const id = request.searchId;
    await acquireLock(stores.work, lockScope(config), id, deps.now());
    await putJson(stores.work, searchKeys.config(id), config);
    await writeStatus(
      stores.work,
      id,
      { state: 'running', model: config.model, round: 0, episodesDone: 0, episodesTotal: config.episodes, bestReward: null, error: undefined },
      deps.now(),
    );

    // Without calib-inputs.npy the activations are calibrated on the reward's part of val (never the selection split).
    const rewardVal = (await rewardSplits(stores, config, val)).val;
    const calib = dataset.calib ?? rewardVal;
    // The data fixes the input shape of the layer table (config.inputShape, if any, must agree).
    const data = { sampleShape: val.sampleShape, what: `${config.dataPrefix}val-inputs.npy` };
    const layers = await inspectDecoded(model, modelHash(modelBytes), { inputShape: config.inputShape, data, what: config.modelKey });
    await putJson(stores.work, searchKeys.layers(id), layers);
    const input0 = modelInput(model, config.modelKey);
    checkSampleShape(input0.dims, calib.sampleShape, `${config.dataPrefix}${dataset.calib ? 'calib' : 'val'}-inputs.npy`, input0.name);
    if (dataset.test) checkSampleShape(input0.dims, dataset.test.sampleShape, `${config.dataPrefix}test-inputs.npy`, input0.name);
    if (dataset.select) checkSampleShape(input0.dims, dataset.select.sampleShape, `${config.dataPrefix}select-inputs.npy`, input0.name);
    const rewardSamples = limitSplit(rewardVal, config.evalSamples).samples;
    if (config.evalShards > rewardSamples) {
      throw new InvalidInputError(`evalShards ${config.evalShards} is more than the ${rewardSamples} validation samples the reward uses; use at most ${rewardSamples}`);
    }
    if (config.constraint.kind !== 'size') {
      // One calibration: the same samples give the activation ranges and the recovered weights.
      const samples = limitSplit(calib, config.calibSamples);
      const calibData = inputBatch(samples, 0, samples.samples);
      const calibration = await calibrate(modelBytes, layers, calibData, { percentile: config.quant.percentile });
      await putJson(stores.work, searchKeys.calibration(id), calibration);
      const { recovery, perChannel } = quantSettings(config);
      if (recovery !== 'none') {
        // Every layer at every bitwidth the search can choose, once per model and calibration data: any policy of any
        // search with these bits reads them; a later search with other bits computes only the ones missing.
        const keys = recoveryKeys(layers.modelHash, calibration.dataSha256, recovery, perChannel);
        const bits = searchRecoveryBits(config);
        const { cached, computedBits, resumedLayers, result } = await storeRecoveryOnce(stores.work, keys, layers, bits, (layerBits, onLayer) =>
          computeRecovery(modelBytes, layers, calibData, { mode: recovery, perChannel, layerBits, onLayer }),
        );
        deps.logger.info('recovery', { mode: recovery, bits, cached, computedBits, resumedLayers, statsMs: result && Math.round(result.statsMs), solveMs: result && Math.round(result.solveMs) });
      }
    }
    return {
      searchId: id,
      round: 0,
      executionStartRound: 0,
      shards: Array.from({ length: config.evalShards }, (_, i) => i),
      initAgent: true,
    };
  });

export const handler = lambdaHandler('prepare', makeHandler);
