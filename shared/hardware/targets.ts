import { z } from 'zod';
import { InvalidInputError, UnknownTargetError } from '../errors';

/**
 * The hardware target registry: three kinds of cost model (BISMO bit-serial FPGA overlay,
 * BitFusion bit-flexible systolic array, roofline device) and the built-in instances HAQ and
 * the project compare on. Custom targets are the same JSON objects (docs/hardware.md), read
 * from a file by the CLI or inline in SearchConfig.hardware, and validated here.
 */

const positive = z.number().positive();
const positiveInt = z.number().int().positive();
const name = z.string().min(1).regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits, ".", "_" or "-"');

/** BISMO (Umuroglu, Rasnayake, Sjalander, FPL 2018): a Dm x Dn array of Dk-bit binary dot-product units. */
export const BismoTarget = z
  .object({
    kind: z.literal('bismo'),
    name,
    description: z.string().optional(),
    /** Rows of the DPU array (weight rows per tile). */
    dm: positiveInt,
    /** Columns of the DPU array (activation columns per tile). */
    dn: positiveInt,
    /** Bits in one binary dot product per DPU per cycle (one buffer word). */
    dk: positiveInt,
    frequencyHz: positive,
    /** DRAM read channel of each operand: weights (LHS) and activations (RHS) are fetched in parallel. */
    lhsFetchBitsPerCycle: positive,
    rhsFetchBitsPerCycle: positive,
    /**
     * DRAM write channel of the result stage. Absent: result writes are not charged, as in HAQ's
     * BISMO tables (the cloud table shows no layer bounded by them).
     */
    resultBitsPerCycle: positive.optional(),
    batch: positiveInt,
    /** Depth of each DPU row's weight buffer and each column's activation buffer, in Dk-bit words (BISMO's bm, bn). */
    lhsBufferWords: positiveInt,
    rhsBufferWords: positiveInt,
    /** Accumulator (result) width written back to DRAM. */
    accumulatorBits: positiveInt.default(32),
    /**
     * How a convolution's batch maps onto products: "image", one product per image (N = output
     * pixels; what HAQ's tables do), or "batch", one product whose N columns are all images' pixels.
     */
    batching: z.enum(['image', 'batch']).default('image'),
  })
  .strict();
export type BismoTarget = z.infer<typeof BismoTarget>;

/** Energy constants of a BitFusion instance, all in picojoules. */
export const BitFusionEnergy = z
  .object({
    coreDynamicPjPerCycle: z.number().nonnegative(),
    wbufReadPjPerBit: z.number().nonnegative(),
    wbufWritePjPerBit: z.number().nonnegative(),
    ibufReadPjPerBit: z.number().nonnegative(),
    ibufWritePjPerBit: z.number().nonnegative(),
    obufReadPjPerBit: z.number().nonnegative(),
    obufWritePjPerBit: z.number().nonnegative(),
    dramPjPerBit: z.number().nonnegative(),
  })
  .strict();
export type BitFusionEnergy = z.infer<typeof BitFusionEnergy>;

/** BitFusion (Sharma et al., ISCA 2018): N x M fusion units of 2-bit BitBricks. */
export const BitFusionTarget = z
  .object({
    kind: z.literal('bitfusion'),
    name,
    description: z.string().optional(),
    /** Rows (input-channel lanes) and columns (output channels) of the systolic array. */
    n: positiveInt,
    m: positiveInt,
    frequencyHz: positive,
    ibufBytes: positiveInt,
    wbufBytes: positiveInt,
    obufBytes: positiveInt,
    /** DRAM interface width, bits per accelerator cycle. */
    bandwidthBitsPerCycle: positive,
    batch: positiveInt,
    /** BitBrick width and the widest fused precision: speed factor floor(pmax/max(b,pmin)) per operand. */
    pmin: positiveInt.default(2),
    pmax: positiveInt.default(8),
    energy: BitFusionEnergy,
  })
  .strict()
  .refine((t) => t.pmin <= t.pmax, { message: 'pmin must be <= pmax', path: ['pmin'] });
export type BitFusionTarget = z.infer<typeof BitFusionTarget>;

