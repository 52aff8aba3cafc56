/** report.html: Pareto front, self-contained output, deterministic bytes, the uniform table. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paretoFront } from '../../../shared/report/charts';
import { renderReport, type ReportData } from '../../../shared/report/report';

const data = (): ReportData => ({
  searchId: 's-1',
  model: 'net<&>',
  target: 'bitfusion',
  constraint: { kind: 'latency', ratio: 0.5 },
  strategy: 'ddpg',
  seed: 3,
  baselineTop1: 90,
  accuracyMode: 'labels',
  layers: [
    { name: 'conv1', wBits: 8, aBits: 8, latencyMs: 2, latency8Ms: 2, energyUj: 5, energy8Uj: 5, sizeBytes: 100, size8Bytes: 100 },
    { name: 'fc', wBits: 4, aBits: 3, latencyMs: 1, latency8Ms: 4, energyUj: 2, energy8Uj: 8, sizeBytes: 50, size8Bytes: 100 },
  ],
  best: { top1: 88.5, testTop1: 87.25, reward: -0.15, episode: 2, latencyMs: 3, energyUj: 7, sizeBytes: 150 },
  uniform8: { top1: 89.5, testTop1: 88.75, latencyMs: 6, energyUj: 13, sizeBytes: 200 },
  bestUniform: { bits: 4, top1: 85, testTop1: 84, latencyMs: 3, energyUj: 6.5, sizeBytes: 100 },
  validationSamples: 500,
  heldOut: { samples: 2000, accuracyMode: 'labels', baselineTop1: 89 },
  history: [
    { episode: 0, reward: -1, top1: 80, costRatio: 0.45 },
    { episode: 1, reward: -0.5, top1: 85, costRatio: 0.5 },
    { episode: 2, reward: -0.15, top1: 88.5, costRatio: 0.5 },
  ],
  strategies: [
    { strategy: 'ddpg', top1: 88.5, costRatio: 0.5 },
    { strategy: 'random', top1: 86, costRatio: 0.49 },
  ],
});

describe('Pareto front', () => {
  it('keeps the points no other point beats on both cost and accuracy', () => {
    const pts = [
      { cost: 0.5, accuracy: 80 },
      { cost: 0.4, accuracy: 85 },
      { cost: 0.6, accuracy: 90 },
      { cost: 0.6, accuracy: 88 },
      { cost: 0.3, accuracy: 70 },
    ];
    assert.deepEqual(paretoFront(pts), [false, true, true, false, true]);
  });
});

describe('renderReport', () => {
  it('is one self-contained page with inline SVG charts and escaped text', async () => {
    const html = await renderReport(data());
    assert.equal((html.match(/<svg/g) ?? []).length, 6, 'bits, latency, energy, episodes, Pareto, strategies');
    assert.ok(!/<script|<link|src="http/.test(html));
    assert.ok(html.includes('net&lt;&amp;&gt;') && !html.includes('net<&>'));
  });

  it('says which ops stay float and their share of the MACs (none: no section)', async () => {
    assert.doesNotMatch(await renderReport(data()), /Left in float/);
    const float = {
      quantizedMacs: 900,
      ops: [
        { name: 'attn', op: 'MatMul', macs: 100, reason: 'a MatMul between two activations' },
        { name: 'if/then_branch/fc', op: 'Gemm', macs: null, reason: 'inside the "then_branch" subgraph' },
      ],
    };
    const html = await renderReport({ ...data(), float });
    // 100 / (100 + 900) = 10 %
    assert.match(html, /2 ops have no quantized form and run in float: 100 MACs, <b>10 %<\/b> of the model's MACs \(1 inside If\/Loop\/Scan bodies, MACs not counted\)/);
    assert.match(html, /<td>attn<\/td><td>MatMul<\/td><td>100<\/td>/);
  });

  it('tabulates the policy against uniform 8/8 and the best uniform bitwidth', async () => {
    const html = await renderReport(data());
    // latency 3/6 = 0.5x, energy 7/13, size 150/200 = 0.75x, top-1 delta 88.5 - 90 = -1.5
    assert.match(html, /<td>haq ddpg \(episode 2\)<\/td><td>0\.5x<\/td><td>0\.538x<\/td><td>0\.75x<\/td><td>88\.5<\/td><td>-1\.5<\/td>/);
    assert.match(html, /<td>uniform 4\/4 \(best in budget\)<\/td><td>0\.5x<\/td>/);
  });

  it('puts the held-out test top-1 beside the validation (selection) top-1, each against its own FP32', async () => {
    const html = await renderReport(data());
    assert.match(html, /<th>top-1 % validation \(selection\)<\/th><th>delta vs FP32 \(validation\)<\/th><th>top-1 % test \(held-out\)<\/th><th>delta vs FP32 \(test\)<\/th>/);
    // validation 88.5 - 90 = -1.5; test 87.25 - 89 = -1.75
    assert.match(html, /<td>haq ddpg \(episode 2\)<\/td>(<td>[^<]*<\/td>){3}<td>88\.5<\/td><td>-1\.5<\/td><td>87\.25<\/td><td>-1\.75<\/td><\/tr>/);
    assert.match(html, /<td>uniform 8\/8<\/td>(<td>[^<]*<\/td>){3}<td>89\.5<\/td><td>-0\.5<\/td><td>88\.75<\/td><td>-0\.25<\/td><\/tr>/);
    assert.match(html, /<td>uniform 4\/4 \(best in budget\)<\/td>(<td>[^<]*<\/td>){5}<td>84<\/td><td>-5<\/td><\/tr>/);
    assert.match(html, /<td>FP32 \(unquantized\)<\/td>(<td>[^<]*<\/td>){3}<td>90<\/td><td><\/td><td>89<\/td>/);
    assert.match(html, /Test \(held-out\): 2000 samples of test-inputs\.npy/);
    assert.ok(!/No held-out test split/.test(html));
  });

  it('says so when the data folder has no test split, without a test column', async () => {
    const html = await renderReport({ ...data(), heldOut: null });
    assert.match(html, /<b>No held-out test split<\/b>: the data folder has no test-inputs\.npy/);
    assert.match(html, /validation \(selection\)/);
    assert.ok(!/test \(held-out\)/.test(html));
    assert.match(html, /<td>haq ddpg \(episode 2\)<\/td>(<td>[^<]*<\/td>){3}<td>88\.5<\/td><td>-1\.5<\/td><\/tr>/);
  });

  it('gives the same bytes for the same data', async () => {
    assert.equal(await renderReport(data()), await renderReport(data()));
  });

  it('says so when no uniform bitwidth fits and omits charts it has no data for', async () => {
    const d = { ...data(), bestUniform: null, strategies: undefined, history: [] };
    d.layers = d.layers.map((l) => ({ ...l, energyUj: null, energy8Uj: null }));
    const html = await renderReport(d);
    assert.match(html, /none fits/);
    assert.equal((html.match(/<svg/g) ?? []).length, 2);
  });
});
