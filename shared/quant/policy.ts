import { z } from 'zod';
import { proportionSe } from '../data/metrics';
import { InvalidPolicyError } from '../errors';
import type { LayerTable } from '../onnx/types';
import { describeIssues } from '../validate';

/**
 * A mixed-precision policy: per quantizable layer a weight bitwidth and an activation
 * bitwidth (the layer's input), 1..8, or null for a float activation (model-size mode).
 * `haq eval --policy` accepts any JSON file with this `layers` list.
 */
export const Bits = z.number().int().min(1).max(8);

export const LayerBits = z.object({
  name: z.string().min(1),
  wBits: Bits,
  aBits: Bits.nullable(),
});
export type LayerBits = z.infer<typeof LayerBits>;

export const ConstraintKind = z.enum(['latency', 'energy', 'size']);
export type ConstraintKind = z.infer<typeof ConstraintKind>;

export const Constraint = z.object({
  kind: ConstraintKind,
  /** Budget as a fraction of the all-8-bit cost (e.g. 0.5 = half the 8/8 latency). */
  ratio: z.number().positive().max(1),
});
export type Constraint = z.infer<typeof Constraint>;

/**
 * Accuracy recovery applied after quantization (shared/quant/recovery.ts): 'none' rounds weights
 * to nearest; 'bias' adds empirical bias correction; 'full' (default) reconstructs each layer's
 * weight rounding from calibration data (GPTQ-style) and corrects the bias.
 */
export const RecoveryMode = z.enum(['none', 'bias', 'full']);
export type RecoveryMode = z.infer<typeof RecoveryMode>;

/**
 * How a policy's figures were computed: `haq eval --policy` and `haq export` read it from
 * policy.json so that they quantize exactly as the search did (same calibration samples, clip
 * method, recovery, k-means seed).
 */
export const QuantizationRecord = z.object({
  weights: z.enum(['linear', 'kmeans']),
  perChannel: z.boolean(),
  /** Activation clip values (null in model-size mode: activations stay float). */
  clipMethod: z.enum(['max', 'percentile', 'mse']).nullable(),
  percentile: z.number(),
  /** The first calibSamples samples of calib-inputs.npy (0: no calibration, model-size mode). */
  calibSamples: z.number().int().nonnegative(),
  /** sha256 of those samples' bytes as stored (null: no calibration). */
  calibSha256: z.string().nullable(),
  recovery: RecoveryMode,
  /** Seed of the k-means initialisation (model-size mode). */
  seed: z.number().int().nonnegative(),
});
export type QuantizationRecord = z.infer<typeof QuantizationRecord>;

/** `"latency:0.5"` or `{ "kind": "latency", "ratio": 0.5 }`. */
export const ConstraintSpec = z.union([
  Constraint,
  z.string().transform((s, ctx) => {
    const m = /^(latency|energy|size):([0-9.]+)$/.exec(s.trim());
    if (!m) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `constraint "${s}" is not kind:ratio, e.g. latency:0.5, energy:0.5 or size:0.25` });
      return z.NEVER;
    }
    const c = Constraint.safeParse({ kind: m[1], ratio: Number(m[2]) });
    if (!c.success) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `constraint "${s}": the ratio must be > 0 and <= 1 (a fraction of the 8-bit cost)` });
      return z.NEVER;
    }
    return c.data;
  }),
]);

export const Policy = z.object({
  model: z.object({ name: z.string(), hash: z.string().optional() }).passthrough().optional(),
  target: z.string().optional(),
  constraint: Constraint.optional(),
  layers: z.array(LayerBits).min(1),
  quantization: QuantizationRecord.optional(),
  metrics: z.record(z.unknown()).optional(),
});
export type Policy = z.infer<typeof Policy>;

/**
 * A stored policy's top-1 (%) on the validation or the test split with its standard error: from
 * metrics.evaluations (Finalize records top1Se, 100 sqrt(p(1-p)/n)), else computed from top1 /
 * testTop1 and valSamples / testSamples; se null when no sample count is recorded, null when
 * there is no top-1 for the split.
 */
export function policyTop1(policy: Pick<Policy, 'metrics'>, split: 'val' | 'test'): { value: number; se: number | null } | null {
  const m = policy.metrics ?? {};
  const evaluations = m.evaluations as Record<string, { top1?: unknown; top1Se?: unknown; samples?: unknown } | null> | undefined;
  const e = evaluations?.[split] ?? null;
  const value = e?.top1 ?? m[split === 'val' ? 'top1' : 'testTop1'];
  if (typeof value !== 'number') return null;
  if (typeof e?.top1Se === 'number') return { value, se: e.top1Se };
  const n = e?.samples ?? m[split === 'val' ? 'valSamples' : 'testSamples'];
  return { value, se: typeof n === 'number' && n > 0 ? proportionSe(value, n) : null };
}

// ---------------------------------------------------------------------------------------
// Validation against a model's layer table, pinning, size (helper C, shared/quant).


