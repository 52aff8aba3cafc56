/**
 * report.html: one self-contained page (no scripts, no external files) with the search's
 * result: the policy's bits per layer, per-layer latency and energy against 8-bit, reward
 * and the metric over episodes, every evaluated policy against its cost with the Pareto
 * front, a table against the uniform references, the candidates of the final choice, and the
 * strategy comparison when there is one. Deterministic: the same data gives the same bytes.
 *
 * Every figure comes per split with its standard error: validation (the reward's split: the
 * search's best scores there are optimistically biased), selection (the final choice among
 * the top candidates was made there) and test (held out: the unbiased estimate). The gain
 * is against the better uniform reference on test, and the page says when it is within noise.
 */
import type { Estimate, MetricName } from '../data/metrics';
import type { Constraint } from '../quant/policy';
import { bitsChart, episodesChart, layerCostChart, paretoChart, paretoFront, renderSvg, strategyChart } from './charts';
import { metricLabels } from './labels';

export interface CostSummary {
  latencyMs: number;
  energyUj: number | null;
  sizeBytes: number;
}

/** The metric on each split (null: not evaluated there, or the data has no such split). */
export interface SplitScores {
  val: Estimate | null;
  select: Estimate | null;
  test: Estimate | null;
}

export interface ReportRow extends CostSummary {
  label: string;
  scores: SplitScores;
}

export interface ReportData {
  searchId: string;
  model: string;
  target: string;
  constraint: Constraint;
  strategy: string;
  seed: number;
  /** The metric every score holds: top1 (percent), sqnr (dB) or cosine. */
  metric: MetricName;
  reward: string;
  /** 'fidelity': top-1 is agreement with the FP32 model (no labels). */
  accuracyMode: 'labels' | 'fidelity';
  splits: {
    val: { samples: number };
    select: { samples: number; source: 'file' | 'carved' };
    test: { samples: number; accuracyMode: 'labels' | 'fidelity' } | null;
  };
  layers: Array<{
    name: string;
    wBits: number;
    aBits: number | null;
    latencyMs: number;
    latency8Ms: number;
    energyUj: number | null;
    energy8Uj: number | null;
    sizeBytes: number;
    size8Bytes: number;
  }>;
  fp32: SplitScores;
  best: ReportRow & { episode: number; reward: number };
  uniform8: ReportRow;
  /** Whether the search pins the first and last layer at 8/8 (then there are two uniform references). */
  pinFirstLast: boolean;
  /** The most accurate uniform policies in budget: pinned as the search pins, and (when it pins) unpinned; null: none fits. */
  uniformPinned: ReportRow | null;
  uniformUnpinned: ReportRow | null;
  /** The policy against the better reference (on test, or selection without a test split). */
  gain: { reference: string; split: 'test' | 'select'; value: number; se: number; withinNoise: boolean } | null;
  /** The top-k search policies by validation reward, re-scored on selection and test. */
  candidates: Array<{ episode: number; reward: number; costRatio: number; scores: SplitScores; chosen: boolean }>;
  topK: number;
  history: Array<{ episode: number; reward: number; score: number; costRatio: number }>;
  /** Ops with MACs the policy leaves in float (the layer table's `skipped`), and the quantized layers' MACs. */
  float?: { ops: Array<{ name: string; op: string; macs: number | null; reason: string }>; quantizedMacs: number };
  strategies?: Array<{ strategy: string; score: number; costRatio: number | null }>;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? '-' : Number(v.toPrecision(digits)).toString());
const ratio = (a: number | null, b: number | null): string => (a === null || b === null || !(b > 0) ? '-' : `${fmt(a / b)}x`);

/** "88.6 +- 0.71": the value and its standard error at the metric's resolution. */
export function withSe(e: Estimate | null, metric: MetricName): string {
  if (!e) return '-';
  const digits = metric === 'cosine' ? 4 : 2;
  return `${e.value.toFixed(digits)} ± ${e.se.toFixed(digits)}`;
}

type SplitKey = keyof SplitScores;
const splitNames: Record<SplitKey, string> = { val: 'validation', select: 'selection', test: 'test (held-out)' };

function shownSplits(d: ReportData): SplitKey[] {
  return d.splits.test ? ['val', 'select', 'test'] : ['val', 'select'];
}

