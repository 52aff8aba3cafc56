import { decodeContainer, encodeContainer } from '../agent/binary';
import { ddpgFromParts, ddpgToParts, type DdpgAgent } from '../agent/ddpg';
import { Strategy } from '../config';
import { CorruptObjectError } from '../errors';
import { BestPolicy } from './results';

/**
 * The checkpoint a round starts from (searches/<id>/agent/round-<r>.bin): counters, the
 * best policy so far, strategy memory and, for ddpg, the agent (weights, targets, Adam,
 * baseline, RNG). The replay buffer is a separate object (replay/round-<r>.bin).
 */
export interface SearchState {
  strategy: Strategy;
  /** The round this state is the input of. */
  round: number;
  episodesDone: number;
  best: BestPolicy | null;
  /** Greedy: the reward of each sensitivity probe, in probe order. */
  probeTop1: number[];
  /** Hybrid: every evaluated non-probe policy's bits ([wBits, aBits] per layer) and reward, in episode order. */
  evaluated: Array<{ bits: Array<[number, number | null]>; reward: number }>;
  ddpg: DdpgAgent | null;
}

const MAGIC = 'HAQS';
const VERSION = 1;

export function encodeSearchState(state: SearchState): Uint8Array {
  const parts = state.ddpg ? ddpgToParts(state.ddpg, 'ddpg.') : null;
  const header = {
    strategy: state.strategy,
    round: state.round,
    episodesDone: state.episodesDone,
    best: state.best,
    probeTop1: state.probeTop1,
    evaluated: state.evaluated,
    ddpg: parts?.header ?? null,
  };
  return encodeContainer(MAGIC, VERSION, header, parts?.tensors ?? []);
}

export function decodeSearchState(bytes: Uint8Array, what: string): SearchState {
  const c = decodeContainer(bytes, MAGIC, VERSION, what);
  const h = c.header as Record<string, unknown>;
  const strategy = Strategy.safeParse(h?.strategy);
  const best = BestPolicy.nullable().safeParse(h?.best);
  const ints = [h?.round, h?.episodesDone];
  if (!strategy.success || !best.success || !ints.every((x) => Number.isInteger(x) && (x as number) >= 0) || !Array.isArray(h.probeTop1)) {
    throw new CorruptObjectError(`${what}: header lacks strategy/round/episodesDone/best/probeTop1`);
  }
  return {
    strategy: strategy.data,
    round: h.round as number,
    episodesDone: h.episodesDone as number,
    best: best.data,
    probeTop1: (h.probeTop1 as unknown[]).map(Number),
    evaluated: Array.isArray(h.evaluated) ? (h.evaluated as SearchState['evaluated']) : [],
    ddpg: h.ddpg ? ddpgFromParts(h.ddpg, c, what, 'ddpg.') : null,
  };
}
