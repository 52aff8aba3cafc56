import type { Rng } from '../rng';

/**
 * A small fully connected network with hand-written forward and backward passes, enough
 * for HAQ's DDPG actor (s -> 300 -> 300 -> 1, sigmoid) and critic ((s, a) -> 300 -> 300 -> 1).
 *
 * Shapes: layer l maps sizes[l] inputs to sizes[l+1] outputs; its weight is row-major
 * [out, in] (`weights[l][o * in + k]`), its bias [out]. Activations are batched row-major
 * [batch, features]. Hidden layers use ReLU; the output layer is sigmoid or linear.
 * Arithmetic is done in doubles, stored in Float32Array.
 */
export type OutputActivation = 'sigmoid' | 'linear';

export interface Mlp {
  sizes: number[];
  output: OutputActivation;
  weights: Float32Array[];
  biases: Float32Array[];
}

/** Per-layer activations kept by `forward` for `backward`: acts[0] is the input, acts[L] the output. */
export interface ForwardCache {
  batch: number;
  acts: Float32Array[];
}

export interface BackwardOptions {
  /** Compute weight and bias gradients (default true). */
  params?: boolean;
  /** Compute the input gradient (default true). */
  input?: boolean;
}

export interface Gradients {
  weights: Float32Array[];
  biases: Float32Array[];
  /** d loss / d input, [batch, sizes[0]]. */
  input: Float32Array;
}

/**
 * A network with HAQ's initialisation (lib/rl/ddpg.py `fanin_init`): hidden layers uniform in
 * +-1/sqrt(fan_in) (HAQ takes size[0] of the torch weight, which is fan_out; we use the
 * fan-in the name promises), the output layer uniform in +-finalInit (HAQ: 3e-3); biases
 * as torch's Linear default, uniform in +-1/sqrt(fan_in).
 */
export function createMlp(sizes: number[], output: OutputActivation, rng: Rng, finalInit = 3e-3): Mlp {
  if (sizes.length < 2 || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new RangeError(`MLP sizes must be >= 2 positive integers, got [${sizes.join(', ')}]`);
  }
  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fanIn = sizes[l];
    const out = sizes[l + 1];
    const last = l + 2 === sizes.length;
    const bound = last ? finalInit : 1 / Math.sqrt(fanIn);
    const w = new Float32Array(out * fanIn);
    for (let i = 0; i < w.length; i++) w[i] = rng.uniform(-bound, bound);
    const b = new Float32Array(out);
    const bBound = 1 / Math.sqrt(fanIn);
    for (let i = 0; i < b.length; i++) b[i] = rng.uniform(-bBound, bBound);
    weights.push(w);
    biases.push(b);
  }
  return { sizes: sizes.slice(), output, weights, biases };
}

export function cloneMlp(net: Mlp): Mlp {
  return {
    sizes: net.sizes.slice(),
    output: net.output,
    weights: net.weights.map((w) => w.slice()),
    biases: net.biases.map((b) => b.slice()),
  };
}

