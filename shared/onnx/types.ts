import { z } from 'zod';

/**
 * The layer table: every quantizable layer of a model, in graph (topological) order, with
 * shapes resolved for one input size. It is what the hardware models, the state embedding
 * and the quantizer all read. `haq inspect --json` prints exactly these fields.
 */
export const LayerKind = z.enum(['conv', 'depthwise', 'linear']);
export type LayerKind = z.infer<typeof LayerKind>;

export const LayerInfo = z.object({
  /** 0-based position among the quantizable layers. */
  index: z.number().int().nonnegative(),
  /** The ONNX node name (made unique and non-empty at load). */
  name: z.string().min(1),
  kind: LayerKind,
  /** The ONNX op type. */
  op: z.enum(['Conv', 'Gemm', 'MatMul']),
  inChannels: z.number().int().positive(),
  outChannels: z.number().int().positive(),
  /** [kh, kw]; [1, 1] for linear layers. */
  kernel: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  /** [sh, sw]; [1, 1] for linear layers. */
  stride: z.tuple([z.number().int().positive(), z.number().int().positive()]),
  groups: z.number().int().positive(),
  /** The layer's activation input, e.g. [N, C, H, W] or [N, K]. */
  inputShape: z.array(z.number().int().nonnegative()),
  outputShape: z.array(z.number().int().nonnegative()),
  /** Weight elements (bias excluded: it stays float). */
  params: z.number().int().nonnegative(),
  /** Multiply-accumulates for the whole input shape (batch included). */
  macs: z.number().nonnegative(),
  /** ONNX tensor names: the activation input, the weight (initializer or Constant output), the bias if any. */
  inputName: z.string(),
  weightName: z.string(),
  biasName: z.string().nullable(),
  outputName: z.string(),
});
export type LayerInfo = z.infer<typeof LayerInfo>;

export const LayerTable = z.object({
  /** sha256 of the model bytes: cost tables and calibration are cached under it. */
  modelHash: z.string(),
  /** The graph input's shape the table was resolved for. */
  inputShape: z.array(z.number().int().positive()),
  layers: z.array(LayerInfo).min(1),
  totals: z.object({
    params: z.number(),
    /** MACs of the quantizable layers. */
    macs: z.number(),
    /** MACs of the ops left in float (`skipped` entries whose MACs are known). */
    skippedMacs: z.number().optional(),
  }),
  /**
   * Ops with multiply-accumulates that stay float: MatMul/Gemm of two activations (attention),
   * Conv with 1 or 3 spatial dims, ConvTranspose, recurrent layers (LSTM, GRU, RNN), Einsum, and
   * every Conv/Gemm/MatMul inside an If/Loop/Scan subgraph. `macs` is null when unknown (subgraphs).
   */
  skipped: z.array(z.object({ name: z.string(), op: z.string(), reason: z.string(), macs: z.number().nullable().default(null) })).default([]),
});
export type LayerTable = z.infer<typeof LayerTable>;
