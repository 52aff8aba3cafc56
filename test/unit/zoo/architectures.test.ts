import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { InvalidInputError } from '../../../shared/errors';
import { inspectModel } from '../../../shared/onnx/inspect';
import { buildZooModel, publishedFigures, zooLayerTable, zooNames } from '../../../shared/zoo/architectures';
import { expectClose } from '../../helpers/expect-close';

for (const name of zooNames) {
  test(`${name}: layer count, MACs and weights at 224x224 match the published figures`, () => {
    const table = zooLayerTable(name);
    const fig = publishedFigures[name];
    assert.equal(table.layers.length, fig.layers);
    expectClose(table.totals.macs, fig.macs, { rtol: 0.02 }, `${name} MACs`);
    expectClose(table.totals.params, fig.params, { rtol: 0.03 }, `${name} weights`);
  });

  test(`${name}: the ONNX model loads and its layer table equals the analytic one (64x64 input)`, async () => {
    const bytes = buildZooModel(name, { resolution: 64 });
    const loaded = await inspectModel(bytes, { what: name });
    const analytic = zooLayerTable(name, { resolution: 64 });
    assert.equal(loaded.layers.length, analytic.layers.length);
    loaded.layers.forEach((l, i) => {
      const a = analytic.layers[i];
      for (const key of ['name', 'kind', 'op', 'inChannels', 'outChannels', 'kernel', 'stride', 'groups', 'inputShape', 'outputShape', 'params', 'macs', 'inputName', 'weightName', 'biasName', 'outputName'] as const) {
        assert.deepEqual(l[key], a[key], `${name} layer ${i} (${l.name}) ${key}`);
      }
    });
  });
}

test('mobilenet-v2 at 224x224 through onnxruntime: 53 layers, ~300M MACs, 17 depthwise', async () => {
  const table = await inspectModel(buildZooModel('mobilenet-v2'));
  assert.equal(table.layers.length, 53);
  expectClose(table.totals.macs, 300.8e6, { rtol: 0.005 });
  assert.equal(table.layers.filter((l) => l.kind === 'depthwise').length, 17);
  assert.deepEqual(table.inputShape, [1, 3, 224, 224]);
});

test('weights are seeded: same seed, same bytes; another seed, other bytes', () => {
  const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const a = hash(buildZooModel('mobilenet-v1', { seed: 7, resolution: 32 }));
  assert.equal(hash(buildZooModel('mobilenet-v1', { seed: 7, resolution: 32 })), a);
  assert.notEqual(hash(buildZooModel('mobilenet-v1', { seed: 8, resolution: 32 })), a);
});

test('unknown architecture: InvalidInputError listing the known ones', () => {
  assert.throws(() => buildZooModel('resnet-34'), (e: unknown) => e instanceof InvalidInputError && zooNames.every((n) => e.message.includes(n)));
});
