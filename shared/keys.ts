/**
 * Every object key, built in one place (DESIGN.md "Object layout"). Keys depend only on
 * (searchId, round, index), so a retried handler rewrites the same object.
 */
const pad = (n: number, width = 5): string => String(n).padStart(width, '0');

export const modelKeys = {
  model: (name: string) => `models/${name}/model.onnx`,
  searchConfig: (name: string) => `models/${name}/search.json`,
  dataPrefix: (name: string) => `models/${name}/data/`,
  data: (name: string, file: string) => `models/${name}/data/${file}`,
};

export const searchKeys = {
  prefix: (id: string) => `searches/${id}/`,
  status: (id: string) => `searches/${id}/status.json`,
  config: (id: string) => `searches/${id}/config.json`,
  layers: (id: string) => `searches/${id}/layers.json`,
  costTable: (id: string) => `searches/${id}/cost-table.json`,
  calibration: (id: string) => `searches/${id}/calibration.json`,
  baseline: (id: string) => `searches/${id}/baseline.json`,
  agent: (id: string, round: number) => `searches/${id}/agent/round-${pad(round)}.bin`,
  replay: (id: string, round: number) => `searches/${id}/replay/round-${pad(round)}.bin`,
  policies: (id: string, round: number) => `searches/${id}/rounds/${pad(round)}/policies.json`,
  simulation: (id: string, round: number, index: number) => `searches/${id}/rounds/${pad(round)}/sim/${pad(index, 3)}.json`,
  evaluation: (id: string, round: number, index: number) => `searches/${id}/rounds/${pad(round)}/eval/${pad(index, 3)}.json`,
  /** One shard of a policy's evaluation when the validation set is split (config.evalShards > 1). */
  evaluationShard: (id: string, round: number, index: number, shard: number) =>
    `searches/${id}/rounds/${pad(round)}/eval/${pad(index, 3)}.shard-${pad(shard, 3)}.json`,
  result: (id: string, round: number, index: number) => `searches/${id}/rounds/${pad(round)}/results/${pad(index, 3)}.json`,
  roundSummary: (id: string, round: number) => `searches/${id}/rounds/${pad(round)}/summary.json`,
  history: (id: string) => `searches/${id}/history.json`,
  best: (id: string) => `searches/${id}/best.json`,
  /** The candidates the final choice is made among (shared/search/selection.ts). */
  selectionPlan: (id: string) => `searches/${id}/selection/plan.json`,
  /** One candidate's evaluations on the selection and test splits. */
  selectionResult: (id: string, index: number) => `searches/${id}/selection/${pad(index, 3)}.json`,
};

/** Work bucket, outside any one search: the lock that lets one search at a time write a results prefix. */
export const lockKeys = {
  search: (model: string, target: string, constraint: string) => `locks/${model}/${target}/${constraint}.json`,
};

/** Work bucket, shared by all searches: derived data cached under the model's content hash. */
export const cacheKeys = {
  /** A cost table per (model hash, target id incl. batch, cost-model version); see shared/hardware/cost-cache.ts. */
  costTable: (modelHash: string, targetId: string, version: number) => `cache/cost-tables/${modelHash}/${targetId}-v${version}.json`,
  /** Recovered weights per (layer, bits) for a model, its calibration samples and settings; `complete.json` last (shared/quant/recovery.ts). */
  recoveryLayer: (modelHash: string, calibSha256: string, settings: string, layer: number, bits: number) =>
    `cache/recovery/${modelHash}/${calibSha256}/${settings}/${pad(layer, 4)}-w${bits}.bin`,
  recoveryComplete: (modelHash: string, calibSha256: string, settings: string) => `cache/recovery/${modelHash}/${calibSha256}/${settings}/complete.json`,
};

/** Sweeps in the work bucket: the plan (models x targets x constraints) a sweep runs. */
export const sweepKeys = {
  plan: (sweepId: string) => `sweeps/${sweepId}/plan.json`,
};

/** Results bucket: policies/<model>/<target>/<constraint>/<searchId>/... and latest.json. */
export const resultKeys = {
  constraintLabel: (kind: string, ratio: number) => `${kind}-${ratio}`,
  prefix: (model: string, target: string, constraint: string) => `policies/${model}/${target}/${constraint}/`,
  policy: (model: string, target: string, constraint: string, id: string) => `policies/${model}/${target}/${constraint}/${id}/policy.json`,
  report: (model: string, target: string, constraint: string, id: string) => `policies/${model}/${target}/${constraint}/${id}/report.html`,
  quantModel: (model: string, target: string, constraint: string, id: string) => `policies/${model}/${target}/${constraint}/${id}/model.quant.onnx`,
  latest: (model: string, target: string, constraint: string) => `policies/${model}/${target}/${constraint}/latest.json`,
  sweep: (sweepId: string) => `sweeps/${sweepId}/comparison.json`,
  sweepReport: (sweepId: string) => `sweeps/${sweepId}/report.html`,
};
