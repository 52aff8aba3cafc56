/**
 * `haq cost MODEL --hardware T [--batch N] [--input-shape ...] [--cache DIR] [--explain] [--json]`:
 * the cost table of a model on a hardware target (every layer at weight and activation bits
 * 1..8), the whole-model cost at uniform bit widths, and (--explain, and `bound` in --json) what
 * bounds each layer at each bit pair: the busiest BISMO stage (fetch, execute, result), or
 * compute or memory on BitFusion and roofline devices.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { InvalidInputError, UnknownTargetError } from '../../shared/errors';
import { loadOrBuildCostTable } from '../../shared/hardware/cost-cache';
import { buildCostTable, uniformCosts } from '../../shared/hardware/cost-table';
import { parseTargetSpec, resolveTarget, targetNames, type Target } from '../../shared/hardware/targets';
import type { BoundKind, CostTable } from '../../shared/hardware/types';
import { inspectModel } from '../../shared/onnx/inspect';
import { parseShape } from '../../shared/onnx/layers';
import { FsStore } from '../../shared/store/fs-store';
import { action, formatTable, printJson } from '../output';
import { readInputFile } from './inspect';

/**
 * The value of a `--hardware` option: a built-in target name, inline JSON, or the path of a
 * custom target JSON file (read, and checked naming its path). Returns what resolveTarget takes.
 */
