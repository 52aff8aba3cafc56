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

/**
 * C[i, j] = sum_k A[i, k] * B[j, k] (+ bias[j]) for row-major A [m, p], B [n, p], C [m, n]:
 * the one kernel behind the forward and both backward products. Blocked 2 x 2 so each loaded
 * value feeds two multiply-adds; the summation order is fixed, so results are reproducible.
 */
function gemmNT(a: Float32Array, b: Float32Array, m: number, n: number, p: number, bias: Float32Array | null): Float32Array {
  const c = new Float32Array(m * n);
  let i = 0;
  for (; i + 1 < m; i += 2) {
    const a0 = i * p;
    const a1 = a0 + p;
    let j = 0;
    for (; j + 1 < n; j += 2) {
      const b0 = j * p;
      const b1 = b0 + p;
      let s00 = 0, s01 = 0, s10 = 0, s11 = 0;
      for (let k = 0; k < p; k++) {
        const x0 = a[a0 + k];
        const x1 = a[a1 + k];
        const y0 = b[b0 + k];
        const y1 = b[b1 + k];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      const bj0 = bias ? bias[j] : 0;
      const bj1 = bias ? bias[j + 1] : 0;
      c[i * n + j] = s00 + bj0;
      c[i * n + j + 1] = s01 + bj1;
      c[(i + 1) * n + j] = s10 + bj0;
      c[(i + 1) * n + j + 1] = s11 + bj1;
    }
    for (; j < n; j++) {
      const b0 = j * p;
      let s0 = 0, s1 = 0;
      for (let k = 0; k < p; k++) {
        s0 += a[a0 + k] * b[b0 + k];
        s1 += a[a1 + k] * b[b0 + k];
      }
      const bj = bias ? bias[j] : 0;
      c[i * n + j] = s0 + bj;
      c[(i + 1) * n + j] = s1 + bj;
    }
  }
  for (; i < m; i++) {
    const a0 = i * p;
    for (let j = 0; j < n; j++) {
      const b0 = j * p;
      let s = 0;
      for (let k = 0; k < p; k++) s += a[a0 + k] * b[b0 + k];
      c[i * n + j] = s + (bias ? bias[j] : 0);
    }
  }
  return c;
}

/** Transpose of a row-major [rows, cols] matrix. */
function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
  return t;
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
    // Y = X W^T + b: [batch, in] x [out, in]^T.
    const y = gemmNT(acts[l], net.weights[l], batch, net.sizes[l + 1], net.sizes[l], net.biases[l]);
    if (l < nLayers - 1) {
      for (let i = 0; i < y.length; i++) if (y[i] < 0) y[i] = 0;
    } else if (net.output === 'sigmoid') {
      for (let i = 0; i < y.length; i++) y[i] = sigmoid(y[i]);
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
 *   dW = dZ^T X,  db = sum over the batch of dZ,  dX = dZ W
 */
export function backward(net: Mlp, cache: ForwardCache, dOutput: Float32Array, options: BackwardOptions = {}): Gradients {
  const wantParams = options.params ?? true;
  const wantInput = options.input ?? true;
  const { batch, acts } = cache;
  const nLayers = net.weights.length;
  const weights: Float32Array[] = net.weights.map((w) => new Float32Array(w.length));
  const biases: Float32Array[] = net.biases.map((b) => new Float32Array(b.length));
  const yLast = acts[nLayers];
  // dZ: gradient w.r.t. the pre-activation of the current layer.
  let dZ: Float32Array = new Float32Array(dOutput.length);
  for (let i = 0; i < dZ.length; i++) dZ[i] = net.output === 'sigmoid' ? dOutput[i] * yLast[i] * (1 - yLast[i]) : dOutput[i];
  let dInput: Float32Array = new Float32Array(0);
  for (let l = nLayers - 1; l >= 0; l--) {
    const inSize = net.sizes[l];
    const outSize = net.sizes[l + 1];
    const x = acts[l];
    if (wantParams) {
      const dZt = transpose(dZ, batch, outSize);
      weights[l] = gemmNT(dZt, transpose(x, batch, inSize), outSize, inSize, batch, null);
      const dB = biases[l];
      for (let o = 0; o < outSize; o++) {
        let s = 0;
        for (let i = 0; i < batch; i++) s += dZt[o * batch + i];
        dB[o] = s;
      }
    }
    if (l === 0 && !wantInput) break;
    // dX = dZ W: [batch, out] x ([in, out])^T.
    const dX = gemmNT(dZ, transpose(net.weights[l], outSize, inSize), batch, inSize, outSize, null);
    if (l > 0) {
      // Through the ReLU of layer l-1: its output is x.
      for (let i = 0; i < dX.length; i++) if (x[i] <= 0) dX[i] = 0;
      dZ = dX;
    } else {
      dInput = dX;
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
