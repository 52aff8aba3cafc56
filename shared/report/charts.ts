/**
 * Charts as inline SVG: vega-lite specs compiled to vega and rendered in node with the
 * 'none' renderer (View.toSVG needs no canvas; text widths are estimated).
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { metricLabels, type MetricLabels } from './labels';

export type VlSpec = Record<string, unknown>;

export async function renderSvg(spec: VlSpec): Promise<string> {
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v5.json', background: 'white', ...spec };
  const compiled = vl.compile(full as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const width = 640;

/** A per-layer bar chart's x axis: one band per layer in graph order, labelled `index: name`. */
const layerAxis = { field: 'layer', type: 'nominal', sort: { field: 'index' }, title: 'layer', axis: { labelAngle: -45, labelLimit: 120 } };
const layerKey = (r: { index: number; layer: string }) => ({ layer: `${r.index}: ${r.layer}`, index: r.index });

/** Per-layer weight and activation bits, grouped bars. */
export function bitsChart(rows: Array<{ layer: string; index: number; wBits: number; aBits: number | null }>): VlSpec {
  const values = rows.flatMap((r) => [
    { ...layerKey(r), kind: 'weight', bits: r.wBits },
    ...(r.aBits === null ? [] : [{ ...layerKey(r), kind: 'activation', bits: r.aBits }]),
  ]);
  return {
    title: 'Bits per layer',
    width,
    height: 180,
    data: { values },
    mark: 'bar',
    encoding: {
      x: layerAxis,
      xOffset: { field: 'kind' },
      y: { field: 'bits', type: 'quantitative', scale: { domain: [0, 8] }, title: 'bits' },
      color: { field: 'kind', type: 'nominal', title: null },
    },
  };
}

/** Per-layer cost of the policy against the all-8-bit model (one chart per metric). */
export function layerCostChart(
  metric: string,
  unit: string,
  rows: Array<{ layer: string; index: number; policy: number; uniform8: number }>,
): VlSpec {
  const values = rows.flatMap((r) => [
    { ...layerKey(r), series: 'policy', value: r.policy },
    { ...layerKey(r), series: '8/8 bits', value: r.uniform8 },
  ]);
  return {
    title: `${metric} per layer (${unit})`,
    width,
    height: 180,
    data: { values },
    mark: 'bar',
    encoding: {
      x: layerAxis,
      xOffset: { field: 'series' },
      y: { field: 'value', type: 'quantitative', title: unit },
      color: { field: 'series', type: 'nominal', title: null, scale: { range: ['#4c78a8', '#bbbbbb'] } },
    },
  };
}

/** Reward and the metric (top-1 by default) per episode, with the best reward so far. */
export function episodesChart(rows: Array<{ episode: number; reward: number; top1: number }>, labels: MetricLabels = metricLabels('top1')): VlSpec {
  let best = -Infinity;
  const values = rows.flatMap((r) => {
    best = Math.max(best, r.reward);
    return [
      { episode: r.episode, value: r.reward, series: 'reward', panel: 'reward' },
      { episode: r.episode, value: best, series: 'best reward', panel: 'reward' },
      { episode: r.episode, value: r.top1, series: labels.column, panel: labels.axis },
    ];
  });
  return {
    title: 'Episodes',
    data: { values },
    facet: { row: { field: 'panel', type: 'nominal', title: null } },
    spec: {
      width,
      height: 140,
      mark: { type: 'line', point: { size: 12 } },
      encoding: {
        x: { field: 'episode', type: 'quantitative' },
        y: { field: 'value', type: 'quantitative', scale: { zero: false }, title: null },
        color: { field: 'series', type: 'nominal', title: null },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Every evaluated policy as (cost ratio, metric), the Pareto front as a line, the budget as a rule. */
export function paretoChart(
  points: Array<{ costRatio: number; top1: number; episode: number; front: boolean }>,
  budgetRatio: number,
  costName: string,
  labels: MetricLabels = metricLabels('top1'),
): VlSpec {
  const front = points.filter((p) => p.front).sort((a, b) => a.costRatio - b.costRatio);
  return {
    title: `Evaluated policies: ${costName} (x of 8/8) vs ${labels.name}`,
    width,
    height: 260,
    layer: [
      {
        data: { values: points.map((p) => ({ ...p, kind: p.front ? 'Pareto front' : 'policy' })) },
        mark: { type: 'point', filled: true, opacity: 0.7 },
        encoding: {
          x: { field: 'costRatio', type: 'quantitative', title: `${costName} / 8-bit ${costName}`, scale: { zero: false } },
          y: { field: 'top1', type: 'quantitative', title: labels.axis, scale: { zero: false } },
          color: { field: 'kind', type: 'nominal', title: null, scale: { range: ['#e45756', '#4c78a8'] } },
          tooltip: [{ field: 'episode' }, { field: 'costRatio' }, { field: 'top1' }],
        },
      },
      { data: { values: front }, mark: { type: 'line', color: '#e45756' }, encoding: { x: { field: 'costRatio', type: 'quantitative' }, y: { field: 'top1', type: 'quantitative' } } },
      { data: { values: [{ budget: budgetRatio }] }, mark: { type: 'rule', strokeDash: [4, 4], color: '#555' }, encoding: { x: { field: 'budget', type: 'quantitative' } } },
    ],
  };
}

/** Strategy comparison: the best policy's metric per strategy at the same budget. */
export function strategyChart(rows: Array<{ strategy: string; top1: number }>, labels: MetricLabels = metricLabels('top1')): VlSpec {
  return {
    title: 'Strategies (best policy within the same budget)',
    width: 320,
    height: 160,
    data: { values: rows },
    mark: 'bar',
    encoding: {
      y: { field: 'strategy', type: 'nominal', title: null },
      x: { field: 'top1', type: 'quantitative', title: labels.axis, scale: { zero: false } },
    },
  };
}

/** Indices of the Pareto-optimal points: no other point has lower-or-equal cost and higher-or-equal accuracy, one strictly. */
export function paretoFront(points: ReadonlyArray<{ cost: number; accuracy: number }>): boolean[] {
  const order = points.map((_, i) => i).sort((a, b) => points[a].cost - points[b].cost || points[b].accuracy - points[a].accuracy);
  const front = new Array<boolean>(points.length).fill(false);
  let bestAcc = -Infinity;
  for (const i of order) {
    if (points[i].accuracy > bestAcc) {
      front[i] = true;
      bestAcc = points[i].accuracy;
    }
  }
  return front;
}
