import { CorruptObjectError } from '../errors';
import type { Rng } from '../rng';
import { decodeContainer, encodeContainer, takeTensor } from './binary';

/**
 * DDPG replay memory: a ring buffer of (state, action, reward, next state, terminal)
 * transitions. HAQ keeps 128 x L of them (lib/rl/memory.py SequentialMemory, `rmsize * L`).
 * Once full, the oldest transition is overwritten.
 */
export interface ReplayBuffer {
  capacity: number;
  stateSize: number;
  /** Transitions held, <= capacity. */
  size: number;
  /** Slot the next transition goes to. */
  next: number;
  states: Float32Array; // [capacity, stateSize]
  actions: Float32Array; // [capacity]
  rewards: Float32Array; // [capacity]
  nextStates: Float32Array; // [capacity, stateSize]
  terminals: Float32Array; // [capacity], 1 on an episode's last step
}

export interface Transition {
  state: Float32Array;
  action: number;
  reward: number;
  nextState: Float32Array;
  terminal: boolean;
}

export interface Batch {
  size: number;
  states: Float32Array;
  actions: Float32Array;
  rewards: Float32Array;
  nextStates: Float32Array;
  terminals: Float32Array;
}

export function createReplay(capacity: number, stateSize: number): ReplayBuffer {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`replay capacity must be a positive integer, got ${capacity}`);
  return {
    capacity,
    stateSize,
    size: 0,
    next: 0,
    states: new Float32Array(capacity * stateSize),
    actions: new Float32Array(capacity),
    rewards: new Float32Array(capacity),
    nextStates: new Float32Array(capacity * stateSize),
    terminals: new Float32Array(capacity),
  };
}

/** Appends one transition, in place (overwrites the oldest when full). */
export function pushInPlace(buf: ReplayBuffer, t: Transition): void {
  if (t.state.length !== buf.stateSize || t.nextState.length !== buf.stateSize) {
    throw new RangeError(`transition state has ${t.state.length} features, the buffer ${buf.stateSize}`);
  }
  const i = buf.next;
  buf.states.set(t.state, i * buf.stateSize);
  buf.nextStates.set(t.nextState, i * buf.stateSize);
  buf.actions[i] = t.action;
  buf.rewards[i] = t.reward;
  buf.terminals[i] = t.terminal ? 1 : 0;
  buf.next = (i + 1) % buf.capacity;
  buf.size = Math.min(buf.size + 1, buf.capacity);
}

/** A minibatch drawn uniformly with replacement (indices from `rng`). */
export function sampleBatch(buf: ReplayBuffer, batchSize: number, rng: Rng): Batch {
  if (buf.size === 0) throw new RangeError('cannot sample from an empty replay buffer');
  const d = buf.stateSize;
  const out: Batch = {
    size: batchSize,
    states: new Float32Array(batchSize * d),
    actions: new Float32Array(batchSize),
    rewards: new Float32Array(batchSize),
    nextStates: new Float32Array(batchSize * d),
    terminals: new Float32Array(batchSize),
  };
  for (let b = 0; b < batchSize; b++) {
    const i = rng.int(buf.size);
    out.states.set(buf.states.subarray(i * d, (i + 1) * d), b * d);
    out.nextStates.set(buf.nextStates.subarray(i * d, (i + 1) * d), b * d);
    out.actions[b] = buf.actions[i];
    out.rewards[b] = buf.rewards[i];
    out.terminals[b] = buf.terminals[i];
  }
  return out;
}

const MAGIC = 'HAQR';
const VERSION = 1;

/** Binary form (only the `size` filled slots are written). */
export function encodeReplay(buf: ReplayBuffer): Uint8Array {
  const n = buf.size;
  const d = buf.stateSize;
  return encodeContainer(MAGIC, VERSION, { capacity: buf.capacity, stateSize: d, size: n, next: buf.next }, [
    ['states', buf.states.subarray(0, n * d)],
    ['actions', buf.actions.subarray(0, n)],
    ['rewards', buf.rewards.subarray(0, n)],
    ['nextStates', buf.nextStates.subarray(0, n * d)],
    ['terminals', buf.terminals.subarray(0, n)],
  ]);
}

export function decodeReplay(bytes: Uint8Array, what = 'replay buffer'): ReplayBuffer {
  const c = decodeContainer(bytes, MAGIC, VERSION, what);
  const h = c.header as Record<string, unknown>;
  const ints = ['capacity', 'stateSize', 'size', 'next'].map((k) => h?.[k]);
  if (!ints.every((x) => Number.isInteger(x) && (x as number) >= 0)) {
    throw new CorruptObjectError(`${what}: header ${JSON.stringify(h)} lacks capacity/stateSize/size/next`);
  }
  const [capacity, stateSize, size, next] = ints as number[];
  if (size > capacity || next >= Math.max(capacity, 1) || capacity < 1) {
    throw new CorruptObjectError(`${what}: size ${size} / next ${next} do not fit capacity ${capacity}`);
  }
  const buf = createReplay(capacity, stateSize);
  buf.size = size;
  buf.next = next;
  buf.states.set(takeTensor(c, 'states', size * stateSize, what));
  buf.actions.set(takeTensor(c, 'actions', size, what));
  buf.rewards.set(takeTensor(c, 'rewards', size, what));
  buf.nextStates.set(takeTensor(c, 'nextStates', size * stateSize, what));
  buf.terminals.set(takeTensor(c, 'terminals', size, what));
  return buf;
}
