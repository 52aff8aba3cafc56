/** `haq upload`: local checks first, then data, search.json and the model last. */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkSearchConfig, modelName, uploadModel } from '../../cli/commands/upload';
import { InvalidInputError } from '../../shared/errors';
import { FsStore } from '../../shared/store/fs-store';
import type { ObjectStore, PutOptions } from '../../shared/store/object-store';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-upload');
// A real model: the upload checks the target and the default budget against its layers.
const modelBytes = new Uint8Array(readFileSync(join(import.meta.dirname, '..', '..', 'models', 'zoo', 'fmnist-cnn', 'model.onnx')));
after(() => tmp.cleanup());

function fixture(name: string, files: Record<string, string>): { model: string; data: string } {
  const dir = join(tmp.dir, name);
  mkdirSync(join(dir, 'data'), { recursive: true });
  const model = join(dir, `${name}.onnx`);
  writeFileSync(model, modelBytes);
  for (const [file, body] of Object.entries(files)) writeFileSync(join(dir, 'data', file), body);
  return { model, data: join(dir, 'data') };
}

/** Records the order of puts in front of a real store. */
class RecordingStore implements ObjectStore {
  readonly puts: string[] = [];
  constructor(readonly inner: ObjectStore) {}
  get location() {
    return this.inner.location;
  }
  get(key: string) {
    return this.inner.get(key);
  }
  async put(key: string, body: Uint8Array | string, options?: PutOptions) {
    this.puts.push(key);
    await this.inner.put(key, body, options);
  }
  exists(key: string) {
    return this.inner.exists(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
}

const complete = { 'calib-inputs.npy': 'c', 'val-inputs.npy': 'v', 'val-labels.npy': 'l', 'meta.json': '{}', 'notes.txt': 'skip me' };

describe('uploadModel', () => {
  it('uploads data files, then search.json, then the model last', async () => {
    const f = fixture('lenet', complete);
    const config = join(tmp.dir, 'search.json');
    writeFileSync(config, JSON.stringify({ hardware: 'bismo-cloud', constraint: 'latency:0.9', episodes: 50 }));
    const store = new RecordingStore(new FsStore(join(tmp.dir, 'bucket')));
    const result = await uploadModel(store, { modelPath: f.model, dataDir: f.data, configPath: config });
    assert.deepEqual(store.puts, [
      'models/lenet/data/calib-inputs.npy',
      'models/lenet/data/meta.json',
      'models/lenet/data/val-inputs.npy',
      'models/lenet/data/val-labels.npy',
      'models/lenet/search.json',
      'models/lenet/model.onnx',
    ]);
    assert.equal(result.modelKey, 'models/lenet/model.onnx');
    assert.equal(result.objects.at(-1)!.sizeBytes, modelBytes.length);
    assert.deepEqual(await store.get('models/lenet/model.onnx'), modelBytes);
    assert.equal(JSON.parse(new TextDecoder().decode(await store.get('models/lenet/search.json'))).episodes, 50);
  });

  it('uses --name for the folder and needs no config', async () => {
    const f = fixture('m2', complete);
    const store = new RecordingStore(new FsStore(join(tmp.dir, 'bucket2')));
    const result = await uploadModel(store, { modelPath: f.model, dataDir: f.data, name: 'custom-name' });
    assert.equal(result.name, 'custom-name');
    assert.equal(store.puts.at(-1), 'models/custom-name/model.onnx');
    assert.ok(!store.puts.some((k) => k.endsWith('search.json')));
  });

  it('uploads nothing when a required data file is missing, and names it', async () => {
    const f = fixture('m3', { 'val-inputs.npy': 'v' });
    const store = new RecordingStore(new FsStore(join(tmp.dir, 'bucket3')));
    await assert.rejects(uploadModel(store, { modelPath: f.model, dataDir: f.data }), (err: Error) => err instanceof InvalidInputError && /calib-inputs\.npy/.test(err.message));
    assert.deepEqual(store.puts, []);
  });

  it('uploads nothing when the config is invalid', async () => {
    const f = fixture('m4', complete);
    const store = new RecordingStore(new FsStore(join(tmp.dir, 'bucket4')));
    const config = join(tmp.dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ episodes: 'many' }));
    await assert.rejects(uploadModel(store, { modelPath: f.model, dataDir: f.data, configPath: config }), /episodes/);
    assert.deepEqual(store.puts, []);
  });

  it('uploads nothing when the target cannot meet the constraint, and says why', async () => {
    const f = fixture('m6', complete);
    const store = new RecordingStore(new FsStore(join(tmp.dir, 'bucket6')));
    const config = join(tmp.dir, 'energy-on-bismo.json');
    writeFileSync(config, JSON.stringify({ hardware: 'bismo-edge', constraint: 'energy:0.5' }));
    await assert.rejects(uploadModel(store, { modelPath: f.model, dataDir: f.data, configPath: config }), /bismo-edge has no energy model/);
    assert.deepEqual(store.puts, []);
  });

  it('names a missing model file and a missing data folder', async () => {
    const store = new FsStore(join(tmp.dir, 'bucket5'));
    const f = fixture('m5', complete);
    await assert.rejects(uploadModel(store, { modelPath: join(tmp.dir, 'nope.onnx'), dataDir: f.data }), /model file .*nope\.onnx does not exist/);
    await assert.rejects(uploadModel(store, { modelPath: f.model, dataDir: join(tmp.dir, 'no-data') }), /--data .*no-data is not a readable folder/);
  });
});

describe('checkSearchConfig', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{episodes:', /not valid JSON/],
    ['wrong type', '{"parallel": 0}', /parallel/],
    ['unknown strategy', '{"strategy": "genetic"}', /strategy/],
    ['sets modelKey', '{"modelKey": "models/x/model.onnx"}', /remove "modelKey"/],
    ['not an object', '[1,2]', /--config/],
  ];
  for (const [what, text, pattern] of cases) {
    it(`rejects a config that is ${what}`, () => {
      assert.throws(() => checkSearchConfig(text, 'search.json'), (err: Error) => err instanceof InvalidInputError && pattern.test(err.message));
    });
  }
  it('accepts a partial config', () => {
    assert.deepEqual(checkSearchConfig('{"hardware":"bismo-cloud","seed":3}', 'search.json'), { hardware: 'bismo-cloud', seed: 3 });
  });
  it('accepts a constraint written as --constraint and sweep configs write it', () => {
    assert.deepEqual(checkSearchConfig('{"constraint":"latency:0.6"}', 'search.json'), { constraint: { kind: 'latency', ratio: 0.6 } });
  });
  it('rejects a hardware file path, which the deployed search cannot read', () => {
    assert.throws(() => checkSearchConfig('{"hardware":"./my-chip.json"}', 'search.json'), (err: Error) => err instanceof InvalidInputError && /put the target's JSON object itself/.test(err.message));
  });
});

describe('modelName', () => {
  it('derives the name from the file, or takes --name', () => {
    assert.equal(modelName({ modelPath: '/x/resnet18.onnx' }), 'resnet18');
    // A model.onnx is named after its folder, as `haq search` names it.
    assert.equal(modelName({ modelPath: 'models/zoo/fmnist-cnn/model.onnx' }), 'fmnist-cnn');
    assert.equal(modelName({ modelPath: '/x/a b.onnx', name: 'ab' }), 'ab');
  });
  for (const bad of ['a b', 'a/b', '-x', '']) {
    it(`rejects "${bad}"`, () => assert.throws(() => modelName({ modelPath: 'm.onnx', name: bad }), InvalidInputError));
  }
});