function summaryTable(d: ReportData): string {
  const labels = metricLabels(d.metric);
  const splits = shownSplits(d);
  const headers = ['policy', 'latency (x 8/8)', 'energy (x 8/8)', 'size (x 8/8)', ...splits.map((s) => `${labels.column} ${splitNames[s]}`)];
  const row = (r: ReportRow) => [
    r.label,
    ratio(r.latencyMs, d.uniform8.latencyMs),
    ratio(r.energyUj, d.uniform8.energyUj),
    ratio(r.sizeBytes, d.uniform8.sizeBytes),
    ...splits.map((s) => withSe(r.scores[s], d.metric)),
  ];
  const rows = [row(d.best)];
  const none = (what: string) => [what, 'none fits', '', '', ...splits.map(() => '')];
  rows.push(d.uniformPinned ? row(d.uniformPinned) : none(d.pinFirstLast ? 'uniform, first/last 8/8 (best in budget)' : 'uniform (best in budget)'));
  if (d.pinFirstLast) rows.push(d.uniformUnpinned ? row(d.uniformUnpinned) : none('uniform, unpinned (best in budget)'));
  rows.push(row(d.uniform8));
  rows.push(['FP32 (unquantized)', '-', '-', '-', ...splits.map((s) => withSe(d.fp32[s], d.metric))]);
  return table(headers, rows);
}

function gainNote(d: ReportData): string {
  const labels = metricLabels(d.metric);
  if (!d.gain) return '<p class="note">No uniform policy fits the budget: there is no uniform reference to compare with.</p>';
  const g = d.gain;
  const unit = d.metric === 'top1' ? ' points' : d.metric === 'sqnr' ? ' dB' : '';
  const sign = g.value >= 0 ? '+' : '';
  const verdict = g.withinNoise
    ? `<b>within noise</b>: the difference is below twice its standard error, so the two are a tie on these samples`
    : g.value > 0
      ? '<b>a real gain</b>: more than twice its standard error'
      : '<b>a real loss</b>: more than twice its standard error';
  const where = g.split === 'test' ? 'on the held-out test split' : 'on the selection split (no test split: this figure is biased by the choice among the candidates)';
  return `<p><b>Gain over the better uniform reference</b> (${esc(g.reference)}) ${where}: ${sign}${g.value.toFixed(d.metric === 'cosine' ? 4 : 2)} ± ${g.se.toFixed(d.metric === 'cosine' ? 4 : 2)}${unit} of ${esc(labels.name)}, ${verdict}.</p>`;
}

/** Which split each column is measured on, and what each is worth. */
function splitsNote(d: ReportData): string {
  const labels = metricLabels(d.metric);
  const val = `Validation: ${d.splits.val.samples} samples of val-inputs.npy${d.splits.select.source === 'carved' ? ' (the part not carved out for selection)' : ''}, the reward's split; the best scores there are optimistically biased (the maximum of many noisy scores).`;
  const select =
    d.splits.select.source === 'file'
      ? `Selection: ${d.splits.select.samples} samples of select-inputs.npy, never seen by the reward; the final policy is the best of the top ${d.topK} by validation reward on it.`
      : `Selection: ${d.splits.select.samples} samples carved out of val-inputs.npy (a seeded third, the same for every search of this data; the data folder has no select-inputs.npy), never seen by the reward; the final policy is the best of the top ${d.topK} by validation reward on it.`;
  const test = d.splits.test
    ? `Test (held-out): ${d.splits.test.samples} samples of test-inputs.npy${d.splits.test.accuracyMode === 'fidelity' && d.metric === 'top1' ? ' (fidelity: no test-labels.npy, agreement with the FP32 model)' : ''}, never seen by the search: the unbiased estimate.`
    : `<b>No held-out test split</b>: the data folder has no test-inputs.npy, so there is no unbiased ${esc(labels.name)} for this policy; add test-inputs.npy (and test-labels.npy) to the data folder to get one.`;
  return `<p class="note">${val} ${select} ${test} Every figure is ± one standard error (${d.metric === 'top1' ? 'sqrt(p(1-p)/n) for top-1' : d.metric === 'sqnr' ? 'delta method for SQNR' : 'of the per-sample mean'}).</p>`;
}

function candidatesTable(d: ReportData): string {
  const splits = shownSplits(d);
  const labels = metricLabels(d.metric);
  const rows = d.candidates.map((c) => [
    `${c.chosen ? '▶ ' : ''}episode ${c.episode}`,
    fmt(c.reward, 4),
    fmt(c.costRatio),
    ...splits.map((s) => withSe(c.scores[s], d.metric)),
  ]);
  return table(['candidate', 'validation reward', `${d.constraint.kind} (x 8/8)`, ...splits.map((s) => `${labels.column} ${splitNames[s]}`)], rows);
}