/** A device described by its peak throughput per native precision and its memory bandwidth. */
export const RooflineTarget = z
  .object({
    kind: z.literal('roofline'),
    name,
    description: z.string().optional(),
    /** Dense peak operations per second (1 MAC = 2 ops) keyed by native integer/float bit width, e.g. {"8": 6.24e14}. */
    peakOpsPerSecond: z.record(z.string().regex(/^[1-9][0-9]*$/, 'keys are bit widths, e.g. "8"'), positive).refine(
      (r) => Object.keys(r).length > 0,
      'give at least one precision',
    ),
    memoryBandwidthBytesPerSecond: positive,
    batch: positiveInt,
    /** Optional energy model: picojoules per op at each native precision, and per DRAM byte. */
    energy: z
      .object({
        pjPerOp: z.record(z.string().regex(/^[1-9][0-9]*$/), z.number().nonnegative()),
        pjPerByte: z.number().nonnegative(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type RooflineTarget = z.infer<typeof RooflineTarget>;

export const Target = z.discriminatedUnion('kind', [
  BismoTarget,
  // discriminatedUnion needs plain objects: the pmin/pmax refinement is re-checked in resolveTarget.
  BitFusionTarget.innerType(),
  RooflineTarget,
]);
export type Target = BismoTarget | BitFusionTarget | RooflineTarget;
export type TargetKind = Target['kind'];

/**
 * Built-in targets. Sources:
 * - BISMO: Umuroglu et al., "BISMO: A Scalable Bit-Serial Matrix Multiplication Overlay for
 *   Reconfigurable Computing", FPL 2018 (arXiv:1806.08862), costed as HAQ's own tables do.
 *   Cloud: Dm = Dn = 16, Dk = 256 and one 256-bit word per cycle on each operand's read channel
 *   (two of HAQ's 4 x 256-bit AXI ports), result writes not charged: fitted to HAQ's BISMO cloud
 *   table (test/fixtures/reference/haq-bismo-cloud, docs/hardware.md); batch 16 (HAQ Sec. 4).
 *   Edge: the same model with HAQ's edge configuration (Zynq-7020, batch 1, 8x8 array,
 *   4 x 64-bit AXI -> 64 bits per cycle per operand, by analogy with the cloud fit); Dk = 256 as
 *   BISMO's PYNQ-Z1 instance. Edge clock 200 MHz: BISMO's 6.5 binary TOPS on the PYNQ-Z1
 *   = 2*Dm*Dn*Dk ops/cycle (32768) x ~200 MHz. Cloud clock 250 MHz: the AWS F1 (VU9P) default
 *   kernel clock (assumption: the table is in cycles and HAQ does not state it). Buffer depths
 *   1024 (edge: 16 buffers x 256 bits x 1024 = 4.2 Mb of the Zynq-7020's 4.9 Mb BRAM) and 4096
 *   (cloud, 34 Mb of the VU9P's 76 Mb): assumptions; no reference layer exceeds them.
 * - BitFusion: Sharma et al., ISCA 2018, the Eyeriss-comparable configuration (bf_e_conf.ini of
 *   hsharma35/bitfusion): 16x32, 500 MHz, 32/64/16 KB IBUF/WBUF/OBUF, 192 bit/cycle, batch 16.
 *   Energy constants: the simulator's own derivation (systolic_array_synth.csv scaled by N*M/16,
 *   cacti_sweep.csv per-bit SRAM energies, DRAM 15 pJ/bit), see test/fixtures/reference/bitfusion.
 * - Roofline: vendor datasheets (dense, no sparsity):
 *   A100 SXM4 80 GB: INT4 1248 TOPS, INT8 624 TOPS, FP16 312 TFLOPS, 2039 GB/s (NVIDIA A100 datasheet).
 *   H100 SXM5: INT8 1979 TOPS, FP16 989 TFLOPS, no INT4, 3.35 TB/s (NVIDIA H100 datasheet; the
 *   datasheet's 3958 TOPS INT8 is with 2:4 sparsity).
 *   Jetson AGX Orin 64 GB GPU: INT8 85 TOPS dense (170 sparse), FP16 42.5 TFLOPS dense,
 *   204.8 GB/s LPDDR5 (NVIDIA Jetson AGX Orin series datasheet; the DLAs are not modelled).
 *   Cortex-A76, 4 cores at 2.4 GHz (e.g. Raspberry Pi 5): 64 int8 ops/cycle/core (2 x 128-bit
 *   SDOT pipes, 16 MACs each), 32 FP16 ops and 16 FP32 ops/cycle/core (2 x 128-bit FMLA);
 *   LPDDR4X-4267 x32 = 17.1 GB/s (Arm Cortex-A76 Software Optimization Guide; RPi 5 product brief).
 */
const bitFusionEyerissEnergy: BitFusionEnergy = {
  coreDynamicPjPerCycle: 235.104,
  wbufReadPjPerBit: 0.021365656,
  wbufWritePjPerBit: 0.028916156,
  ibufReadPjPerBit: 0.059474375,
  ibufWritePjPerBit: 0.113704063,
  obufReadPjPerBit: 0.033155312,
  obufWritePjPerBit: 0.073084063,
  dramPjPerBit: 15,
};

const a76Cores = 4;
const a76Hz = 2.4e9;

export const builtinTargets: Readonly<Record<string, Target>> = Object.freeze({
  'bismo-edge': {
    kind: 'bismo',
    name: 'bismo-edge',
    description: 'BISMO on Xilinx Zynq-7020 (HAQ edge): 8x8 DPUs, Dk 256, 64-bit read channel per operand, 200 MHz, batch 1',
    dm: 8,
    dn: 8,
    dk: 256,
    frequencyHz: 200e6,
    lhsFetchBitsPerCycle: 64,
    rhsFetchBitsPerCycle: 64,
    batch: 1,
    lhsBufferWords: 1024,
    rhsBufferWords: 1024,
    accumulatorBits: 32,
    batching: 'image',
  },
  'bismo-cloud': {
    kind: 'bismo',
    name: 'bismo-cloud',
    description: 'BISMO on Xilinx VU9P (HAQ cloud, fitted to its latency table): 16x16 DPUs, Dk 256, 256-bit read channel per operand, 250 MHz, batch 16',
    dm: 16,
    dn: 16,
    dk: 256,
    frequencyHz: 250e6,
    lhsFetchBitsPerCycle: 256,
    rhsFetchBitsPerCycle: 256,
    batch: 16,
    lhsBufferWords: 4096,
    rhsBufferWords: 4096,
    accumulatorBits: 32,
    batching: 'image',
  },
  bitfusion: {
    kind: 'bitfusion',
    name: 'bitfusion',
    description: 'BitFusion, Eyeriss-comparable: 16x32 fusion units, 500 MHz, IBUF/WBUF/OBUF 32/64/16 KB, 192 bit/cycle, batch 16',
    n: 16,
    m: 32,
    frequencyHz: 500e6,
    ibufBytes: 32 * 1024,
    wbufBytes: 64 * 1024,
    obufBytes: 16 * 1024,
    bandwidthBitsPerCycle: 192,
    batch: 16,
    pmin: 2,
    pmax: 8,
    energy: bitFusionEyerissEnergy,
  },
  a100: {
    kind: 'roofline',
    name: 'a100',
    description: 'NVIDIA A100 SXM4 80 GB, dense tensor-core peaks',
    peakOpsPerSecond: { '4': 1248e12, '8': 624e12, '16': 312e12 },
    memoryBandwidthBytesPerSecond: 2039e9,
    batch: 1,
  },
  h100: {
    kind: 'roofline',
    name: 'h100',
    description: 'NVIDIA H100 SXM5, dense tensor-core peaks (no INT4)',
    peakOpsPerSecond: { '8': 1979e12, '16': 989e12 },
    memoryBandwidthBytesPerSecond: 3.35e12,
    batch: 1,
  },
  'jetson-orin': {
    kind: 'roofline',
    name: 'jetson-orin',
    description: 'NVIDIA Jetson AGX Orin 64 GB, Ampere GPU dense peaks (DLAs not modelled)',
    peakOpsPerSecond: { '8': 85e12, '16': 42.5e12 },
    memoryBandwidthBytesPerSecond: 204.8e9,
    batch: 1,
  },
  'cortex-a76': {
    kind: 'roofline',
    name: 'cortex-a76',
    description: 'Arm Cortex-A76, 4 cores at 2.4 GHz, NEON SDOT (int8) and FP16/FP32 FMLA',
    peakOpsPerSecond: { '8': 64 * a76Cores * a76Hz, '16': 32 * a76Cores * a76Hz, '32': 16 * a76Cores * a76Hz },
    memoryBandwidthBytesPerSecond: 17.1e9,
    batch: 1,
  },
});

export const targetNames = (): string[] => Object.keys(builtinTargets);

export interface ResolveOptions {
  /** Overrides the target's own batch size (must be a positive integer). */
  batch?: number;
}

/**
 * A target from a built-in name or a custom description (an object, or JSON text already
 * read from a file). Throws UnknownTargetError for an unknown name or an invalid description,
 * InvalidInputError for a batch that is not a positive integer.
 */
export function resolveTarget(nameOrSpec: string | Record<string, unknown>, options: ResolveOptions = {}): Target {
  let target: Target;
  if (typeof nameOrSpec === 'string') {
    const trimmed = nameOrSpec.trim();
    if (trimmed.startsWith('{')) {
      let value: unknown;
      try {
        value = JSON.parse(trimmed);
      } catch (err) {
        throw new UnknownTargetError(`custom hardware target is not valid JSON: ${(err as Error).message}`);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new UnknownTargetError('custom hardware target must be a JSON object');
      }
      target = parseTargetSpec(value as Record<string, unknown>);
    } else {
      const found = builtinTargets[trimmed];
      if (!found) {
        throw new UnknownTargetError(
          `unknown hardware target "${nameOrSpec}"; known targets: ${targetNames().join(', ')} ` +
            '(or pass a custom target JSON file, see docs/hardware.md)',
          { target: nameOrSpec, known: targetNames() },
        );
      }
      target = structuredClone(found);
    }
  } else {
    target = parseTargetSpec(nameOrSpec);
  }
  if (options.batch !== undefined) {
    if (!Number.isInteger(options.batch) || options.batch < 1) {
      throw new InvalidInputError(`batch ${options.batch} is invalid for ${target.name}; use a positive integer such as 1 or 16`, {
        batch: options.batch,
      });
    }
    target = { ...target, batch: options.batch };
  }
  return target;
}

/** Validates a custom target description, naming every bad field. */
export function parseTargetSpec(spec: Record<string, unknown>, what = 'custom hardware target'): Target {
  const kind = spec.kind;
  const schemas = { bismo: BismoTarget, bitfusion: BitFusionTarget, roofline: RooflineTarget } as const;
  if (typeof kind !== 'string' || !(kind in schemas)) {
    throw new UnknownTargetError(
      `${what}: "kind" is ${JSON.stringify(kind)}; use one of ${Object.keys(schemas).join(', ')} (see docs/hardware.md)`,
      { kind },
    );
  }
  if (kind === 'bismo' && ('axiPorts' in spec || 'axiWidthBits' in spec)) {
    const label = typeof spec.name === 'string' ? `${what} "${spec.name}"` : what;
    throw new UnknownTargetError(
      `${label} (kind bismo): axiPorts/axiWidthBits are replaced by lhsFetchBitsPerCycle and rhsFetchBitsPerCycle ` +
        '(the read channel of weights and of activations, e.g. 256 and 256 for one 256-bit AXI port each; see docs/hardware.md)',
      { kind },
    );
  }
  const result = schemas[kind as TargetKind].safeParse(spec);
  const parsed = result.success ? (result.data as Target) : null;
  if (parsed?.kind === 'roofline' && parsed.energy) {
    const perOp = parsed.energy.pjPerOp;
    const missing = Object.keys(parsed.peakOpsPerSecond).filter((p) => !(p in perOp));
    if (missing.length > 0) {
      throw new UnknownTargetError(
        `${what} "${parsed.name}": energy.pjPerOp has no entry for precision ${missing.join(', ')}; give one per key of peakOpsPerSecond`,
      );
    }
  }
  if (!result.success) {
    const label = typeof spec.name === 'string' ? `${what} "${spec.name}"` : what;
    const issues = result.error.issues
      .map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}${i.code === 'invalid_type' && i.received === 'undefined' ? ' (missing)' : ''}`)
      .join('; ');
    throw new UnknownTargetError(`${label} (kind ${kind}): ${issues}`, { issues: result.error.issues });
  }
  return result.data as Target;
}

/** A stable identifier for caching: the name for a built-in, name + content hash for a custom target. */
export function targetId(target: Target): string {
  const builtin = builtinTargets[target.name];
  const same = builtin && JSON.stringify(canonical(builtin)) === JSON.stringify(canonical({ ...target, batch: builtin.batch }));
  const base = same ? target.name : `${target.name}-${fnv1a(JSON.stringify(canonical({ ...target, batch: 0 })))}`;
  return `${base}-b${target.batch}`;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** 32-bit FNV-1a as 8 hex digits: enough to tell custom targets of the same name apart. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}
