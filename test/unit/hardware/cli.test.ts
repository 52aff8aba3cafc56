/**
 * `haq zoo` and `haq cost` run as a user would (child processes): the JSON shape the issue
 * specifies, a custom target file, and one clear error line for each bad input.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { costJson, parseBatch, readHardwareOption } from '../../../cli/commands/cost';
import { InvalidInputError, UnknownTargetError } from '../../../shared/errors';
import { buildCostTable } from '../../../shared/hardware/cost-table';
import { resolveTarget, targetNames } from '../../../shared/hardware/targets';
import { zooLayerTable } from '../../../shared/zoo/architectures';
import { assertOneLineError, haq, repoRoot } from '../../helpers/cli';
import { tempDir } from '../../helpers/tmp';

const tmp = tempDir('haq-cost-cli');
after(tmp.cleanup);
const model = join(tmp.dir, 'mnv1.onnx');



const grid = (g: unknown): void => {
  assert.ok(Array.isArray(g) && g.length === 8 && g.every((row) => Array.isArray(row) && row.length === 8 && row.every((v) => typeof v === 'number')));
};

describe('haq zoo and haq cost', () => {
  before(async () => {
    const r = await haq(['zoo', 'mobilenet-v1', '--out', model, '--resolution', '96', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { layers: number; macs: number };
    assert.equal(summary.layers, 28);
  });

  it('cost --json: {target, layers: [{name, latencyCycles, latencyMs, energyUj, bound}], uniform "1".."8"}', async () => {
    const r = await haq(['cost', model, '--hardware', 'bitfusion', '--batch', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { target: { name: string; batch: number }; layers: Array<Record<string, unknown>>; uniform: Record<string, Record<string, number>> };
    assert.deepEqual(Object.keys(doc), ['target', 'layers', 'uniform']);
    assert.equal(doc.target.name, 'bitfusion');
    assert.equal(doc.target.batch, 2);
    assert.equal(doc.layers.length, 28);
    for (const l of doc.layers) {
      assert.deepEqual(Object.keys(l), ['name', 'latencyCycles', 'latencyMs', 'energyUj', 'bound']);
      grid(l.latencyCycles);
      grid(l.latencyMs);
      grid(l.energyUj);
      const bound = l.bound as string[][];
      assert.ok(bound.length === 8 && bound.every((row) => row.length === 8 && row.every((b) => b === 'compute' || b === 'memory')));
    }
    assert.deepEqual(Object.keys(doc.uniform), ['1', '2', '3', '4', '5', '6', '7', '8']);
    assert.deepEqual(Object.keys(doc.uniform['8']), ['latencyMs', 'energyUj', 'sizeBytes']);
  });

  it('cost --explain on bismo-edge: the bounding stage per layer at 8/8, 4/4, 2/2 and the 8x8 map', async () => {
    const r = await haq(['cost', model, '--hardware', 'bismo-edge', '--explain']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /What bounds each layer on bismo-edge: F fetch .* E execute .* R result/);
    const explained = r.stdout.slice(r.stdout.indexOf('What bounds'));
    const rows = explained.split('\n').filter((line) => /^conv\d+\.(dw|pw)\s/.test(line));
    assert.equal(rows.length, 26, 'every depthwise and pointwise layer has a row');
    for (const row of rows) {
      const map = row.trim().split(/\s+/).slice(-8);
      assert.ok(map.every((group) => /^[FER]{8}$/.test(group)), row);
    }
    // A depthwise layer streams 8 channels per product: fetch-bound at every bit pair.
    assert.match(rows.find((row) => row.startsWith('conv2.dw')) ?? '', /fetch 64/);
  });

  it('cost with a custom target file (docs/examples/my-chip.json) prints the readable table', async () => {
    const r = await haq(['cost', model, '--hardware', join(repoRoot, 'docs/examples/my-chip.json')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /on my-chip \(bitfusion, batch 16\)/);
    assert.match(r.stdout, /^8\/8 /m);
  });

  it('unknown target: one line naming it and every known target', async () => {
    const r = await haq(['cost', model, '--hardware', 'tpu-v9']);
    assertOneLineError(r, 'UnknownTargetError', /"tpu-v9"/);
    for (const name of targetNames()) assert.match(r.stderr, new RegExp(name));
  });

  it('custom target file with a missing and a negative field', async () => {
    const file = join(tmp.dir, 'bad-chip.json');
    writeFileSync(file, JSON.stringify({ kind: 'roofline', name: 'bad', peakOpsPerSecond: { '8': -1 }, batch: 1 }));
    const r = await haq(['cost', model, '--hardware', file]);
    assertOneLineError(r, 'UnknownTargetError', /peakOpsPerSecond\.8: Number must be greater than 0.*memoryBandwidthBytesPerSecond: Required \(missing\)/);
  });

  it('batch 0', async () => {
    assertOneLineError(await haq(['cost', model, '--hardware', 'bismo-edge', '--batch', '0']), 'InvalidInputError', /--batch 0/);
  });

  it('zoo: unknown architecture', async () => {
    assertOneLineError(await haq(['zoo', 'vgg-16', '--out', join(tmp.dir, 'x.onnx')]), 'InvalidInputError', /unknown architecture "vgg-16"; choose one of mobilenet-v1/);
  });
});

describe('cost command helpers (in process)', () => {
  it('costJson on a roofline device: cycles and energy are null', () => {
    const doc = costJson(buildCostTable(zooLayerTable('mobilenet-v1', { resolution: 64 }), resolveTarget('jetson-orin'))) as {
      layers: Array<{ latencyCycles: unknown; energyUj: unknown }>;
      uniform: Record<string, { energyUj: unknown }>;
    };
    assert.equal(doc.layers[0].latencyCycles, null);
    assert.equal(doc.layers[0].energyUj, null);
    assert.equal(doc.uniform['4'].energyUj, null);
  });

  it('readHardwareOption: names pass through, files are read, a missing file names its path', async () => {
    assert.equal(await readHardwareOption('bismo-edge'), 'bismo-edge');
    assert.equal(((await readHardwareOption(join(repoRoot, 'docs/examples/my-gpu.json'))) as { name: string }).name, 'my-gpu');
    await assert.rejects(readHardwareOption('./no-such-chip.json'), (e: unknown) => e instanceof UnknownTargetError && /no-such-chip\.json cannot be read/.test(e.message));
    const notObject = join(tmp.dir, 'list.json');
    writeFileSync(notObject, '[1, 2]');
    await assert.rejects(readHardwareOption(notObject), (e: unknown) => e instanceof UnknownTargetError && /must hold one JSON object/.test(e.message));
  });

  it('parseBatch: positive integers only', () => {
    assert.equal(parseBatch('16'), 16);
    assert.equal(parseBatch(undefined), undefined);
    for (const bad of ['0', '-2', '1.5', 'x']) assert.throws(() => parseBatch(bad), InvalidInputError);
  });
});
