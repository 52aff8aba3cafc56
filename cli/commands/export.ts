/**
 * `haq export MODEL --policy policy.json --out model.quant.onnx [--data DIR]`: writes the model
 * with the policy applied as a standard ONNX model (QuantizeLinear/DequantizeLinear with
 * int8/int4 weights and 8-bit-container activations narrowed to their bitwidth by a Clip, see
 * shared/quant/export.ts and docs/quantization.md). Activation quantization needs calibrated
 * ranges: `--data DIR` with calib-inputs.npy.
 *
 * Also the helpers `haq eval --policy` uses (policy file, calibration from a data folder, the
 * quantizer flags).
 */
import type { Command } from 'commander';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { inputBatch, loadDataset } from '../../shared/data/dataset';
import { InvalidInputError, InvalidPolicyError } from '../../shared/errors';
import { parseShape } from '../../shared/onnx/layers';
import { inspectModel } from '../../shared/onnx/inspect';
import type { LayerTable } from '../../shared/onnx/types';
import { calibrate, tensorSha256, type Calibration } from '../../shared/quant/calibration';
import { ClipMethod } from '../../shared/quant/clip-range';
import type { RecoverySource, WeightMode } from '../../shared/quant/evaluator';
import { exportQuantizedModel } from '../../shared/quant/export';
import { policySizeBytes, RecoveryMode, validatePolicy, type Policy } from '../../shared/quant/policy';
import { computeRecovery, policyLayers, recoverySource } from '../../shared/quant/recovery';
import { FsStore } from '../../shared/store/fs-store';
import { action, formatTable, printJson } from '../output';
import { checkOutFile, writeOutFile } from '../inputs';
import { readInputFile } from './inspect';

export interface QuantCliOptions {
  weights?: string;
  clipMethod?: string;
  perTensor?: boolean;
  recovery?: string;
  inputShape?: string;
}

/** How to quantize: the flags, else what policy.json records, else the defaults. */
export interface QuantFlags {
  weightMode: WeightMode;
  clipMethod: ClipMethod;
  perChannel: boolean;
  /** k-means seed (the search's seed when policy.json records it). */
  seed: number;
  /** Calibrate on the first N samples of calib-inputs.npy (0: all). */
  calibSamples: number;
  percentile: number;
  /** The search's calibration data hash, to warn when the folder holds other data. */
  calibSha256: string | null;
  /** Accuracy recovery of linear weights (shared/quant/recovery.ts). */
  recovery: RecoveryMode;
}

/** Adds --weights, --clip-method, --per-tensor to a command. */
export function addQuantOptions(cmd: Command): Command {
  return cmd
    .option('--weights <mode>', "weight quantization: linear (symmetric, per channel) or kmeans (2^b shared values per layer); default: the policy's, else linear")
    .option('--clip-method <method>', "activation clip range from calibration: mse, percentile or max; default: the policy's, else mse")
    .option('--per-tensor', 'one weight scale per layer instead of one per output channel')
    .option('--recovery <mode>', "accuracy recovery from the calibration data: full (GPTQ + bias correction), bias or none (round to nearest); default: the policy's, else full");
}

/**
 * The quantizer settings: each flag given on the command line wins, then the policy's
 * `quantization` record (what the search used, so eval and export reproduce its figures and its
 * model), then the defaults.
 */