/** Number of trainable scalars. */
export function parameterCount(net: Mlp): number {
  return net.weights.reduce((s, w) => s + w.length, 0) + net.biases.reduce((s, b) => s + b.length, 0);
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** Forward pass over a batch: `input` is [batch, sizes[0]]. Returns every layer's activation. */
export function forward(net: Mlp, input: Float32Array, batch: number): ForwardCache {
  const nIn = net.sizes[0];
  if (input.length !== batch * nIn) {
    throw new RangeError(`MLP input has ${input.length} values, expected batch ${batch} x ${nIn}`);
  }
  const acts: Float32Array[] = [input];
  const nLayers = net.weights.length;
  for (let l = 0; l < nLayers; l++) {
    const inSize = net.sizes[l];
    const outSize = net.sizes[l + 1];
    const x = acts[l];
    const w = net.weights[l];
    const b = net.biases[l];
    const y = new Float32Array(batch * outSize);
    const last = l === nLayers - 1;
    for (let i = 0; i < batch; i++) {
      const xi = i * inSize;
      for (let o = 0; o < outSize; o++) {
        const wo = o * inSize;
        // Four partial sums: fewer dependent adds per iteration.
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let k = 0;
        for (; k + 3 < inSize; k += 4) {
          s0 += x[xi + k] * w[wo + k];
          s1 += x[xi + k + 1] * w[wo + k + 1];
          s2 += x[xi + k + 2] * w[wo + k + 2];
          s3 += x[xi + k + 3] * w[wo + k + 3];
        }
        for (; k < inSize; k++) s0 += x[xi + k] * w[wo + k];
        const s = b[o] + (s0 + s1) + (s2 + s3);
        if (!last) y[i * outSize + o] = s > 0 ? s : 0;
        else y[i * outSize + o] = net.output === 'sigmoid' ? sigmoid(s) : s;
      }
    }
    acts.push(y);
  }
  return { batch, acts };
}

/** The network's output for a batch, [batch, sizes[L]]. */
export function predict(net: Mlp, input: Float32Array, batch: number): Float32Array {
  const { acts } = forward(net, input, batch);
  return acts[acts.length - 1];
}

/**
 * Backward pass: given d loss / d output ([batch, sizes[L]]), the gradients of every weight,
 * bias and of the input. The derivative of ReLU at 0 is taken as 0, of the sigmoid as y(1-y).
 */
export function backward(net: Mlp, cache: ForwardCache, dOutput: Float32Array, options: BackwardOptions = {}): Gradients {
  const wantParams = options.params ?? true;
  const wantInput = options.input ?? true;
  const { batch, acts } = cache;
  const nLayers = net.weights.length;
  const weights = net.weights.map((w) => new Float32Array(w.length));
  const biases = net.biases.map((b) => new Float32Array(b.length));
  // dZ: gradient w.r.t. the pre-activation of the current layer (doubles for accuracy).
  const outSizeLast = net.sizes[nLayers];
  let dZ = new Float64Array(batch * outSizeLast);
  const yLast = acts[nLayers];
  for (let i = 0; i < dZ.length; i++) {
    dZ[i] = net.output === 'sigmoid' ? dOutput[i] * yLast[i] * (1 - yLast[i]) : dOutput[i];
  }
  let dInput = new Float32Array(0);
  for (let l = nLayers - 1; l >= 0; l--) {
    const inSize = net.sizes[l];
    const outSize = net.sizes[l + 1];
    const x = acts[l];
    const w = net.weights[l];
    const dW = weights[l];
    const dB = biases[l];
    const needX = l > 0 || wantInput;
    const dX = new Float64Array(needX ? batch * inSize : 0);
    for (let i = 0; i < batch; i++) {
      const xi = i * inSize;
      for (let o = 0; o < outSize; o++) {
        const g = dZ[i * outSize + o];
        if (g === 0) continue;
        const wo = o * inSize;
        if (wantParams) {
          dB[o] += g;
          for (let k = 0; k < inSize; k++) dW[wo + k] += g * x[xi + k];
        }
        if (needX) for (let k = 0; k < inSize; k++) dX[xi + k] += g * w[wo + k];
      }
    }
    if (l > 0) {
      // Through the ReLU of layer l-1: its output is x.
      for (let i = 0; i < dX.length; i++) if (x[i] <= 0) dX[i] = 0;
      dZ = dX;
    } else if (wantInput) {
      dInput = Float32Array.from(dX);
    }
  }
  return { weights, biases, input: dInput };
}

/** Polyak averaging, in place: target <- (1 - tau) * target + tau * source (DDPG soft update). */
export function softUpdateInPlace(target: Mlp, source: Mlp, tau: number): void {
  const mix = (t: Float32Array, s: Float32Array): void => {
    for (let i = 0; i < t.length; i++) t[i] = t[i] * (1 - tau) + s[i] * tau;
  };
  target.weights.forEach((w, l) => mix(w, source.weights[l]));
  target.biases.forEach((b, l) => mix(b, source.biases[l]));
}

/** Every parameter tensor in a fixed order (weights then biases per layer), for optimisers and checkpoints. */
export function parameterTensors(net: Mlp): Float32Array[] {
  const out: Float32Array[] = [];
  for (let l = 0; l < net.weights.length; l++) out.push(net.weights[l], net.biases[l]);
  return out;
}

export function gradientTensors(grads: Gradients): Float32Array[] {
  const out: Float32Array[] = [];
  for (let l = 0; l < grads.weights.length; l++) out.push(grads.weights[l], grads.biases[l]);
  return out;
}