/** What the policy leaves in float and its share of the model's MACs (empty when everything is quantized). */
function floatSection(d: ReportData): string {
  const ops = d.float?.ops ?? [];
  if (ops.length === 0) return '';
  const macs = ops.reduce((a, o) => a + (o.macs ?? 0), 0);
  const share = (100 * macs) / (macs + d.float!.quantizedMacs || 1);
  const unknown = ops.filter((o) => o.macs === null).length;
  return `<h2>Left in float</h2>
<p>${ops.length} op${ops.length > 1 ? 's have' : ' has'} no quantized form and run${ops.length > 1 ? '' : 's'} in float: ${fmt(macs)} MACs, <b>${fmt(share)} %</b> of the model's MACs${unknown ? ` (${unknown} inside If/Loop/Scan bodies, MACs not counted)` : ''}. The accuracies above run them in float; the hardware costs cover the quantized layers only.</p>
${table(['op', 'type', 'MACs', 'why'], ops.map((o) => [o.name, o.op, o.macs === null ? 'unknown' : fmt(o.macs), o.reason]))}`;
}

function table(headers: string[], rows: string[][]): string {
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export async function renderReport(d: ReportData): Promise<string> {
  const labels = metricLabels(d.metric);
  const costName = d.constraint.kind;
  const charts: string[] = [];
  charts.push(await renderSvg(bitsChart(d.layers.map((l, index) => ({ layer: l.name, index, wBits: l.wBits, aBits: l.aBits })))));
  charts.push(
    await renderSvg(layerCostChart('Latency', 'ms', d.layers.map((l, index) => ({ layer: l.name, index, policy: l.latencyMs, uniform8: l.latency8Ms })))),
  );
  if (d.layers.every((l) => l.energyUj !== null && l.energy8Uj !== null)) {
    charts.push(
      await renderSvg(layerCostChart('Energy', 'uJ', d.layers.map((l, index) => ({ layer: l.name, index, policy: l.energyUj!, uniform8: l.energy8Uj! })))),
    );
  }
  if (d.history.length > 0) {
    const history = d.history.map((h) => ({ episode: h.episode, reward: h.reward, top1: h.score, costRatio: h.costRatio }));
    charts.push(await renderSvg(episodesChart(history, labels)));
    const front = paretoFront(history.map((h) => ({ cost: h.costRatio, accuracy: h.top1 })));
    charts.push(await renderSvg(paretoChart(history.map((h, i) => ({ ...h, front: front[i] })), d.constraint.ratio, costName, labels)));
  }
  if (d.strategies && d.strategies.length > 1) charts.push(await renderSvg(strategyChart(d.strategies.map((s) => ({ strategy: s.strategy, top1: s.score })), labels)));

  const headline = `${esc(d.model)} on ${esc(d.target)}, ${esc(d.constraint.kind)} budget ${d.constraint.ratio} x 8-bit`;
  const layerRows = d.layers.map((l, i) => [
    String(i),
    l.name,
    String(l.wBits),
    l.aBits === null ? 'float' : String(l.aBits),
    fmt(l.latencyMs),
    fmt(l.latency8Ms),
    fmt(l.energyUj),
    fmt(l.energy8Uj),
    String(Math.round(l.sizeBytes)),
  ]);
  const strategyRows = (d.strategies ?? []).map((s) => [s.strategy, fmt(s.score, 4), s.costRatio === null ? '-' : fmt(s.costRatio)]);
  const fidelity = d.accuracyMode === 'fidelity' && d.metric === 'top1' ? ' Top-1 is fidelity: agreement with the FP32 model (no labels).' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>haq: ${headline}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:820px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}small{color:#666}.note{font-size:14px;color:#444}
</style></head><body>
<h1>haq search report</h1>
<p>${headline}. Strategy <b>${esc(d.strategy)}</b>, reward <b>${esc(d.reward)}</b>, seed ${d.seed}, ${d.history.length} policies evaluated. Search <code>${esc(d.searchId)}</code>.</p>
<p>Scored by <b>${esc(labels.name)}</b> (${esc(labels.column)}).${fidelity} Accuracy is post-training quantization with calibrated activation ranges, no fine-tuning.</p>
<h2>Against uniform quantization</h2>
${summaryTable(d)}
<small>x 8/8: cost relative to every layer at 8-bit weights and activations on the same target; lower is better. Uniform references are the most accurate uniform policies within the budget, chosen on the selection split like the policy.</small>
${gainNote(d)}
${splitsNote(d)}
<h2>Final choice</h2>
${candidatesTable(d)}
<small>The top ${d.topK} distinct policies by validation reward, re-scored on the selection split; ▶ marks the one chosen (the best on selection).</small>
${charts.map((svg) => `<figure>${svg}</figure>`).join('\n')}
<h2>Layers</h2>
${table(['#', 'layer', 'wBits', 'aBits', 'latency ms', '8/8 ms', 'energy uJ', '8/8 uJ', 'weight bytes'], layerRows)}
${floatSection(d)}
${strategyRows.length ? `<h2>Strategies</h2>${table(['strategy', `${labels.column} (validation)`, `${costName} (x 8/8)`], strategyRows)}` : ''}
</body></html>
`;
}