export function quantFlags(opts: QuantCliOptions, policy?: Policy): QuantFlags {
  const rec = policy?.quantization;
  const weights = opts.weights ?? rec?.weights ?? 'linear';
  if (weights !== 'linear' && weights !== 'kmeans') {
    throw new InvalidInputError(`--weights ${weights} must be linear or kmeans`, { value: weights });
  }
  const method = ClipMethod.safeParse(opts.clipMethod ?? rec?.clipMethod ?? 'mse');
  if (!method.success) throw new InvalidInputError(`--clip-method ${opts.clipMethod} must be mse, percentile or max`, { value: opts.clipMethod });
  const recovery = RecoveryMode.safeParse(opts.recovery ?? rec?.recovery ?? 'full');
  if (!recovery.success) throw new InvalidInputError(`--recovery ${opts.recovery} must be full, bias or none`, { value: opts.recovery });
  return {
    recovery: weights === 'kmeans' ? 'none' : recovery.data,
    weightMode: weights,
    clipMethod: method.data,
    perChannel: opts.perTensor ? false : (rec?.perChannel ?? true),
    seed: rec?.seed ?? 0,
    calibSamples: rec?.calibSamples ?? 0,
    percentile: rec?.percentile ?? 99.99,
    calibSha256: rec?.calibSha256 ?? null,
  };
}

/** Reads a policy JSON file (any file with a "layers" list) and validates it against the model. */
export async function readPolicyFile(path: string, table: LayerTable): Promise<Policy> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`--policy ${path} cannot be read (${err.code ?? err.message}); pass a policy JSON file`, { path });
  });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidPolicyError(`--policy ${path} is not valid JSON: ${(err as Error).message}; expected {"layers":[{"name","wBits","aBits"}, ...]}`, { path });
  }
  return validatePolicy(value, table, `--policy ${path}`);
}

/**
 * What quantizing by a policy needs from DIR/calib-inputs.npy (its first `flags.calibSamples`
 * samples, as the search used): the activation ranges when some layer quantizes its activation,
 * the recovered weights (each layer at its policy weight bitwidth only) when recovery is on. Both null when
 * neither is needed. Throws InvalidInputError when the data is needed but missing, or has fewer
 * samples than the search used; `warn` gets a note when the samples are not the search's.
 */
export async function quantInputs(
  bytes: Uint8Array,
  table: LayerTable,
  policy: Policy,
  dataDir: string | undefined,
  flags: QuantFlags,
  warn: (line: string) => void = () => undefined,
): Promise<{ calibration: Calibration | null; recovery: RecoverySource | null }> {
  const quantized = policy.layers.filter((l) => l.aBits !== null).map((l) => l.name);
  const recover = flags.recovery !== 'none';
  if (quantized.length === 0 && !recover) return { calibration: null, recovery: null };
  const needs = [
    ...(quantized.length ? [`layers ${quantized.slice(0, 5).join(', ')}${quantized.length > 5 ? ', ...' : ''} quantize activations`] : []),
    ...(recover ? [`accuracy recovery (--recovery ${flags.recovery})`] : []),
  ].join(' and ');
  const hint = `${needs} need${quantized.length && recover ? '' : 's'} calibration data`;
  if (!dataDir) throw new InvalidInputError(`${hint}: pass --data DIR with calib-inputs.npy (or --recovery none and aBits null)`);
  const info = await stat(dataDir).catch(() => null);
  if (!info?.isDirectory()) throw new InvalidInputError(`--data ${dataDir} is not a folder; pass the folder that holds calib-inputs.npy`, { dir: dataDir });
  const dataset = await loadDataset(new FsStore(dataDir), '', ['calib']);
  if (!dataset.calib) throw new InvalidInputError(`${hint}, but ${dataDir} has no calib-inputs.npy; add a calibration split (a few hundred samples)`, { dir: dataDir });
  const available = dataset.calib.samples;
  if (flags.calibSamples > available) {
    throw new InvalidInputError(
      `the policy was calibrated on ${flags.calibSamples} samples but ${dataDir}/calib-inputs.npy has ${available}; pass the data folder the search used`,
      { dir: dataDir, calibSamples: flags.calibSamples, available },
    );
  }
  const calibData = inputBatch(dataset.calib, 0, flags.calibSamples || available);
  if (flags.calibSha256 && tensorSha256(calibData) !== flags.calibSha256) {
    warn(`${dataDir}/calib-inputs.npy is not the data the search calibrated on (sha256 differs): the figures and the model will differ from the search's`);
  }
  const calibration = quantized.length ? await calibrate(bytes, table, calibData, { percentile: flags.percentile }) : null;
  // Only the (layer, bits) pairs the policy uses.
  const layerBits = policy.layers.map((l) => [l.wBits]);
  const recovery = recover ? recoverySource(await computeRecovery(bytes, table, calibData, { mode: flags.recovery, perChannel: flags.perChannel, layerBits })) : null;
  return { calibration, recovery };
}

