/**
 * Per-episode time in the embedded runner (the real search.asl.json, real handlers, a
 * filesystem store) on the zoo's fmnist-cnn, one policy per round: act / simulate / evaluate
 * / update, and orchestration = the episode's wall time minus the time any handler was
 * running (the union of their intervals: Simulate and Evaluate overlap in the Parallel
 * state). An episode runs from one Act's start to the next Act's start, so the Choice, Pass,
 * Map and Parallel transitions between handlers all count as orchestration.
 */
import { join } from 'node:path';
import { runLocalSearch } from '../../cli/embedded/local';
import type { TaskEvent } from '../../cli/embedded/runner';
import type { BenchContext, BenchSection } from '../types';

export const order = 60;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Total length of the union of [start, end) intervals. */
export function unionMs(intervals: Array<[number, number]>): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const [s, e] of sorted) {
    if (s > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = s;
      curEnd = e;
    } else curEnd = Math.max(curEnd, e);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

interface EpisodeSplit {
  wallMs: number;
  actMs: number;
  simulateMs: number;
  evaluateMs: number;
  updateMs: number;
  orchestrationMs: number;
}

/** Splits the task log of a search (B = 1) into episodes. */
export function splitEpisodes(tasks: TaskEvent[]): EpisodeSplit[] {
  const loop = tasks.filter((t) => ['Act', 'Simulate', 'Evaluate', 'Update'].includes(t.state));
  const actStarts = loop.filter((t) => t.state === 'Act').map((t) => t.startMs);
  const out: EpisodeSplit[] = [];
  for (let i = 0; i < actStarts.length; i++) {
    const start = actStarts[i];
    const inEpisode = loop.filter((t) => t.startMs >= start && (i + 1 >= actStarts.length || t.startMs < actStarts[i + 1]));
    const end = i + 1 < actStarts.length ? actStarts[i + 1] : Math.max(...inEpisode.map((t) => t.startMs + t.ms));
    const sum = (state: string) => inEpisode.filter((t) => t.state === state).reduce((a, t) => a + t.ms, 0);
    const busy = unionMs(inEpisode.map((t) => [t.startMs, t.startMs + t.ms]));
    out.push({
      wallMs: end - start,
      actMs: sum('Act'),
      simulateMs: sum('Simulate'),
      evaluateMs: sum('Evaluate'),
      updateMs: sum('Update'),
      orchestrationMs: end - start - busy,
    });
  }
  return out;
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const episodes = ctx.quick ? 6 : 24;
  const evalSamples = ctx.quick ? 200 : 1000;
  const tasks: TaskEvent[] = [];
  const t0 = performance.now();
  const result = await runLocalSearch({
    modelPath: join(ctx.root, 'models/zoo/fmnist-cnn/model.onnx'),
    dataDir: join(ctx.root, 'models/zoo/data'),
    outDir: join(ctx.scratch, 'episode'),
    config: {
      hardware: 'bismo-edge',
      constraint: { kind: 'latency', ratio: 0.5 },
      strategy: 'ddpg',
      episodes,
      warmupEpisodes: Math.floor(episodes / 2),
      parallel: 1,
      seed: 1,
      evalSamples,
      calibSamples: 128,
    },
    onTask: (e) => tasks.push(e),
  });
  const totalSeconds = (performance.now() - t0) / 1000;
  if (result.outcome.status !== 'SUCCEEDED') throw new Error(`episode bench search failed: ${JSON.stringify(result.outcome.error)}`);
  const split = splitEpisodes(tasks);
  const wall = split.reduce((a, e) => a + e.wallMs, 0);
  const orchestration = split.reduce((a, e) => a + e.orchestrationMs, 0);
  const share = (orchestration / wall) * 100;
  const rows = (['actMs', 'simulateMs', 'evaluateMs', 'updateMs', 'orchestrationMs', 'wallMs'] as const).map((k) => [
    k.replace(/Ms$/, ''),
    round1(median(split.map((e) => e[k]))),
    round1(split.reduce((a, e) => a + e[k], 0) / split.length),
    round1((split.reduce((a, e) => a + e[k], 0) / wall) * 100),
  ]);
  ctx.log(`episode: ${split.length} episodes, orchestration ${share.toFixed(2)} % of episode time`);
  return {
    id: 'episode',
    title: 'Episode time split (embedded runner, fmnist-cnn, bismo-edge latency 0.5, B = 1)',
    figures: {
      episodes: split.length,
      orchestrationSharePercent: Math.round(share * 100) / 100,
      orchestrationMedianMs: round1(median(split.map((e) => e.orchestrationMs))),
      episodeMedianMs: round1(median(split.map((e) => e.wallMs))),
      searchSeconds: Math.round(totalSeconds * 10) / 10,
    },
    tables: [
      {
        title: 'Per-episode time by step',
        headers: ['step', 'median ms', 'mean ms', '% of episode time'],
        rows,
        note:
          `${split.length} episodes (${Math.floor(episodes / 2)} random warm-up, then DDPG), ${evalSamples} validation samples per evaluation; ` +
          'orchestration = episode wall time minus the union of handler intervals (target < 5 %); simulate and evaluate overlap in the Parallel state, so the steps can add up to more than 100 %',
      },
    ],
  };
}
