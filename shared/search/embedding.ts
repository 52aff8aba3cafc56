import type { LayerInfo } from '../onnx/types';

/**
 * HAQ's state embedding (lib/env/linear_quantize_env.py `_build_state_embedding`): one row
 * of 10 features per step, min-max normalised over the episode's steps. An episode walks
 * the layers in order with a weight step then an activation step per layer (2L steps);
 * in model-size mode activations stay float and there are only the L weight steps.
 *
 * Unlike the reference, the table is built once from the layer table and never mutated:
 * the previous-action feature is filled into a fresh copy for each step of each episode.
 */
export type StepKind = 'weight' | 'activation';

export interface Step {
  layer: number;
  kind: StepKind;
}

/** Feature order; PREV_ACTION is set per step, the rest come from the layer. */
export const FEATURES = [
  'layerIndex',
  'inChannels',
  'outChannels',
  'kernel',
  'stride',
  'inputFeatureMapSize',
  'params',
  'isDepthwise',
  'isWeight',
  'previousAction',
] as const;
export const STATE_SIZE = FEATURES.length;
const PREV_ACTION = STATE_SIZE - 1;

export interface Embedding {
  steps: Step[];
  /** [steps, STATE_SIZE], previous-action column left at 0. */
  features: Float32Array;
}

export function episodeSteps(layerCount: number, activations: boolean): Step[] {
  const steps: Step[] = [];
  for (let layer = 0; layer < layerCount; layer++) {
    steps.push({ layer, kind: 'weight' });
    if (activations) steps.push({ layer, kind: 'activation' });
  }
  return steps;
}

/** Spatial size of a layer's input: H x W for an NCHW input, 1 for a linear layer's [N, K]. */
function featureMapSize(layer: LayerInfo): number {
  const s = layer.inputShape;
  return s.length >= 4 ? s.slice(2).reduce((p, x) => p * x, 1) : 1;
}

function rawFeatures(layer: LayerInfo, kind: StepKind): number[] {
  return [
    layer.index,
    layer.inChannels,
    layer.outChannels,
    Math.max(layer.kernel[0], layer.kernel[1]),
    Math.max(layer.stride[0], layer.stride[1]),
    featureMapSize(layer),
    layer.params,
    layer.kind === 'depthwise' ? 1 : 0,
    kind === 'weight' ? 1 : 0,
    0,
  ];
}

/**
 * Builds the normalised table. A feature that is constant over the steps becomes 0 (HAQ
 * leaves it raw, which puts e.g. a constant channel count of 64 next to features in [0, 1]).
 */
export function buildEmbedding(layers: readonly LayerInfo[], activations: boolean): Embedding {
  const steps = episodeSteps(layers.length, activations);
  const rows = steps.map((s) => rawFeatures(layers[s.layer], s.kind));
  const features = new Float32Array(steps.length * STATE_SIZE);
  for (let f = 0; f < PREV_ACTION; f++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const r of rows) {
      lo = Math.min(lo, r[f]);
      hi = Math.max(hi, r[f]);
    }
    rows.forEach((r, t) => {
      features[t * STATE_SIZE + f] = hi > lo ? (r[f] - lo) / (hi - lo) : 0;
    });
  }
  return { steps, features };
}

/** The state of step t: a new array, with the previous action (in [0, 1]) filled in. */
export function stepState(embedding: Embedding, t: number, previousAction: number): Float32Array {
  const state = embedding.features.slice(t * STATE_SIZE, (t + 1) * STATE_SIZE);
  state[PREV_ACTION] = previousAction;
  return state;
}

/** HAQ starts each episode with previous action 1 (the 8-bit end of the range). */
export const INITIAL_PREVIOUS_ACTION = 1;
