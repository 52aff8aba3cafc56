/**
 * report.html: one self-contained page (no scripts, no external files) with the search's
 * result: the policy's bits per layer, per-layer latency and energy against 8-bit, reward
 * and accuracy over episodes, every evaluated policy against its cost with the Pareto front,
 * a table against uniform 8-bit and the best uniform bitwidth within the budget, and the
 * strategy comparison when there is one. Deterministic: the same data gives the same bytes.
 *
 * Top-1 comes in two columns: the validation split, on which the search selected its policy
 * (so the best policy's figure is optimistically biased), and the held-out test split, which
 * played no part in the selection. Without a test split the page says so.
 */
import type { MetricName } from '../data/metrics';
import type { Constraint } from '../quant/policy';
import { metricLabels } from './labels';
import { bitsChart, episodesChart, layerCostChart, paretoChart, paretoFront, renderSvg, strategyChart } from './charts';

export interface CostSummary {
  latencyMs: number;
  energyUj: number | null;
  sizeBytes: number;
}

export interface ReportData {
  searchId: string;
  model: string;
  target: string;
  constraint: Constraint;
  strategy: string;
  seed: number;
  /**
   * The metric every `top1` field of this report holds (default top1: percent; sqnr: output
   * SQNR in dB; cosine: output cosine similarity), from the search's `--metric`.
   */
  metric?: MetricName;
  /** FP32 top-1 (%); 'fidelity' mode: agreement with the FP32 model's top-1. */
  baselineTop1: number;
  accuracyMode: 'labels' | 'fidelity';
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
  best: CostSummary & { top1: number; reward: number; episode: number; testTop1?: number | null };
  uniform8: CostSummary & { top1: number | null; testTop1?: number | null };
  /** The largest uniform bitwidth within the budget (null: none fits). */
  bestUniform: (CostSummary & { bits: number; top1: number | null; testTop1?: number | null }) | null;
  history: Array<{ episode: number; reward: number; top1: number; costRatio: number }>;
  /** Samples of the validation split the policies were scored (and selected) on. */
  validationSamples: number;
  /**
   * Held-out figures on the data folder's test split (FP32; the policies' own are `testTop1`
   * on best, uniform8, bestUniform); null: the folder has no test-inputs.npy.
   */
  heldOut: { samples: number; accuracyMode: 'labels' | 'fidelity'; baselineTop1: number } | null;
  strategies?: Array<{ strategy: string; top1: number; costRatio: number | null }>;
  /** Ops with MACs the policy leaves in float (the layer table's `skipped`), and the quantized layers' MACs. */
  float?: { ops: Array<{ name: string; op: string; macs: number | null; reason: string }>; quantizedMacs: number };
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (v: number | null | undefined, digits = 3): string => (v === null || v === undefined || !Number.isFinite(v) ? '-' : Number(v.toPrecision(digits)).toString());
const ratio = (a: number | null, b: number | null): string => (a === null || b === null || !(b > 0) ? '-' : `${fmt(a / b)}x`);

const delta = (top1: number | null | undefined, fp32: number): string =>
  top1 === null || top1 === undefined ? '-' : `${top1 - fp32 >= 0 ? '+' : ''}${fmt(top1 - fp32, 3)}`;

function summaryHeaders(d: ReportData): string[] {
  const m = metricLabels(d.metric).column;
  const headers = ['policy', `latency (x 8/8)`, 'energy (x 8/8)', 'size (x 8/8)', `${m} validation (selection)`, 'delta vs FP32 (validation)'];
  return d.heldOut ? [...headers, `${m} test (held-out)`, 'delta vs FP32 (test)'] : headers;
}

function summaryRows(d: ReportData): string[][] {
  const held = d.heldOut;
  const row = (label: string, c: CostSummary & { top1: number | null; testTop1?: number | null }) => [
    label,
    ratio(c.latencyMs, d.uniform8.latencyMs),
    ratio(c.energyUj, d.uniform8.energyUj),
    ratio(c.sizeBytes, d.uniform8.sizeBytes),
    c.top1 === null ? '-' : fmt(c.top1, 4),
    delta(c.top1, d.baselineTop1),
    ...(held ? [c.testTop1 === null || c.testTop1 === undefined ? '-' : fmt(c.testTop1, 4), delta(c.testTop1, held.baselineTop1)] : []),
  ];
  const rows = [row(`haq ${d.strategy} (episode ${d.best.episode})`, d.best), row('uniform 8/8', d.uniform8)];
  if (d.bestUniform) rows.push(row(`uniform ${d.bestUniform.bits}/${d.constraint.kind === 'size' ? 'float' : d.bestUniform.bits} (best in budget)`, d.bestUniform));
  else rows.push(['uniform (best in budget)', 'none fits', '', '', '', '', ...(held ? ['', ''] : [])]);
  rows.push(['FP32 (unquantized)', '-', '-', '-', fmt(d.baselineTop1, 4), '', ...(held ? [fmt(held.baselineTop1, 4), ''] : [])]);
  return rows;
}

/** Which split each top-1 column is measured on, and the caveat of the validation one. */
function splitsNote(d: ReportData): string {
  const val = `Validation (selection): ${d.validationSamples} samples of val-inputs.npy; the search picked its policy by this figure, so the policy's validation ${metricLabels(d.metric).name} is optimistically biased.`;
  if (!d.heldOut) {
    return `<p class="note">${val} <b>No held-out test split</b>: the data folder has no test-inputs.npy, so there is no unbiased accuracy for this policy; add test-inputs.npy (and test-labels.npy) to the data folder to get one.</p>`;
  }
  const mode = d.heldOut.accuracyMode === 'fidelity' ? ' (fidelity: no test-labels.npy, agreement with the FP32 model)' : '';
  return `<p class="note">${val} Test (held-out): ${d.heldOut.samples} samples of test-inputs.npy${mode}, never seen by the search: the unbiased estimate.</p>`;
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
  const costName = d.constraint.kind === 'size' ? 'size' : d.constraint.kind;
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
    charts.push(await renderSvg(episodesChart(d.history, labels)));
    const front = paretoFront(d.history.map((h) => ({ cost: h.costRatio, accuracy: h.top1 })));
    charts.push(await renderSvg(paretoChart(d.history.map((h, i) => ({ ...h, front: front[i] })), d.constraint.ratio, costName, labels)));
  }
  if (d.strategies && d.strategies.length > 1) charts.push(await renderSvg(strategyChart(d.strategies, labels)));

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
  const strategyRows = (d.strategies ?? []).map((s) => [s.strategy, fmt(s.top1, 4), s.costRatio === null ? '-' : fmt(s.costRatio)]);
  const strategyHeaders = ['strategy', labels.column, `${costName} (x 8/8)`];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>haq: ${headline}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:760px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}figure{margin:1.5em 0}small{color:#666}.note{font-size:14px;color:#444}
</style></head><body>
<h1>haq search report</h1>
<p>${headline}. Strategy <b>${esc(d.strategy)}</b>, seed ${d.seed}, ${d.history.length} policies evaluated. Search <code>${esc(d.searchId)}</code>.</p>
<p>${labels.fp32Sentence(fmt(d.baselineTop1, 4), d.heldOut ? fmt(d.heldOut.baselineTop1, 4) : null)}${d.accuracyMode === 'fidelity' && labels.metric === 'top1' ? ' (fidelity mode: agreement with the FP32 model, no labels)' : ''}.
Accuracy is post-training quantization with calibrated activation ranges, no fine-tuning.</p>
<h2>Against uniform quantization</h2>
${table(summaryHeaders(d), summaryRows(d))}
<small>x 8/8: cost relative to every layer at 8-bit weights and activations on the same target; lower is better.</small>
${splitsNote(d)}
${charts.map((svg) => `<figure>${svg}</figure>`).join('\n')}
<h2>Layers</h2>
${table(['#', 'layer', 'wBits', 'aBits', 'latency ms', '8/8 ms', 'energy uJ', '8/8 uJ', 'weight bytes'], layerRows)}
${floatSection(d)}
${strategyRows.length ? `<h2>Strategies</h2>${table(strategyHeaders, strategyRows)}` : ''}
</body></html>
`;
}
