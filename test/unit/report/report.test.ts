/** report.html: Pareto front, self-contained output, deterministic bytes, the uniform table. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { paretoFront } from '../../../shared/report/charts';
import { renderReport, type ReportData } from '../../../shared/report/report';

const e = (value: number, se = 0.5) => ({ value, se });
const data = (): ReportData => ({
  searchId: 's-1',
  model: 'net<&>',
  target: 'bitfusion',
  constraint: { kind: 'latency', ratio: 0.5 },
  strategy: 'ddpg',
  seed: 3,
  metric: 'top1',
  reward: 'top1',
  accuracyMode: 'labels',
  splits: { val: { samples: 4000 }, select: { samples: 2000, source: 'file' }, test: { samples: 4000, accuracyMode: 'labels' } },
  layers: [
    { name: 'conv1', wBits: 8, aBits: 8, latencyMs: 2, latency8Ms: 2, energyUj: 5, energy8Uj: 5, sizeBytes: 100, size8Bytes: 100 },
    { name: 'fc', wBits: 4, aBits: 3, latencyMs: 1, latency8Ms: 4, energyUj: 2, energy8Uj: 8, sizeBytes: 50, size8Bytes: 100 },
  ],
  fp32: { val: e(90, 0.47), select: e(89.5, 0.69), test: e(89, 0.49) },
  best: { label: 'haq ddpg (episode 2)', episode: 2, reward: -0.15, latencyMs: 3, energyUj: 7, sizeBytes: 150, scores: { val: e(88.5), select: e(88.1, 0.72), test: e(87.25, 0.52) } },
  uniform8: { label: 'uniform 8/8', latencyMs: 6, energyUj: 13, sizeBytes: 200, scores: { val: e(89.5), select: e(89), test: e(88.75) } },
  pinFirstLast: true,
  uniformPinned: { label: 'uniform 4/5, first/last 8/8 (best in budget)', latencyMs: 3, energyUj: 6.5, sizeBytes: 100, scores: { val: e(86), select: e(85.5), test: e(86.5, 0.54) } },
  uniformUnpinned: { label: 'uniform 5/5, unpinned (best in budget)', latencyMs: 2.9, energyUj: 6, sizeBytes: 110, scores: { val: e(85), select: e(85), test: e(84) } },
  gain: { reference: 'uniform 4/5, first/last 8/8 (best in budget)', split: 'test', value: 0.75, se: 0.75, withinNoise: true },
  candidates: [
    { episode: 2, reward: -0.15, costRatio: 0.5, scores: { val: e(88.5), select: e(88.1), test: e(87.25) }, chosen: true },
    { episode: 1, reward: -0.5, costRatio: 0.5, scores: { val: e(85), select: e(84), test: e(84.5) }, chosen: false },
  ],
  topK: 8,
  history: [
    { episode: 0, reward: -1, score: 80, costRatio: 0.45 },
    { episode: 1, reward: -0.5, score: 85, costRatio: 0.5 },
    { episode: 2, reward: -0.15, score: 88.5, costRatio: 0.5 },
  ],
  strategies: [
    { strategy: 'ddpg', score: 88.5, costRatio: 0.5 },
    { strategy: 'random', score: 86, costRatio: 0.49 },
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

  it('tabulates the policy, both uniform references, 8/8 and FP32 on validation, selection and test with standard errors', async () => {
    const html = await renderReport(data());
    assert.match(html, /<th>top-1 % validation<\/th><th>top-1 % selection<\/th><th>top-1 % test \(held-out\)<\/th>/);
    // latency 3/6 = 0.5x, energy 7/13, size 150/200 = 0.75x
    assert.match(html, /<td>haq ddpg \(episode 2\)<\/td><td>0\.5x<\/td><td>0\.538x<\/td><td>0\.75x<\/td><td>88\.50 ± 0\.50<\/td><td>88\.10 ± 0\.72<\/td><td>87\.25 ± 0\.52<\/td><\/tr>/);
    assert.match(html, /<td>uniform 4\/5, first\/last 8\/8 \(best in budget\)<\/td>(<td>[^<]*<\/td>){5}<td>86\.50 ± 0\.54<\/td><\/tr>/);
    assert.match(html, /<td>uniform 5\/5, unpinned \(best in budget\)<\/td>/);
    assert.match(html, /<td>FP32 \(unquantized\)<\/td><td>-<\/td><td>-<\/td><td>-<\/td><td>90\.00 ± 0\.47<\/td><td>89\.50 ± 0\.69<\/td><td>89\.00 ± 0\.49<\/td>/);
    assert.match(html, /Test \(held-out\): 4000 samples of test-inputs\.npy/);
    assert.match(html, /Selection: 2000 samples of select-inputs\.npy, never seen by the reward; the final policy is the best of the top 8/);
  });

  it('states the gain over the better reference and whether it is within noise', async () => {
    assert.match(await renderReport(data()), /Gain over the better uniform reference<\/b> \(uniform 4\/5, first\/last 8\/8 \(best in budget\)\) on the held-out test split: \+0\.75 ± 0\.75 points of top-1, <b>within noise<\/b>/);
    const real = await renderReport({ ...data(), gain: { reference: 'uniform 4/5', split: 'test', value: 2.5, se: 0.75, withinNoise: false } });
    assert.match(real, /\+2\.50 ± 0\.75 points of top-1, <b>a real gain<\/b>/);
  });

  it('lists the candidates of the final choice and marks the chosen one', async () => {
    const html = await renderReport(data());
    assert.match(html, /<td>▶ episode 2<\/td><td>-0\.15<\/td><td>0\.5<\/td><td>88\.50 ± 0\.50<\/td><td>88\.10 ± 0\.50<\/td><td>87\.25 ± 0\.50<\/td>/);
    assert.match(html, /<td>episode 1<\/td>/);
  });

  it('says so when the data folder has no test split, without a test column, and when selection was carved out of val', async () => {
    const d = data();
    const html = await renderReport({ ...d, splits: { ...d.splits, test: null, select: { samples: 1333, source: 'carved' } }, gain: { ...d.gain!, split: 'select' } });
    assert.match(html, /<b>No held-out test split<\/b>: the data folder has no test-inputs\.npy/);
    assert.match(html, /Selection: 1333 samples carved out of val-inputs\.npy/);
    assert.ok(!/test \(held-out\)<\/th>/.test(html));
    assert.match(html, /on the selection split \(no test split/);
    assert.match(html, /<td>haq ddpg \(episode 2\)<\/td>(<td>[^<]*<\/td>){3}<td>88\.50 ± 0\.50<\/td><td>88\.10 ± 0\.72<\/td><\/tr>/);
  });

  it('an SQNR search: the metric in dB in the table, the chart axes and the gain', async () => {
    const html = await renderReport({ ...data(), metric: 'sqnr', reward: 'sqnr', gain: { reference: 'uniform 4/5', split: 'test', value: 3.2, se: 0.4, withinNoise: false } });
    assert.match(html, /<th>SQNR dB validation<\/th>/);
    assert.match(html, /output SQNR vs FP32 \(dB\)/);
    assert.match(html, /\+3\.20 ± 0\.40 dB of output SQNR/);
  });

  it('gives the same bytes for the same data', async () => {
    assert.equal(await renderReport(data()), await renderReport(data()));
  });

  it('says so when no uniform bitwidth fits and omits charts it has no data for', async () => {
    const d = { ...data(), uniformPinned: null, uniformUnpinned: null, gain: null, strategies: undefined, history: [] };
    d.layers = d.layers.map((l) => ({ ...l, energyUj: null, energy8Uj: null }));
    const html = await renderReport(d);
    assert.match(html, /<td>uniform, first\/last 8\/8 \(best in budget\)<\/td><td>none fits<\/td>/);
    assert.match(html, /No uniform policy fits the budget/);
    assert.equal((html.match(/<svg/g) ?? []).length, 2);
  });
});