function describeBits(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * Checks a policy (parsed JSON, any shape) against the model's layer table and returns it
 * typed, with its layers in the table's order. Throws InvalidPolicyError naming every
 * offending layer or value: malformed structure, bits outside 1..8 (aBits may be null),
 * unknown or duplicate layer names, missing layers, a policy written for another model
 * (model.hash differs from the table's modelHash).
 */
export function validatePolicy(value: unknown, table: LayerTable, what = 'policy'): Policy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidPolicyError(`${what} must be a JSON object with a "layers" list, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const raw = value as { layers?: unknown; model?: { hash?: unknown; name?: unknown } };
  if (raw.model && typeof raw.model.hash === 'string' && raw.model.hash !== table.modelHash) {
    throw new InvalidPolicyError(
      `${what} was made for another model (model.hash ${raw.model.hash.slice(0, 12)}..., this model is ${table.modelHash.slice(0, 12)}...${
        typeof raw.model.name === 'string' ? `; policy model name "${raw.model.name}"` : ''
      }); run the search on this model or remove model.hash`,
      { policyHash: raw.model.hash, modelHash: table.modelHash },
    );
  }
  if (!Array.isArray(raw.layers) || raw.layers.length === 0) {
    throw new InvalidPolicyError(`${what} needs a non-empty "layers" list of {"name", "wBits", "aBits"}`);
  }
  const badBits: string[] = [];
  raw.layers.forEach((l: unknown, i: number) => {
    const layer = (l ?? {}) as Record<string, unknown>;
    const label = typeof layer.name === 'string' ? layer.name : `layers[${i}]`;
    const w = layer.wBits;
    if (!(typeof w === 'number' && Number.isInteger(w) && w >= 1 && w <= 8)) badBits.push(`${label}.wBits=${describeBits(w)}`);
    const a = layer.aBits;
    if (!(a === null || (typeof a === 'number' && Number.isInteger(a) && a >= 1 && a <= 8))) badBits.push(`${label}.aBits=${describeBits(a)}`);
  });
  if (badBits.length > 0) {
    throw new InvalidPolicyError(`${what}: bits must be integers in 1..8 (aBits may be null for a float activation): ${badBits.join(', ')}`, {
      badBits,
    });
  }
  const parsed = Policy.safeParse(value);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error.issues);
    throw new InvalidPolicyError(`${what}: ${issues}`);
  }
  const policy = parsed.data;
  const known = new Set(table.layers.map((l) => l.name));
  const seen = new Set<string>();
  const unknown: string[] = [];
  const duplicate: string[] = [];
  for (const l of policy.layers) {
    if (!known.has(l.name)) unknown.push(l.name);
    else if (seen.has(l.name)) duplicate.push(l.name);
    seen.add(l.name);
  }
  const missing = table.layers.filter((l) => !seen.has(l.name)).map((l) => l.name);
  const problems: string[] = [];
  if (unknown.length) problems.push(`unknown layers ${unknown.map((n) => `"${n}"`).join(', ')}`);
  if (duplicate.length) problems.push(`duplicate layers ${duplicate.map((n) => `"${n}"`).join(', ')}`);
  if (missing.length) problems.push(`missing layers ${missing.map((n) => `"${n}"`).join(', ')}`);
  if (problems.length) {
    const names = table.layers.map((l) => l.name);
    const shown = names.length > 12 ? `${names.slice(0, 12).join(', ')}, ... (${names.length} in all)` : names.join(', ');
    throw new InvalidPolicyError(`${what} does not fit the model: ${problems.join('; ')}. The model's quantizable layers are: ${shown} (haq inspect lists them)`, {
      unknown,
      duplicate,
      missing,
    });
  }
  const byName = new Map(policy.layers.map((l) => [l.name, l]));
  return { ...policy, layers: table.layers.map((l) => byName.get(l.name)!) };
}

/**
 * HAQ pins the first and the last quantizable layer to 8 bits (DESIGN.md: an option, on by
 * default). Returns new layers with those two at wBits 8 and aBits 8 (a float activation, null,
 * stays float). The layers must be in graph order (validatePolicy returns them so).
 */
export function pinEndLayers(layers: readonly LayerBits[], pinnedBits = 8): LayerBits[] {
  const last = layers.length - 1;
  return layers.map((l, i) => (i === 0 || i === last ? { ...l, wBits: pinnedBits, aBits: l.aBits === null ? null : pinnedBits } : { ...l }));
}

/** A uniform policy: every layer at the same bits (aBits null: float activations). */
export function uniformPolicy(table: LayerTable, wBits: number, aBits: number | null): Policy {
  return { model: { name: 'model', hash: table.modelHash }, layers: table.layers.map((l) => ({ name: l.name, wBits, aBits })) };
}

/**
 * Size of the quantized weights in bytes: sum over layers of params * wBits / 8 (HAQ's model
 * size, section 3.3: biases, scales and codebooks are not counted).
 */
export function policySizeBytes(table: LayerTable, layers: readonly LayerBits[]): number {
  const bits = new Map(layers.map((l) => [l.name, l.wBits]));
  return table.layers.reduce((sum, l) => sum + (l.params * (bits.get(l.name) ?? 32)) / 8, 0);
}
