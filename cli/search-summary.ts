/**
 * A finished search's summary from its policy.json (`haq search`, `haq policies get`): the
 * metric with its standard error on validation, selection and test for the policy, the uniform
 * references and FP32, and the gain over the better reference.
 */
import { metricLabels } from '../shared/report/labels';
import { formatTable } from './output';

type Figure = { value: number; se: number } | null;
type Scored = { score: number; scoreSe: number } | null | undefined;
const figure = (e: Scored): Figure => (e ? { value: e.score, se: e.scoreSe } : null);
type Reference = { wBits: number; aBits: number | null; pinned: boolean; costRatio: number; val: Scored; select: Scored; test: Scored } | null | undefined;

/** What the summary reads from policy.json's metrics (functions/finalize.ts writes them). */
interface FinalMetrics {
  strategy: string;
  metric: 'top1' | 'sqnr' | 'cosine';
  rewardName: string;
  reward: number;
  episode: number;
  evaluations?: { val: Scored; select: Scored; test: Scored; fp32?: { val: Scored; select: Scored; test: Scored } };
  uniformPinned?: Reference;
  uniformUnpinned?: Reference;
  uniform8?: Reference;
  reference?: 'uniformPinned' | 'uniformUnpinned' | null;
  gain?: { split: 'test' | 'select'; value: number; se: number; withinNoise: boolean } | null;
  valSamples: number;
  selectSamples: number;
  testSamples?: number | null;
  selectSource: 'file' | 'carved';
  top1: number | null;
  top1Fp32: number | null;
  testTop1?: number | null;
  testTop1Fp32?: number | null;
  testAccuracyMode?: string | null;
  costRatio: number;
  latencyMs: number;
  energyUj: number | null;
  sizeBytes: number;
}

/** The `--json` summary of a finished search from its policy.json. */
export function searchSummary(policy: { constraint: unknown; layers: unknown; target?: string; model?: { name?: string }; metrics?: Record<string, unknown> }) {
  const m = (policy.metrics ?? {}) as unknown as FinalMetrics;
  const ev = m.evaluations;
  const reference = (r: Reference) =>
    r ? { wBits: r.wBits, aBits: r.aBits, pinned: r.pinned, costRatio: r.costRatio, val: figure(r.val), select: figure(r.select), test: figure(r.test) } : null;
  return {
    model: policy.model?.name,
    target: policy.target,
    constraint: policy.constraint,
    strategy: m.strategy,
    metric: m.metric,
    rewardName: m.rewardName,
    reward: m.reward,
    episode: m.episode,
    // The metric (top-1 %, SQNR dB or cosine) +- standard error on each split: validation
    // (the reward's; optimistic), selection (the final choice) and test (held out, unbiased).
    policy: { val: figure(ev?.val), select: figure(ev?.select), test: figure(ev?.test) },
    fp32: { val: figure(ev?.fp32?.val), select: figure(ev?.fp32?.select), test: figure(ev?.fp32?.test) },
    uniformPinned: reference(m.uniformPinned),
    uniformUnpinned: reference(m.uniformUnpinned),
    uniform8: reference(m.uniform8),
    reference: m.reference ?? null,
    gain: m.gain ?? null,
    samples: { val: m.valSamples, select: m.selectSamples, test: m.testSamples ?? null },
    selectSource: m.selectSource,
    top1: m.top1,
    top1Fp32: m.top1Fp32,
    testTop1: m.testTop1 ?? null,
    testTop1Fp32: m.testTop1Fp32 ?? null,
    testAccuracyMode: m.testAccuracyMode ?? null,
    costRatio: m.costRatio,
    latencyMs: m.latencyMs,
    energyUj: m.energyUj,
    sizeBytes: m.sizeBytes,
    layers: policy.layers,
  };
}

/** The text summary: the metric per split with standard errors for the policy and its references, and the gain. */
export function summaryText(policy: Parameters<typeof searchSummary>[0]): string {
  const s = searchSummary(policy);
  const labels = metricLabels(s.metric);
  const digits = labels.metric === 'cosine' ? 4 : 2;
  const show = (f: Figure) => (f ? `${f.value.toFixed(digits)} ± ${f.se.toFixed(digits)}` : '-');
  const splits = (['val', 'select', 'test'] as const).filter((k) => k !== 'test' || s.samples.test !== null);
  const splitName = { val: 'validation', select: 'selection', test: 'test' };
  const width = (r: NonNullable<ReturnType<typeof searchSummary>['uniform8']>) => `${r.wBits}/${r.aBits ?? 'float'}`;
  const rows: Array<[string, { val: Figure; select: Figure; test: Figure }]> = [[`policy (episode ${s.episode})`, s.policy]];
  if (s.uniformPinned) rows.push([`uniform ${width(s.uniformPinned)}${s.uniformPinned.pinned ? ', first/last 8/8' : ''}`, s.uniformPinned]);
  if (s.uniformUnpinned) rows.push([`uniform ${width(s.uniformUnpinned)}, unpinned`, s.uniformUnpinned]);
  if (s.uniform8) rows.push(['uniform 8/8', s.uniform8]);
  rows.push(['FP32', s.fp32]);
  const c = s.constraint as { kind: string; ratio: number };
  const g = s.gain;
  const ref = s.reference === 'uniformPinned' ? s.uniformPinned : s.uniformUnpinned;
  const unit = labels.metric === 'top1' ? ' points' : labels.metric === 'sqnr' ? ' dB' : '';
  const gainLine = g && ref
    ? `gain over the better uniform reference (${width(ref)}${ref.pinned ? ', first/last 8/8' : ', unpinned'}) on ${g.split === 'test' ? 'test' : 'selection (no test split)'}: ` +
      `${g.value >= 0 ? '+' : ''}${g.value.toFixed(digits)} ± ${g.se.toFixed(digits)}${unit} ${g.withinNoise ? '(within noise: a tie)' : g.value > 0 ? '(beyond noise)' : '(a loss beyond noise)'}`
    : 'no uniform policy fits the budget: no uniform reference';
  const where = s.selectSource === 'file' ? 'select-inputs.npy' : 'a third carved out of val-inputs.npy';
  return [
    `${s.model} on ${s.target}, ${c.kind} budget ${c.ratio} x 8-bit (${s.strategy}, reward ${s.rewardName}); ${labels.column} ± standard error:`,
    formatTable(['', ...splits.map((k) => `${splitName[k]} (${s.samples[k]})`)], rows.map(([label, f]) => [label, ...splits.map((k) => show(f[k]))])),
    gainLine,
    `${c.kind} ${Number(s.costRatio).toFixed(3)} x 8-bit; chosen among the top policies by validation reward on the selection split (${where})` +
      (s.samples.test === null ? '; the data folder has no test-inputs.npy, so there is no held-out figure' : ''),
    '',
    formatTable(['#', 'layer', 'wBits', 'aBits'], (s.layers as Array<{ name: string; wBits: number; aBits: number | null }>).map((l, i) => [i, l.name, l.wBits, l.aBits ?? 'float'])),
  ].join('\n');
}
