/**
 * `haq zoo ARCH --out FILE [--seed N] [--resolution R] [--json]`: writes a standard ImageNet
 * architecture (mobilenet-v1, mobilenet-v2, resnet-18, resnet-50) as ONNX with seeded random
 * weights, for hardware-side studies (`haq cost`, searches under a latency/energy budget).
 */
import type { Command } from 'commander';
import { InvalidInputError } from '../../shared/errors';
import { buildZooModel, zooLayerTable, zooNames } from '../../shared/zoo/architectures';
import { checkOutFile, writeOutFile } from '../inputs';
import { action, printJson } from '../output';

function parseNonNegativeInt(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidInputError(`${flag} ${value} must be an integer >= ${min}`, { [flag]: value });
  return n;
}

export function register(program: Command): void {
  program
    .command('zoo')
    .description(`Write a standard ImageNet architecture as ONNX with random weights: ${zooNames.join(', ')}`)
    .argument('<arch>', zooNames.join(' | '))
    .requiredOption('--out <file>', 'where to write the .onnx model')
    .option('--seed <n>', 'seed of the random weights', '0')
    .option('--resolution <px>', 'input height and width', '224')
    .option('--json', 'print {"arch","out","layers","macs","params","bytes"}')
    .action(
      action(async (arch: string, opts: { out: string; seed?: string; resolution?: string; json?: boolean }) => {
        await checkOutFile(opts.out);
        const seed = parseNonNegativeInt(opts.seed, '--seed', 0);
        const resolution = parseNonNegativeInt(opts.resolution, '--resolution', 224, 32);
        const bytes = buildZooModel(arch, { seed, resolution });
        const table = zooLayerTable(arch, { resolution });
        await writeOutFile(opts.out, bytes);
        const summary = { arch, out: opts.out, layers: table.layers.length, macs: table.totals.macs, params: table.totals.params, bytes: bytes.length };
        if (opts.json) printJson(summary);
        else {
          process.stdout.write(
            `wrote ${opts.out}: ${arch}, ${summary.layers} quantizable layers, ${(summary.macs / 1e6).toFixed(1)}M MACs, ` +
              `${(summary.params / 1e6).toFixed(2)}M weights, ${(bytes.length / 1e6).toFixed(1)} MB (input 1x3x${resolution}x${resolution}, seed ${seed})\n`,
          );
        }
      }),
    );
}