export async function readHardwareOption(value: string): Promise<string | Record<string, unknown>> {
  const text = value.trim();
  if (text.startsWith('{')) return text;
  const looksLikePath = text.endsWith('.json') || text.includes('/') || text.includes('\\');
  if (!looksLikePath && !existsSync(text)) return text;
  let body: string;
  try {
    body = await readFile(text, 'utf8');
  } catch (err) {
    throw new UnknownTargetError(
      `hardware target file ${text} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
        `pass a built-in target (${targetNames().join(', ')}) or a custom target JSON file`,
      { target: text },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new UnknownTargetError(`hardware target file ${text} is not valid JSON: ${(err as Error).message}`, { target: text });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UnknownTargetError(`hardware target file ${text} must hold one JSON object (see docs/hardware.md)`, { target: text });
  }
  // Checked here, so that a bad field is reported with the file's path.
  parseTargetSpec(parsed as Record<string, unknown>, `hardware target file ${text}`);
  return parsed as Record<string, unknown>;
}

/** Parses `--batch`: a positive integer. */
export function parseBatch(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidInputError(`--batch ${value} is not a positive integer; use e.g. --batch 1 or --batch 16`, { batch: value });
  }
  return n;
}

/** The `--json` document: exactly {target, layers: [{name, latencyCycles, latencyMs, energyUj, bound}], uniform}. */
export function costJson(table: CostTable): Record<string, unknown> {
  return {
    target: table.target,
    layers: table.layers.map((l) => ({ name: l.name, latencyCycles: l.latencyCycles, latencyMs: l.latencyMs, energyUj: l.energyUj, bound: l.bound ?? null })),
    uniform: uniformCosts(table),
  };
}

const boundLetter: Record<BoundKind, string> = { fetch: 'F', execute: 'E', result: 'R', compute: 'C', memory: 'M' };

/**
 * `--explain`: per layer, what bounds it at 8/8, 4/4 and 2/2, how many of the 64 bit pairs each
 * stage bounds, and the whole map (8 groups, w = 1..8, of 8 letters, a = 1..8).
 */
export function explainText(table: CostTable): string {
  const t = table.target as unknown as Target;
  const legend =
    t.kind === 'bismo'
      ? 'F fetch (a DRAM read channel is the busiest stage), E execute (the bit-serial array), R result (accumulator writes)'
      : 'C compute, M memory (DRAM traffic takes longer than the compute)';
  const rows = table.layers.map((l) => {
    if (!l.bound) return [l.name, '-', '-', '-', '-', '-'];
    const counts = new Map<BoundKind, number>();
    for (const row of l.bound) for (const b of row) counts.set(b, (counts.get(b) ?? 0) + 1);
    const share = [...counts.entries()].sort((x, y) => y[1] - x[1]).map(([b, n]) => `${b} ${n}`).join(', ');
    const map = l.bound.map((row) => row.map((b) => boundLetter[b]).join('')).join(' ');
    return [l.name, l.bound[7][7], l.bound[3][3], l.bound[1][1], share, map];
  });
  return [
    `What bounds each layer on ${t.name}: ${legend}.`,
    'map: 8 groups for weight bits 1..8, each 8 letters for activation bits 1..8',
    '',
    formatTable(['layer', 'at 8/8', 'at 4/4', 'at 2/2', 'of 64 pairs', 'map (w = 1..8; a = 1..8)'], rows),
  ].join('\n');
}

const fmt = (x: number | null, digits = 4): string => (x === null ? '-' : x.toPrecision(digits));

export function costText(table: CostTable, modelPath: string): string {
  const t = table.target as unknown as Target;
  const uniform = uniformCosts(table);
  const rows = Object.entries(uniform).map(([bits, u]) => [`${bits}/${bits}`, fmt(u.latencyMs), fmt(u.energyUj), (u.sizeBytes / 1e6).toFixed(3)]);
  const layerRows = table.layers.map((l) => [
    l.name,
    fmt(l.latencyMs[7][7]),
    fmt(l.latencyMs[3][3]),
    fmt(l.latencyMs[1][1]),
    l.energyUj ? fmt(l.energyUj[7][7]) : '-',
  ]);
  return [
    `${modelPath} on ${t.name} (${t.kind}, batch ${table.batch}): ${table.layers.length} layers; latency and energy per batch`,
    '',
    formatTable(['w/a bits', 'latency ms', 'energy uJ', 'size MB'], rows),
    '',
    formatTable(['layer', 'ms @8/8', 'ms @4/4', 'ms @2/2', 'uJ @8/8'], layerRows),
  ].join('\n');
}

export function register(program: Command): void {
  program
    .command('cost')
    .description('Cost table of an ONNX model on a hardware target: per-layer latency (and energy) at every weight x activation bit width 1..8')
    .argument('<model>', 'ONNX model file')
    .requiredOption('--hardware <target>', `built-in target (${targetNames().join(', ')}) or a custom target JSON file`)
    .option('--batch <n>', "batch size for the hardware model (default: the target's)")
    .option('--input-shape <dims>', 'concrete input shape, e.g. 1,3,224,224 (when a non-batch dim is dynamic)')
    .option('--cache <dir>', 'reuse/store cost tables in this folder, keyed by model hash and target')
    .option('--explain', 'also show what bounds each layer at each bit pair (BISMO: fetch/execute/result; others: compute/memory)')
    .option('--json', 'print JSON: {"target":{...},"layers":[{"name","latencyCycles","latencyMs","energyUj","bound"}],"uniform":{"1".."8":{...}}}')
    .action(
      action(async (modelPath: string, opts: { hardware: string; batch?: string; inputShape?: string; cache?: string; explain?: boolean; json?: boolean }) => {
        const batch = parseBatch(opts.batch);
        const target = resolveTarget(await readHardwareOption(opts.hardware), { batch });
        const bytes = await readInputFile(modelPath);
        const inputShape = opts.inputShape !== undefined ? parseShape(opts.inputShape) : undefined;
        const layers = await inspectModel(bytes, { inputShape, what: modelPath });
        const table = opts.cache ? (await loadOrBuildCostTable(new FsStore(opts.cache), layers, target)).table : buildCostTable(layers, target);
        if (opts.json) printJson(costJson(table));
        else process.stdout.write(`${costText(table, modelPath)}\n${opts.explain ? `\n${explainText(table)}\n` : ''}`);
      }),
    );
}
