import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adamStepInPlace, createAdam } from '../../../shared/agent/adam';
import { backward, createMlp, forward, parameterTensors, predict, softUpdateInPlace, type Mlp } from '../../../shared/agent/mlp';
import { Rng } from '../../../shared/rng';
import { expectClose } from '../../helpers/expect-close';

/** Loss = sum_i c_i * y_i over the batch outputs, so dL/dy = c. */
function loss(net: Mlp, x: Float32Array, batch: number, c: Float32Array): number {
  const y = predict(net, x, batch);
  let s = 0;
  for (let i = 0; i < y.length; i++) s += c[i] * y[i];
  return s;
}

/** Central difference (f(v + eps) - f(v - eps)) / 2 eps of f at element i of buf, restored after. */
function centralDifference(buf: Float32Array, i: number, eps: number, f: () => number): number {
  const orig = buf[i];
  buf[i] = orig + eps;
  const up = f();
  buf[i] = orig - eps;
  const down = f();
  buf[i] = orig;
  return (up - down) / (2 * eps);
}

function randomArray(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.uniform(-scale, scale));
}

describe('MLP', () => {
  for (const output of ['sigmoid', 'linear'] as const) {
    it(`backward matches central finite differences (${output} output)`, () => {
      const rng = new Rng(11);
      const net = createMlp([5, 7, 6, 2], output, rng, 0.5);
      const batch = 3;
      const x = randomArray(batch * 5, rng);
      const c = randomArray(batch * 2, rng);
      const grads = backward(net, forward(net, x, batch), c);
      const eps = 1e-2;
      const params = parameterTensors(net);
      const gradList: Float32Array[] = [];
      for (let l = 0; l < grads.weights.length; l++) gradList.push(grads.weights[l], grads.biases[l]);
      params.forEach((p, t) => {
        for (let i = 0; i < p.length; i++) {
          const numeric = centralDifference(p, i, eps, () => loss(net, x, batch, c));
          expectClose(gradList[t][i], numeric, { atol: 2e-3, rtol: 2e-2 }, `param tensor ${t}`);
        }
      });
      // Input gradient (the critic's dQ/da uses it).
      for (let i = 0; i < x.length; i++) {
        const numeric = centralDifference(x, i, eps, () => loss(net, x, batch, c));
        expectClose(grads.input[i], numeric, { atol: 2e-3, rtol: 2e-2 }, 'input');
      }
    });
  }

  it('sigmoid output stays in (0, 1) and the same seed gives the same weights', () => {
    const a = createMlp([10, 300, 300, 1], 'sigmoid', new Rng(3));
    const b = createMlp([10, 300, 300, 1], 'sigmoid', new Rng(3));
    assert.deepEqual(a.weights[1], b.weights[1]);
    const y = predict(a, randomArray(40, new Rng(4), 5), 4);
    assert.ok(y.every((v) => v > 0 && v < 1));
    // Output layer init is small (HAQ init_w 3e-3), so mu(s) starts near 0.5.
    assert.ok(y.every((v) => Math.abs(v - 0.5) < 0.05), `outputs ${Array.from(y)}`);
  });

  it('rejects an input of the wrong length', () => {
    const net = createMlp([3, 4, 1], 'linear', new Rng(1));
    assert.throws(() => forward(net, new Float32Array(5), 2), /expected batch 2 x 3/);
  });

  it('soft update moves the target by tau towards the source', () => {
    const rng = new Rng(5);
    const src = createMlp([2, 3, 1], 'linear', rng);
    const tgt = createMlp([2, 3, 1], 'linear', rng);
    const before = tgt.weights[0].slice();
    softUpdateInPlace(tgt, src, 0.25);
    const expected = before.map((t, i) => 0.75 * t + 0.25 * src.weights[0][i]);
    expectClose(tgt.weights[0], expected, { atol: 1e-6 });
  });

  it('Adam fits a linear regression', () => {
    const rng = new Rng(9);
    const net = createMlp([2, 1], 'linear', rng, 0.1);
    const adam = createAdam(parameterTensors(net), 0.05);
    const x = randomArray(64 * 2, rng);
    const y = new Float32Array(64).map((_, i) => 3 * x[2 * i] - 2 * x[2 * i + 1] + 0.5);
    for (let step = 0; step < 600; step++) {
      const cache = forward(net, x, 64);
      const out = cache.acts[cache.acts.length - 1];
      const d = out.map((o, i) => (2 * (o - y[i])) / 64);
      const g = backward(net, cache, d);
      adamStepInPlace(adam, parameterTensors(net), [g.weights[0], g.biases[0]]);
    }
    expectClose(net.weights[0], [3, -2], { atol: 0.02 });
    expectClose(net.biases[0], [0.5], { atol: 0.02 });
    assert.equal(adam.step, 600);
  });
});
