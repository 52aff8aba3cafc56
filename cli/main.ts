/**
 * The `haq` command. Each file in cli/commands/ exports `register(program)` and adds one
 * command; this file only finds them, so commands stay independent of each other.
 */
import { Command } from 'commander';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Builds the program. Each command file is named after its command (cli/commands/eval.ts
 * registers `eval`), so when the first argument names a command only that file is loaded:
 * a command then starts without importing every other command's dependencies (onnxruntime,
 * the AWS SDK, vega). `--help` and unknown commands load them all.
 */
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('haq')
    .description('Hardware-aware automated mixed-precision quantization for ONNX models')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'commands');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).sort();
  const requested = `${argv[2] ?? ''}.ts`;
  const selected = files.includes(requested) ? [requested] : files;
  for (const file of selected) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { register?: (p: Command) => void };
    mod.register?.(program);
  }
  return program;
}

// The AWS SDK warns once per process that its releases after January 2027 need Node 22. The
// lock file pins the SDK, so that is news for whoever upgrades the dependencies, not for a
// user of a command; AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED is the SDK's own switch
// (set it to false to see the notice).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
const viaBin = process.argv[1]?.endsWith(join('bin', 'haq.js')) || process.argv[1]?.endsWith('/haq');
if (isMain || viaBin) {
  const program = await buildProgram();
  await program.parseAsync(process.argv);
}
