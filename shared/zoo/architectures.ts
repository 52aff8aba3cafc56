import { InvalidInputError } from '../errors';
import type { LayerTable } from '../onnx/types';
import { architectureLayerTable, architectureOnnx, type Architecture, type Net } from './net';

/**
 * Standard ImageNet architectures for hardware-side studies (random weights, real shapes):
 * - resnet-18, resnet-50: torchvision.models.resnet (He et al., CVPR 2016; torchvision puts
 *   the stride of a bottleneck in its 3x3 conv, "ResNet v1.5");
 * - mobilenet-v2: torchvision.models.mobilenet_v2 (Sandler et al., CVPR 2018), width 1.0;
 * - mobilenet-v1: Howard et al. 2017, Table 1 (not in torchvision), width 1.0.
 * Every conv is followed by BatchNorm (identity statistics) as in torchvision.
 */
export const zooNames = ['mobilenet-v1', 'mobilenet-v2', 'resnet-18', 'resnet-50'] as const;
export type ZooName = (typeof zooNames)[number];

function convBn<T>(net: Net<T>, x: T, name: string, out: number, kernel: number, stride = 1, groups = 1): T {
  return net.batchNorm(net.conv(x, name, { out, kernel, stride, pad: Math.floor(kernel / 2), groups }));
}

function resnetStem<T>(net: Net<T>, x: T): T {
  return net.maxPool(net.relu(convBn(net, x, 'conv1', 64, 7, 2)), 3, 2, 1);
}

function resnetHead<T>(net: Net<T>, x: T, classes = 1000): T {
  return net.linear(net.flatten(net.globalAveragePool(x)), 'fc', classes);
}

function basicBlock<T>(net: Net<T>, x: T, p: string, inC: number, out: number, stride: number): T {
  let y = net.relu(convBn(net, x, `${p}.conv1`, out, 3, stride));
  y = convBn(net, y, `${p}.conv2`, out, 3);
  const shortcut = stride !== 1 || inC !== out ? convBn(net, x, `${p}.downsample.0`, out, 1, stride) : x;
  return net.relu(net.add(y, shortcut));
}

function bottleneck<T>(net: Net<T>, x: T, p: string, inC: number, width: number, stride: number): T {
  const out = width * 4;
  let y = net.relu(convBn(net, x, `${p}.conv1`, width, 1));
  y = net.relu(convBn(net, y, `${p}.conv2`, width, 3, stride));
  y = convBn(net, y, `${p}.conv3`, out, 1);
  const shortcut = stride !== 1 || inC !== out ? convBn(net, x, `${p}.downsample.0`, out, 1, stride) : x;
  return net.relu(net.add(y, shortcut));
}

const resnet18: Architecture = (net, input) => {
  let x = resnetStem(net, input);
  let inC = 64;
  [64, 128, 256, 512].forEach((c, i) => {
    for (let b = 0; b < 2; b++) {
      x = basicBlock(net, x, `layer${i + 1}.${b}`, inC, c, b === 0 && i > 0 ? 2 : 1);
      inC = c;
    }
  });
  return resnetHead(net, x);
};

const resnet50: Architecture = (net, input) => {
  let x = resnetStem(net, input);
  let inC = 64;
  const blocks = [3, 4, 6, 3];
  [64, 128, 256, 512].forEach((w, i) => {
    for (let b = 0; b < blocks[i]; b++) {
      x = bottleneck(net, x, `layer${i + 1}.${b}`, inC, w, b === 0 && i > 0 ? 2 : 1);
      inC = w * 4;
    }
  });
  return resnetHead(net, x);
};

/** MobileNet-V2 inverted residual settings (t, c, n, s), torchvision order. */
const v2Settings: Array<[number, number, number, number]> = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

