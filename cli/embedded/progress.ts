/**
 * Search progress: a cli-progress bar on a TTY (episode, best reward, budget use, ETA),
 * otherwise about twenty plain lines per search on stderr.
 */
import { metricLabels } from '../../shared/report/labels';
import cliProgress from 'cli-progress';
import type { UpdateOutput } from '../../functions/lib/contracts';

export interface Progress {
  /** A setup step finished (Prepare, the cost table, the FP32 baseline). */
  step(text: string): void;
  round(update: UpdateOutput): void;
  stop(): void;
}

const fmt = (v: number | null, digits = 3): string => (v === null ? '-' : v.toFixed(digits));

/** The best policy's score in the search's metric: "top-1 88.20", "SQNR dB 31.40". */
function bestScore(u: UpdateOutput): { metric: string; score: string } {
  const labels = metricLabels(u.metric === 'sqnr' || u.metric === 'cosine' ? u.metric : 'top1');
  return { metric: labels.name === 'top-1' ? 'top-1' : labels.column, score: fmt(u.bestScore ?? u.bestTop1, labels.metric === 'cosine' ? 4 : 2) };
}

export function searchProgress(stream: NodeJS.WriteStream = process.stderr, label = 'search'): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] episode {value}/{total} | best reward {best} | {metric} {score} | budget use {budget} | ETA {eta_formatted}`,
        stream,
        hideCursor: true,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      step(text) {
        if (!started) stream.write(`${label}: ${text}\n`);
      },
      round(u) {
        const payload = { best: fmt(u.bestReward), ...bestScore(u), budget: fmt(u.budgetUse, 2) };
        if (!started) {
          bar.start(u.episodesTotal, u.episodesDone, payload);
          started = true;
        } else bar.update(u.episodesDone, payload);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let nextLine = 0;
  const t0 = performance.now();
  return {
    step(text) {
      stream.write(`${label}: ${text}\n`);
    },
    round(u) {
      if (u.episodesDone < nextLine && !u.done) return;
      nextLine = u.episodesDone + Math.max(1, Math.ceil(u.episodesTotal / 20));
      const elapsed = (performance.now() - t0) / 1000;
      const eta = u.episodesDone > 0 ? (elapsed / u.episodesDone) * (u.episodesTotal - u.episodesDone) : null;
      stream.write(
        `${label}: episode ${u.episodesDone}/${u.episodesTotal}, best reward ${fmt(u.bestReward)}, ${bestScore(u).metric} ${bestScore(u).score}, ` +
          `budget use ${fmt(u.budgetUse, 2)}, ETA ${eta === null ? '-' : `${Math.round(eta)} s`}\n`,
      );
    },
    stop() {},
  };
}
