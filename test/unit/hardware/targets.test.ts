import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { InvalidInputError, UnknownTargetError } from '../../../shared/errors';
import { builtinTargets, resolveTarget, targetId, targetNames, type Target } from '../../../shared/hardware/targets';

const docs = join(import.meta.dirname, '../../../docs/examples');
const example = (file: string) => JSON.parse(readFileSync(join(docs, file), 'utf8')) as Record<string, unknown>;

test('built-in targets: the names the issue lists, each valid against its own schema', () => {
  for (const name of ['bismo-edge', 'bismo-cloud', 'bitfusion', 'a100', 'h100', 'jetson-orin', 'cortex-a76']) {
    assert.ok(targetNames().includes(name), name);
    const t = resolveTarget(name);
    assert.equal(t.name, name);
    // Round trip through the custom-target path: a built-in is also a valid description.
    assert.deepEqual(resolveTarget(t as unknown as Record<string, unknown>), t);
  }
});

test('HAQ configurations: BISMO edge/cloud arrays, AXI and batch; BitFusion Eyeriss-comparable', () => {
  const edge = resolveTarget('bismo-edge');
  const cloud = resolveTarget('bismo-cloud');
  const bf = resolveTarget('bitfusion');
  assert.ok(edge.kind === 'bismo' && cloud.kind === 'bismo' && bf.kind === 'bitfusion');
  assert.deepEqual([edge.dm, edge.dn, edge.dk, edge.lhsFetchBitsPerCycle, edge.rhsFetchBitsPerCycle, edge.batch], [8, 8, 256, 64, 64, 1]);
  assert.deepEqual([cloud.dm, cloud.dn, cloud.dk, cloud.lhsFetchBitsPerCycle, cloud.rhsFetchBitsPerCycle, cloud.batch], [16, 16, 256, 256, 256, 16]);
  assert.deepEqual([bf.n, bf.m, bf.frequencyHz, bf.ibufBytes, bf.wbufBytes, bf.obufBytes, bf.bandwidthBitsPerCycle, bf.batch], [16, 32, 500e6, 32768, 65536, 16384, 192, 16]);
});

test('unknown target: UnknownTargetError listing every known name', () => {
  assert.throws(
    () => resolveTarget('bismo-egde'),
    (err: unknown) => err instanceof UnknownTargetError && err.message.includes('"bismo-egde"') && targetNames().every((n) => err.message.includes(n)),
  );
});

test('batch override; batch 0, negative or fractional is an InvalidInputError naming the value', () => {
  assert.equal(resolveTarget('bitfusion', { batch: 4 }).batch, 4);
  assert.equal(resolveTarget('bitfusion').batch, 16, 'the built-in is not modified by an override');
  for (const batch of [0, -1, 1.5]) {
    assert.throws(() => resolveTarget('bismo-edge', { batch }), (err: unknown) => err instanceof InvalidInputError && err.message.includes(`batch ${batch}`));
  }
});

test('custom targets: the documented examples parse, also as inline JSON text', () => {
  const chip = resolveTarget(example('my-chip.json'));
  assert.equal(chip.kind, 'bitfusion');
  const gpu = resolveTarget(JSON.stringify(example('my-gpu.json')));
  assert.equal(gpu.kind, 'roofline');
  assert.equal(gpu.batch, 8);
});

const bad: Array<[string, Record<string, unknown>, RegExp]> = [
  ['missing field', (({ m: _m, ...rest }) => rest)(example('my-chip.json')), /m: Required \(missing\)/],
  ['negative field', { ...example('my-chip.json'), bandwidthBitsPerCycle: -192 }, /bandwidthBitsPerCycle: Number must be greater than 0/],
  ['negative energy', { ...example('my-chip.json'), energy: { ...(example('my-chip.json').energy as object), dramPjPerBit: -15 } }, /energy\.dramPjPerBit/],
  ['zero batch', { ...example('my-gpu.json'), batch: 0 }, /batch: Number must be greater than 0/],
  ['pmin above pmax', { ...example('my-chip.json'), pmin: 8, pmax: 4 }, /pmin must be <= pmax/],
  ['unknown kind', { ...example('my-chip.json'), kind: 'tpu' }, /"kind" is "tpu"; use one of bismo, bitfusion, roofline/],
  ['missing kind', (({ kind: _k, ...rest }) => rest)(example('my-chip.json')), /"kind" is undefined/],
  ['misspelt field', { ...example('my-chip.json'), bandwith: 1 }, /Unrecognized key/],
  ['roofline without peaks', { ...example('my-gpu.json'), peakOpsPerSecond: {} }, /give at least one precision/],
  ['roofline energy missing a precision', { ...example('my-gpu.json'), energy: { pjPerOp: { '8': 0.1 }, pjPerByte: 20 } }, /pjPerOp has no entry for precision 4, 16/],
  ['bismo with a negative array size', { kind: 'bismo', name: 'b', dm: -8, dn: 8, dk: 256, frequencyHz: 2e8, lhsFetchBitsPerCycle: 64, rhsFetchBitsPerCycle: 64, batch: 1, lhsBufferWords: 1024, rhsBufferWords: 1024 }, /dm: Number must be greater than 0/],
  ['bismo with the old AXI fields', { kind: 'bismo', name: 'old', dm: 8, dn: 8, dk: 256, frequencyHz: 2e8, axiPorts: 4, axiWidthBits: 64, batch: 1, lhsBufferWords: 1024, rhsBufferWords: 1024 }, /"old" \(kind bismo\): axiPorts\/axiWidthBits are replaced by lhsFetchBitsPerCycle and rhsFetchBitsPerCycle/],
];
for (const [what, spec, message] of bad) {
  test(`custom target with a bad field (${what}): UnknownTargetError naming it`, () => {
    assert.throws(() => resolveTarget(spec), (err: unknown) => err instanceof UnknownTargetError && message.test(err.message));
  });
}

test('custom target JSON text that is not JSON, or not an object', () => {
  assert.throws(() => resolveTarget('{"kind": "bismo",'), (err: unknown) => err instanceof UnknownTargetError && /not valid JSON/.test(err.message));
});

test('targetId: built-ins by name and batch; custom targets by content', () => {
  assert.equal(targetId(resolveTarget('bitfusion')), 'bitfusion-b16');
  assert.equal(targetId(resolveTarget('bitfusion', { batch: 1 })), 'bitfusion-b1');
  const chip = resolveTarget(example('my-chip.json'));
  const wider = resolveTarget({ ...example('my-chip.json'), bandwidthBitsPerCycle: 1024 });
  assert.match(targetId(chip), /^my-chip-[0-9a-f]{8}-b16$/);
  assert.notEqual(targetId(chip), targetId(wider));
  const renamedBuiltin = { ...(builtinTargets.bitfusion as Target), bandwidthBitsPerCycle: 4096 };
  assert.notEqual(targetId(renamedBuiltin), 'bitfusion-b16', 'a modified built-in is not the built-in');
});
