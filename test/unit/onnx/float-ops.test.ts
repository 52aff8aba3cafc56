/**
 * Ops with MACs that stay float are reported with their MACs (hand formulas), and a model that
 * has them (an If body reading an outer-scope weight included) still quantizes, evaluates and
 * exports.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GraphBuilder } from '../../../shared/onnx/builder';
import { inspectModel } from '../../../shared/onnx/inspect';
import { ModelSession } from '../../../shared/onnx/runtime';
import { calibrate } from '../../../shared/quant/calibration';
import { prepareQuantEvaluator, splitFromTensor } from '../../../shared/quant/evaluator';
import { exportQuantizedModel } from '../../../shared/quant/export';
import { uniformPolicy } from '../../../shared/quant/policy';
import { Rng } from '../../../shared/rng';
import { randomWeights } from '../../fixtures/models';
import { randomInputs } from '../quant/small-models';

/**
 * Input [N, 2, 6, 6]:
 *   conv      Conv 2->4 k3 p1                         -> [N, 4, 6, 6]      quantized
 *   up        ConvTranspose 4->3 k2 s2                -> [N, 3, 12, 12]    float: 4*36 * 3*4 = 1728 MACs
 *   attn      MatMul(up, up^T) over the last two dims -> [N, 3, 12, 12]    float: 3*12*12 * 12 = 5184 MACs
 *   gap, flatten -> [N, 3]; seq = Unsqueeze to [1, N, 3]
 *   lstm      LSTM hidden 2 on [1, N, 3]              float: 1*N*(|W| + |R|) = 1 * (4*2*3 + 4*2*2) = 40 MACs
 *   if        If(true) { Gemm(flat, outer weight [3, 5]) } else { Gemm(flat, same) }   MACs unknown
 */
function floatOpsModel(): Uint8Array {
  const rng = new Rng(3);
  const g = new GraphBuilder({ name: 'float-ops', opset: 13 });
  const x = g.input('x', 'float32', [1, 2, 6, 6]);
  const conv = g.conv(x, { name: 'conv', weight: randomWeights(rng, 4 * 2 * 9), weightDims: [4, 2, 3, 3], pads: [1, 1, 1, 1] });
  const up = g.node('ConvTranspose', [conv, g.initializer('up_w', randomWeights(rng, 4 * 3 * 4), [4, 3, 2, 2])], { strides: [2, 2] }, { name: 'up' })[0];
  const t = g.op('Transpose', [up], { perm: [0, 1, 3, 2] });
  const attn = g.node('MatMul', [up, t], {}, { name: 'attn' })[0];
  const flat = g.flatten(g.globalAveragePool(attn));
  const seq = g.op('Unsqueeze', [flat, g.initializer('axes0', [0], [1], 'int64')]);
  const lstm = g.node('LSTM', [seq, g.initializer('lstm_w', randomWeights(rng, 4 * 2 * 3), [1, 8, 3]), g.initializer('lstm_r', randomWeights(rng, 4 * 2 * 2), [1, 8, 2])], { hidden_size: 2 }, { name: 'lstm', outputs: 1 })[0];
  g.output(lstm);
  g.initializer('outer_w', randomWeights(rng, 15), [3, 5]);
  const branch = (name: string) => {
    const b = new GraphBuilder({ name });
    b.output(b.node('Gemm', [flat, 'outer_w'], {}, { name: `${name}_gemm` })[0]);
    return b.graph();
  };
  const cond = g.op('Cast', [g.initializer('one', [1], [], 'int64')], { to: 9 });
  g.output(g.node('If', [cond], { then_branch: { graph: branch('then') }, else_branch: { graph: branch('else') } }, { name: 'if' })[0]);
  return g.toBytes();
}

describe('ops left in float', () => {
  it('are listed with their MACs by hand formula; subgraph ones with unknown MACs', async () => {
    const table = await inspectModel(floatOpsModel());
    assert.deepEqual(table.layers.map((l) => l.name), ['conv']);
    const byName = Object.fromEntries(table.skipped.map((s) => [s.name, s]));
    assert.equal(byName.up.macs, 4 * 36 * 3 * 4);
    assert.equal(byName.attn.macs, 3 * 12 * 12 * 12);
    assert.equal(byName.lstm.macs, 4 * 2 * 3 + 4 * 2 * 2);
    assert.equal(byName['if/then_branch/then_gemm'].macs, null);
    assert.equal(byName['if/else_branch/else_gemm'].macs, null);
    assert.equal(table.totals.skippedMacs, 1728 + 5184 + 40);
    assert.match(byName.attn.reason, /MatMul between two activations/);
    assert.match(byName.lstm.reason, /LSTM has no quantized form/);
  });

  it('the model still quantizes (outer-scope weights of the If kept), evaluates and exports', async () => {
    const bytes = floatOpsModel();
    const table = await inspectModel(bytes);
    const inputs = randomInputs(4, [1, 2, 6, 6]);
    const calibration = await calibrate(bytes, table, splitFromTensor(inputs));
    const policy = uniformPolicy(table, 8, 8);
    const ev = await prepareQuantEvaluator(bytes, table, calibration);
    try {
      const out = await ev.run(policy, inputs);
      for (const t of Object.values(out)) assert.ok(t.data.every(Number.isFinite));
    } finally {
      await ev.close();
    }
    const exported = exportQuantizedModel(bytes, table, policy, calibration);
    const session = await ModelSession.create(exported.bytes);
    try {
      const out = await session.run({ x: inputs });
      assert.equal(Object.keys(out).length, 2);
    } finally {
      await session.release();
    }
  });
});