const mobilenetV2: Architecture = (net, input) => {
  let x = net.relu6(convBn(net, input, 'features.0.0', 32, 3, 2));
  let inC = 32;
  let index = 1;
  for (const [t, c, n, s] of v2Settings) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const hidden = inC * t;
      const p = `features.${index}.conv`;
      let y = x;
      let j = 0;
      if (t !== 1) y = net.relu6(convBn(net, y, `${p}.${j++}.0`, hidden, 1));
      y = net.relu6(convBn(net, y, `${p}.${j++}.0`, hidden, 3, stride, hidden));
      y = convBn(net, y, `${p}.${j}`, c, 1);
      x = stride === 1 && inC === c ? net.add(x, y) : y;
      inC = c;
      index++;
    }
  }
  x = net.relu6(convBn(net, x, `features.${index}.0`, 1280, 1));
  return net.linear(net.flatten(net.globalAveragePool(x)), 'classifier.1', 1000);
};

/** MobileNet-V1 depthwise-separable layers (output channels, stride) after the first conv. */
const v1Settings: Array<[number, number]> = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

const mobilenetV1: Architecture = (net, input) => {
  let x = net.relu(convBn(net, input, 'conv0', 32, 3, 2));
  let inC = 32;
  v1Settings.forEach(([c, s], i) => {
    x = net.relu(convBn(net, x, `conv${i + 1}.dw`, inC, 3, s, inC));
    x = net.relu(convBn(net, x, `conv${i + 1}.pw`, c, 1));
    inC = c;
  });
  return net.linear(net.flatten(net.globalAveragePool(x)), 'fc', 1000);
};

export const architectures: Record<ZooName, Architecture> = {
  'mobilenet-v1': mobilenetV1,
  'mobilenet-v2': mobilenetV2,
  'resnet-18': resnet18,
  'resnet-50': resnet50,
};

/** Published figures at 224x224 (MACs of conv + fc layers, weight elements), for checks and docs. */
export const publishedFigures: Record<ZooName, { layers: number; macs: number; params: number; source: string }> = {
  'mobilenet-v1': { layers: 28, macs: 569e6, params: 4.2e6, source: 'Howard et al. 2017, Table 1 (569M mult-adds, 4.2M params)' },
  'mobilenet-v2': { layers: 53, macs: 300e6, params: 3.4e6, source: 'Sandler et al. 2018, Table 4 (300M MACs, 3.4M params); HAQ: 53 layers' },
  'resnet-18': { layers: 21, macs: 1.8e9, params: 11.7e6, source: 'He et al. 2016, Table 1 (1.8 GFLOPs = mult-adds); torchvision 11.7M params' },
  'resnet-50': { layers: 54, macs: 4.1e9, params: 25.5e6, source: 'torchvision resnet50 (4.09 GMACs, 25.6M params incl. BN/bias)' },
};

export function isZooName(name: string): name is ZooName {
  return (zooNames as readonly string[]).includes(name);
}

function architectureOf(name: string): { arch: Architecture; key: ZooName } {
  if (!isZooName(name)) {
    throw new InvalidInputError(`unknown architecture "${name}"; choose one of ${zooNames.join(', ')}`, { name, known: zooNames });
  }
  return { arch: architectures[name], key: name };
}

/** ONNX bytes of a zoo architecture (input "input" [N, 3, 224, 224], seeded He-uniform weights). */
export function buildZooModel(name: string, options: { seed?: number; resolution?: number } = {}): Uint8Array {
  const { arch, key } = architectureOf(name);
  const r = options.resolution ?? 224;
  return architectureOnnx(arch, key, [3, r, r], options.seed ?? 0);
}

/** The layer table of a zoo architecture computed from shapes (no ONNX), for a batch and resolution. */
export function zooLayerTable(name: string, options: { batch?: number; resolution?: number } = {}): LayerTable {
  const { arch, key } = architectureOf(name);
  const r = options.resolution ?? 224;
  return architectureLayerTable(arch, [options.batch ?? 1, 3, r, r], `zoo:${key}@${r}`);
}
