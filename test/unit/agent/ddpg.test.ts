import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actorAction, createDdpg, decodeDdpg, defaultDdpgHyper, encodeDdpg, explorationSigma, updateInPlace } from '../../../shared/agent/ddpg';
import { predict } from '../../../shared/agent/mlp';
import { createReplay, decodeReplay, encodeReplay, pushInPlace, sampleBatch } from '../../../shared/agent/replay';
import { CorruptObjectError } from '../../../shared/errors';
import { Rng } from '../../../shared/rng';

const small = { ...defaultDdpgHyper(), hidden: [16, 16], batchSize: 16, actorLr: 1e-2, criticLr: 1e-2 };

describe('replay buffer', () => {
  it('round-trips through its binary form, full or not', () => {
    const rng = new Rng(1);
    for (const pushes of [0, 3, 7, 12]) {
      const buf = createReplay(7, 4);
      for (let i = 0; i < pushes; i++) {
        pushInPlace(buf, {
          state: Float32Array.from({ length: 4 }, () => rng.next()),
          action: rng.next(),
          reward: rng.normal(),
          nextState: Float32Array.from({ length: 4 }, () => rng.next()),
          terminal: i % 3 === 2,
        });
      }
      const back = decodeReplay(encodeReplay(buf));
      assert.deepEqual(back, buf);
      assert.equal(back.size, Math.min(pushes, 7));
      assert.deepEqual(encodeReplay(back), encodeReplay(buf));
    }
  });

  it('overwrites the oldest transition when full and samples only filled slots', () => {
    const buf = createReplay(3, 1);
    for (let i = 0; i < 5; i++) pushInPlace(buf, { state: Float32Array.of(i), action: i / 10, reward: i, nextState: Float32Array.of(i), terminal: false });
    assert.deepEqual(Array.from(buf.rewards).sort(), [2, 3, 4]);
    const b = sampleBatch(buf, 50, new Rng(2));
    assert.ok(Array.from(b.rewards).every((r) => r >= 2));
  });

  it('refuses a corrupt or foreign object', () => {
    const bytes = encodeReplay(createReplay(2, 2));
    assert.throws(() => decodeReplay(bytes.subarray(0, 10)), CorruptObjectError);
    const wrong = bytes.slice();
    wrong[0] = 88;
    assert.throws(() => decodeReplay(wrong), /magic/);
    const v2 = bytes.slice();
    v2[4] = 2;
    assert.throws(() => decodeReplay(v2), /version 2/);
  });
});

describe('DDPG agent', () => {
  it('round-trips weights, targets, Adam moments, baseline and RNG state exactly', () => {
    const agent = createDdpg(10, small, new Rng(4));
    const buf = createReplay(64, 10);
    const rng = new Rng(5);
    for (let i = 0; i < 40; i++) {
      const s = Float32Array.from({ length: 10 }, () => rng.next());
      pushInPlace(buf, { state: s, action: rng.next(), reward: rng.normal(), nextState: s, terminal: i % 4 === 3 });
    }
    for (let i = 0; i < 3; i++) updateInPlace(agent, buf);
    const bytes = encodeDdpg(agent);
    const back = decodeDdpg(bytes);
    assert.deepEqual(back, agent);
    // The restored agent continues exactly as the original.
    updateInPlace(agent, buf);
    updateInPlace(back, buf);
    assert.deepEqual(encodeDdpg(back), encodeDdpg(agent));
  });

  it('keeps the default HAQ hyper-parameters', () => {
    const h = defaultDdpgHyper();
    assert.deepEqual(h.hidden, [300, 300]);
    assert.deepEqual([h.actorLr, h.criticLr, h.tau, h.discount, h.batchSize, h.replayPerLayer], [1e-4, 1e-3, 0.01, 1, 64, 128]);
    assert.equal(explorationSigma(h, 20, 20, 100), 0.5);
    assert.ok(Math.abs(explorationSigma(h, 30, 20, 100) - 0.5 * 0.99 ** 10) < 1e-12);
    assert.equal(explorationSigma(h, 3, 20, 100), 0.5);
  });

  it('learns the best action of a one-step bandit', () => {
    // Reward peaks at a = 0.8; one state, terminal transitions. The critic learns first
    // (actor frozen by lr 0), then the actor climbs the critic to its peak and stays there.
    // A slow baseline (alpha 0.02, HAQ uses 0.5) keeps the critic's targets steady enough
    // for a 32-unit critic to resolve the peak in a few thousand steps.
    const agent = createDdpg(3, { ...small, hidden: [32, 32], batchSize: 32, tau: 0.05, baselineAlpha: 0.02 }, new Rng(6));
    const buf = createReplay(400, 3);
    const rng = new Rng(7);
    const s = Float32Array.of(0.2, 0.5, 1);
    for (let i = 0; i < 400; i++) {
      const a = rng.next();
      pushInPlace(buf, { state: s, action: a, reward: -10 * (a - 0.8) ** 2, nextState: s, terminal: true });
    }
    agent.actorAdam.lr = 0;
    for (let i = 0; i < 2000; i++) updateInPlace(agent, buf);
    const grid = Array.from({ length: 21 }, (_, i) => i / 20);
    const q = grid.map((a) => predict(agent.critic, Float32Array.of(...s, a), 1)[0]);
    const peak = grid[q.indexOf(Math.max(...q))];
    assert.ok(Math.abs(peak - 0.8) <= 0.1, `critic peaks at a = ${peak}`);
    assert.ok(Math.abs(actorAction(agent, s) - 0.5) < 0.05, 'frozen actor stays near its initial 0.5');
    agent.actorAdam.lr = 1e-3;
    for (let i = 0; i < 300; i++) updateInPlace(agent, buf);
    const a = actorAction(agent, s);
    assert.ok(Math.abs(a - 0.8) < 0.1, `actor action ${a}`);
    assert.ok(agent.baseline !== null && agent.baseline < 0);
  });
});
