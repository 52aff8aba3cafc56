/**
 * Adam (Kingma & Ba, 2015, Algorithm 1) over a list of parameter tensors, with the bias
 * correction of the paper and torch.optim.Adam's defaults (beta1 0.9, beta2 0.999, eps 1e-8).
 */
export interface AdamState {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Steps taken so far (t in the paper). */
  step: number;
  /** First and second moment estimates, one per parameter tensor. */
  m: Float32Array[];
  v: Float32Array[];
}

export function createAdam(params: Float32Array[], lr: number, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): AdamState {
  return {
    lr,
    beta1,
    beta2,
    eps,
    step: 0,
    m: params.map((p) => new Float32Array(p.length)),
    v: params.map((p) => new Float32Array(p.length)),
  };
}

/** One Adam step, updating `params` and the moments in place. */
export function adamStepInPlace(state: AdamState, params: Float32Array[], grads: Float32Array[]): void {
  if (params.length !== state.m.length || grads.length !== params.length) {
    throw new RangeError(`Adam: ${params.length} parameter tensors, ${grads.length} gradients, ${state.m.length} moments`);
  }
  state.step += 1;
  const { lr, beta1, beta2, eps } = state;
  const c1 = 1 - beta1 ** state.step;
  const c2 = 1 - beta2 ** state.step;
  for (let t = 0; t < params.length; t++) {
    const p = params[t];
    const g = grads[t];
    const m = state.m[t];
    const v = state.v[t];
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      const mi = beta1 * m[i] + (1 - beta1) * gi;
      const vi = beta2 * v[i] + (1 - beta2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] -= (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
    }
  }
}
