import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidPolicyError } from '../../../shared/errors';
import type { LayerTable } from '../../../shared/onnx/types';
import { pinEndLayers, policySizeBytes, uniformPolicy, validatePolicy } from '../../../shared/quant/policy';

function table(): LayerTable {
  const layer = (index: number, name: string, params: number) => ({
    index,
    name,
    kind: 'conv' as const,
    op: 'Conv' as const,
    inChannels: 1,
    outChannels: 1,
    kernel: [1, 1] as [number, number],
    stride: [1, 1] as [number, number],
    groups: 1,
    inputShape: [1, 1, 4, 4],
    outputShape: [1, 1, 4, 4],
    params,
    macs: 16,
    inputName: `${name}_in`,
    weightName: `${name}_w`,
    biasName: null,
    outputName: `${name}_out`,
  });
  return {
    modelHash: 'a'.repeat(64),
    inputShape: [1, 1, 4, 4],
    layers: [layer(0, 'conv1', 100), layer(1, 'conv2', 200), layer(2, 'fc', 50)],
    totals: { params: 350, macs: 48 },
    skipped: [],
  };
}

const good = { layers: [{ name: 'fc', wBits: 4, aBits: null }, { name: 'conv1', wBits: 8, aBits: 8 }, { name: 'conv2', wBits: 2, aBits: 3 }] };

describe('validatePolicy', () => {
  it('accepts a policy and returns its layers in graph order', () => {
    const p = validatePolicy(good, table());
    assert.deepEqual(p.layers.map((l) => l.name), ['conv1', 'conv2', 'fc']);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', [1, 2], /must be a JSON object.*an array/],
    ['no layers', { target: 'x' }, /non-empty "layers"/],
    ['wBits 0', { layers: [{ ...good.layers[0], wBits: 0 }, good.layers[1], good.layers[2]] }, /fc\.wBits=0/],
    ['aBits 9', { layers: [good.layers[0], { ...good.layers[1], aBits: 9 }, good.layers[2]] }, /conv1\.aBits=9/],
    ['wBits 2.5 and a string', { layers: [{ ...good.layers[0], wBits: 2.5 }, { ...good.layers[1], aBits: 'float' }, good.layers[2]] }, /fc\.wBits=2\.5, conv1\.aBits="float"/],
    ['an unknown layer', { layers: [...good.layers, { name: 'conv9', wBits: 4, aBits: 4 }] }, /unknown layers "conv9".*conv1, conv2, fc/],
    ['a missing layer', { layers: good.layers.slice(1) }, /missing layers "fc"/],
    ['a duplicate layer', { layers: [...good.layers, good.layers[0]] }, /duplicate layers "fc"/],
    ['another model', { ...good, model: { name: 'resnet', hash: 'b'.repeat(64) } }, /another model.*bbbbbbbbbbbb.*"resnet"/],
  ];
  for (const [what, value, message] of bad) {
    it(`rejects ${what} with InvalidPolicyError`, () => {
      assert.throws(() => validatePolicy(value, table()), (err: unknown) => {
        assert.ok(err instanceof InvalidPolicyError);
        assert.match((err as Error).message, message);
        return true;
      });
    });
  }

  it('accepts the matching model hash', () => {
    assert.equal(validatePolicy({ ...good, model: { name: 'm', hash: 'a'.repeat(64) } }, table()).layers.length, 3);
  });
});

describe('pinEndLayers', () => {
  it('sets the first and last layer to 8/8 and keeps float activations float', () => {
    const pinned = pinEndLayers(validatePolicy(good, table()).layers);
    assert.deepEqual(pinned, [
      { name: 'conv1', wBits: 8, aBits: 8 },
      { name: 'conv2', wBits: 2, aBits: 3 },
      { name: 'fc', wBits: 8, aBits: null },
    ]);
  });
  it('does not modify its input', () => {
    const layers = [{ name: 'a', wBits: 2, aBits: 2 }];
    pinEndLayers(layers);
    assert.equal(layers[0].wBits, 2);
  });
});

describe('policySizeBytes', () => {
  it('sums params x wBits / 8', () => {
    assert.equal(policySizeBytes(table(), uniformPolicy(table(), 8, 8).layers), 350);
    assert.equal(policySizeBytes(table(), validatePolicy(good, table()).layers), 100 + 50 + 25);
  });
});