/**
 * The layer table for a policy command: the input shape comes from the data when there is some
 * (`data`: a split's sample shape), else from --input-shape or the model's fixed dims.
 */
export async function inspectForPolicy(bytes: Uint8Array, modelPath: string, inputShape?: string, data?: { sampleShape: number[]; what: string }): Promise<LayerTable> {
  return inspectModel(bytes, { what: modelPath, inputShape: inputShape !== undefined ? parseShape(inputShape) : undefined, data });
}

/** The sample shape of a data folder (calib-inputs.npy, else val-inputs.npy), or undefined when it has neither. */
async function dataSampleShape(dir: string): Promise<{ sampleShape: number[]; what: string } | undefined> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) return undefined; // quantInputs says what is wrong with it
  const dataset = await loadDataset(new FsStore(dir), '', ['calib', 'val']);
  const split = dataset.calib ?? dataset.val;
  return split ? { sampleShape: split.sampleShape, what: join(dir, `${split.name}-inputs.npy`) } : undefined;
}

interface ExportCliOptions extends QuantCliOptions {
  policy: string;
  out: string;
  data?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('export')
    .description('write the model quantized by a policy as a standard ONNX model (QuantizeLinear/DequantizeLinear, int8/int4 weights)')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--policy <file>', 'policy JSON: {"layers":[{"name","wBits","aBits"}, ...]} (aBits null = float activation)')
    .requiredOption('--out <file>', 'where to write the quantized model, e.g. model.quant.onnx')
    .option('--data <dir>', 'data folder with calib-inputs.npy (needed when any aBits is not null, and for recovery)')
    .option('--input-shape <dims>', 'concrete input shape when a non-batch dim is dynamic and --data does not fix it, e.g. 1,3,224,224')
    .option('--json', 'print JSON: {"out","bytes","opset","sizeBytes","layers"}');
  addQuantOptions(cmd).action(
    action(async (modelPath: string, opts: ExportCliOptions) => {
      quantFlags(opts); // bad flags fail before any work
      await checkOutFile(opts.out);
      const bytes = await readInputFile(modelPath);
      const table = await inspectForPolicy(bytes, modelPath, opts.inputShape, opts.data ? await dataSampleShape(opts.data) : undefined);
      const policy = await readPolicyFile(opts.policy, table);
      const flags = quantFlags(opts, policy);
      const { calibration, recovery } = await quantInputs(bytes, table, policy, opts.data, flags, (line) => process.stderr.write(`haq export: note: ${line}\n`));
      const recovered = recovery ? await policyLayers(recovery, policy.layers) : undefined;
      const result = exportQuantizedModel(bytes, table, policy, calibration, { ...flags, recovered });
      await writeOutFile(opts.out, result.bytes).catch((err: NodeJS.ErrnoException) => {
        throw new InvalidInputError(`--out ${opts.out} cannot be written (${err.code ?? err.message})`, { path: opts.out });
      });
      const sizeBytes = policySizeBytes(table, policy.layers);
      if (opts.json) {
        printJson({ out: opts.out, bytes: result.bytes.length, opset: result.opset, sizeBytes, layers: result.layers });
        return;
      }
      process.stdout.write(
        `${formatTable(
          ['layer', 'wBits', 'aBits', 'weights', 'activation', 'bias'],
          result.layers.map((l) => [l.name, l.wBits, l.aBits ?? 'float', l.weight, l.activation, l.bias]),
        )}\nwrote ${opts.out} (${result.bytes.length} bytes, opset ${result.opset}; quantized weights ${sizeBytes} bytes)\n`,
      );
    }),
  );
}
