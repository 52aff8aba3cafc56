/**
 * `haq inspect MODEL [--input-shape 1,3,224,224] [--json]`: the quantizable layers of an ONNX
 * model with shapes, #params and MACs resolved for one input size.
 */
import type { Command } from 'commander';
import { readFile, stat } from 'node:fs/promises';
import { InvalidInputError, UnsupportedModelError } from '../../shared/errors';
import { summarizeChanges, upgradeOpset, type OpsetChange } from '../../shared/onnx/opset';
import { decodeModel, opsetVersion } from '../../shared/onnx/proto';
import { formatBytes, limits } from '../../shared/limits';
import { inspectModel } from '../../shared/onnx/inspect';
import { parseShape } from '../../shared/onnx/layers';
import type { LayerTable } from '../../shared/onnx/types';
import { action, formatTable, printJson } from '../output';

/** Reads a model (or any input) file; a missing path is an InvalidInputError naming it. */
export async function readInputFile(path: string, what = 'model file', maxBytes: number = limits.modelBytes): Promise<Uint8Array> {
  try {
    const { size } = await stat(path);
    if (size > maxBytes) {
      throw new InvalidInputError(`${what} ${path} is ${formatBytes(size)}, over haq's limit of ${formatBytes(maxBytes)}; use a smaller file`, { path, size, maxBytes });
    }
    return new Uint8Array(await readFile(path));
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InvalidInputError(`${what} ${path} does not exist`, { path });
    if (code === 'EISDIR') throw new InvalidInputError(`${what} ${path} is a folder; pass the .onnx file`, { path });
    throw new InvalidInputError(`${what} ${path} cannot be read: ${(err as Error).message}`, { path });
  }
}

/**
 * The model's opset and what quantizing it takes: nothing (13 and later), an upgrade (the
 * converted nodes), or a refusal (the op and node that cannot be converted).
 */
export function opsetNote(bytes: Uint8Array, what: string): { version: number; upgrade: OpsetChange[]; refused: string | null; note: string | null } {
  const model = decodeModel(bytes, what);
  const version = opsetVersion(model);
  try {
    const { changes } = upgradeOpset(model, 13, what);
    const note = version >= 13 ? null : `opset ${version}: quantizing upgrades the graph to opset 13${changes.length ? `, converting ${summarizeChanges(changes)}` : ' (no node changes)'}`;
    return { version, upgrade: changes, refused: null, note };
  } catch (err) {
    if (!(err instanceof UnsupportedModelError)) throw err;
    return { version, upgrade: [], refused: err.message, note: `cannot be quantized: ${err.message}` };
  }
}

/** The `--json` document: the issue's per-layer fields in a fixed order, totals, and context. */
export function inspectJson(table: LayerTable): Record<string, unknown> {
  return {
    layers: table.layers.map((l) => ({
      name: l.name,
      kind: l.kind,
      inChannels: l.inChannels,
      outChannels: l.outChannels,
      kernel: l.kernel,
      stride: l.stride,
      groups: l.groups,
      inputShape: l.inputShape,
      outputShape: l.outputShape,
      params: l.params,
      macs: l.macs,
    })),
    totals: table.totals,
    inputShape: table.inputShape,
    skipped: table.skipped,
    modelHash: table.modelHash,
  };
}

/**
 * "1.23M MACs, 4.1 % of the model's MACs" for the ops left in float, noting those whose MACs are
 * unknown (inside If/Loop/Scan bodies, which may or may not run).
 */
export function floatShareText(table: LayerTable): string {
  const skippedMacs = table.totals.skippedMacs ?? 0;
  const share = (100 * skippedMacs) / (table.totals.macs + skippedMacs || 1);
  const unknown = table.skipped.filter((s) => s.macs === null).length;
  return `${human(skippedMacs)} MACs, ${share.toFixed(share < 1 ? 2 : 1)} % of the model's MACs${unknown ? ` (${unknown} inside subgraphs not counted)` : ''}`;
}

const human = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n));

/** The readable table. */
export function inspectText(table: LayerTable, path: string): string {
  const rows = table.layers.map((l) => [
    l.index,
    l.name,
    l.kind,
    l.inChannels,
    l.outChannels,
    l.kernel.join('x'),
    l.stride.join('x'),
    l.groups,
    l.inputShape.join('x'),
    l.outputShape.join('x'),
    human(l.params),
    human(l.macs),
  ]);
  const lines = [
    `${path}: ${table.layers.length} quantizable layers for input ${table.inputShape.join('x')}`,
    '',
    formatTable(['#', 'name', 'kind', 'c_in', 'c_out', 'kernel', 'stride', 'groups', 'input', 'output', 'params', 'MACs'], rows),
    '',
    `total: ${table.totals.params} params (${human(table.totals.params)}), ${table.totals.macs} MACs (${human(table.totals.macs)})`,
  ];
  if (table.skipped.length) {
    lines.push(
      '',
      `not quantized, left in float (${table.skipped.length}): ${floatShareText(table)}`,
      ...table.skipped.map((s) => `  ${s.name} (${s.op}, ${s.macs === null ? 'MACs unknown' : `${human(s.macs)} MACs`}): ${s.reason}`),
    );
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('List the quantizable layers of an ONNX model (Conv, depthwise Conv, Gemm, MatMul with constant weights) with shapes, #params and MACs')
    .argument('<model>', 'ONNX model file')
    .option('--input-shape <dims>', 'concrete input shape, e.g. 1,3,224,224 (needed when a non-batch dim is dynamic; a dynamic batch dim defaults to 1)')
    .option('--json', 'print JSON: {"layers":[...],"totals":{"params","macs","skippedMacs"},"skipped":[...],"opset":{"version","upgrade","refused"}}')
    .action(
      action(async (modelPath: string, opts: { inputShape?: string; json?: boolean }) => {
        const bytes = await readInputFile(modelPath);
        const inputShape = opts.inputShape !== undefined ? parseShape(opts.inputShape) : undefined;
        const table = await inspectModel(bytes, { inputShape, what: modelPath });
        const opset = opsetNote(bytes, modelPath);
        if (opts.json) printJson({ ...inspectJson(table), opset });
        else process.stdout.write(`${inspectText(table, modelPath)}${opset.note ? `\n\n${opset.note}` : ''}\n`);
      }),
    );
}
