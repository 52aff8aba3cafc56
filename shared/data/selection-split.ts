/**
 * The selection split: data the search's final choice is made on and the reward never sees
 * (docs/search.md "Honest selection"). A data folder's select-inputs.npy (with
 * select-labels.npy) is that split; without it, a part of the validation split is carved out:
 *
 *   carveSelection(val)  ->  { reward: the rest of val, select: CARVE_FRACTION of it }
 *
 * The carved samples are a seeded random subset (the same for every search of the same
 * validation split, whatever the search's seed, so searches on one data folder share it),
 * each part keeping the validation file's order. Pure.
 */
import { InvalidDataError } from '../errors';
import { deriveSeed, Rng } from '../rng';
import type { Split } from './dataset';

/** Part of the validation split carved out as the selection split when there is no select-inputs.npy. */
export const CARVE_FRACTION = 1 / 3;
/** The carve's seed: fixed, so it depends on the data only. */
export const CARVE_SEED = deriveSeed('selection-split');

/** The samples at `indices` (ascending) of a split, as a new split of the given name. */
export function takeSamples(split: Split, indices: readonly number[], name: Split['name'] = split.name): Split {
  const per = split.sampleShape.reduce((a, b) => a * b, 1);
  const src = split.inputs.data;
  const data = new (src.constructor as new (n: number) => typeof src)(indices.length * per);
  indices.forEach((i, k) => data.set(src.subarray(i * per, (i + 1) * per) as never, k * per));
  return {
    ...split,
    name,
    inputs: { ...split.inputs, data, shape: [indices.length, ...split.sampleShape] },
    labels: split.labels ? Int32Array.from(indices, (i) => split.labels![i]) : null,
    samples: indices.length,
  };
}

/** Which validation samples go to the selection split (ascending), the rest staying with the reward. */
export function carveIndices(samples: number, fraction = CARVE_FRACTION): { reward: number[]; select: number[] } {
  const count = Math.round(samples * fraction);
  if (count < 1 || count >= samples) {
    throw new InvalidDataError(
      `val-inputs.npy has ${samples} samples, too few to carve a selection split out of (${Math.round(fraction * 100)} %); add select-inputs.npy (and select-labels.npy) or more validation samples`,
      { samples },
    );
  }
  const chosen = new Rng(CARVE_SEED).shuffle(Array.from({ length: samples }, (_, i) => i)).slice(0, count);
  const isSelect = new Uint8Array(samples);
  for (const i of chosen) isSelect[i] = 1;
  const reward: number[] = [];
  const select: number[] = [];
  for (let i = 0; i < samples; i++) (isSelect[i] ? select : reward).push(i);
  return { reward, select };
}

/** Splits the validation split into the reward's part and the selection split. */
export function carveSelection(val: Split, fraction = CARVE_FRACTION): { reward: Split; select: Split } {
  const { reward, select } = carveIndices(val.samples, fraction);
  return { reward: takeSamples(val, reward), select: takeSamples(val, select, 'select') };
}
