/**
 * Lambda bundles: each function in infra/function-specs.ts built with the exact esbuild
 * settings the CDK stack uses (infra/bundling.ts), sized from esbuild's metafile, plus the
 * onnxruntime-node files the stack copies beside a bundle that imports it (one linux
 * binary, arm64 as deployed). Cold-start module load: a fresh `node` process imports the
 * bundle with a Lambda-like environment (so the handler's init runs) and reports the time
 * the import took; median over repeats. Limits: 1 MB without onnxruntime, 60 MB with it.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { esbuildOptions, onnxruntimeFiles, onnxruntimePackage } from '../../infra/bundling';
import { functionSpecs } from '../../infra/function-specs';
import type { BenchContext, BenchSection, BenchTable } from '../types';

export const order = 90;

const MB = 2 ** 20;
const handlerLimitBytes = 1 * MB;
const onnxLimitBytes = 60 * MB;

function pathBytes(path: string): number {
  const info = statSync(path);
  if (!info.isDirectory()) return info.size;
  return readdirSync(path).reduce((sum, name) => sum + pathBytes(join(path, name)), 0);
}

/** Bytes in the output per source group: an npm package, or a top-level folder of the repo. */
function largestInputs(meta: Metafile, outfile: string, n: number): string {
  const output = Object.entries(meta.outputs).find(([p]) => outfile.endsWith(p) || p.endsWith('index.mjs'))![1];
  const groups = new Map<string, number>();
  for (const [path, info] of Object.entries(output.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    const group = m ? m[1] : path.split('/').slice(0, 2).join('/');
    groups.set(group, (groups.get(group) ?? 0) + info.bytesInOutput);
  }
  return [...groups.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([g, b]) => `${g} ${(b / 1024).toFixed(0)}k`)
    .join(', ');
}

/** Milliseconds a fresh Node process spends importing the bundle (handler init included). */
function importMs(file: string, root: string): number {
  const script = `const t = performance.now(); await import(${JSON.stringify(`file://${file}`)}); process.stdout.write(String(performance.now() - t));`;
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      AWS_LAMBDA_FUNCTION_NAME: 'bench',
      AWS_REGION: 'us-east-1',
      WORK_BUCKET: 'bench-work',
      MODELS_BUCKET: 'bench-models',
      RESULTS_BUCKET: 'bench-results',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
  });
  if (out.status !== 0) throw new Error(`importing ${file} failed: ${out.stderr.slice(0, 500)}`);
  return Number(out.stdout);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const repeats = ctx.quick ? 3 : 7;
  const ortBytes = onnxruntimeFiles('arm64').reduce((sum, p) => sum + pathBytes(join(ctx.root, p)), 0);
  const figures: Record<string, number | string | null> = { onnxruntimeArm64Bytes: ortBytes };
  const table: BenchTable = {
    title: 'Lambda bundles (esbuild, minified ESM, node22) and cold-start module load',
    headers: ['function', 'onnxruntime', 'bundle KB', 'deployed MB', 'limit', 'largest inputs', 'import ms (median)'],
    rows: [],
    note:
      `Bundle = index.mjs from the stack's esbuild settings (AWS SDK bundled, ${onnxruntimePackage} external); deployed = bundle + ` +
      `onnxruntime-node JS + its linux-arm64 binary (${(ortBytes / MB).toFixed(1)} MB) when the bundle imports it. Import time: fresh ` +
      `node ${process.version} process on this machine (${process.arch}), handler init included, median of ${repeats}.`,
  };
  let maxPlainBytes = 0;
  let maxOnnxBytes = 0;
  const overLimit: string[] = [];
  for (const spec of functionSpecs) {
    const dir = join(ctx.scratch, 'bundles', spec.id);
    mkdirSync(dir, { recursive: true });
    const outfile = join(dir, 'index.mjs');
    const result = await build(esbuildOptions(join(ctx.root, spec.entry), outfile));
    const meta = result.metafile!;
    const output = Object.values(meta.outputs)[0];
    const usesOrt = output.imports.some((i) => i.external && i.path === onnxruntimePackage);
    const bundleBytes = statSync(outfile).size;
    const deployedBytes = bundleBytes + (usesOrt ? ortBytes : 0);
    const limit = usesOrt ? onnxLimitBytes : handlerLimitBytes;
    if (deployedBytes > limit) overLimit.push(spec.id);
    if (usesOrt) maxOnnxBytes = Math.max(maxOnnxBytes, deployedBytes);
    else maxPlainBytes = Math.max(maxPlainBytes, deployedBytes);
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) times.push(importMs(outfile, ctx.root));
    const ms = median(times);
    ctx.log(`bundles: ${spec.id} ${(bundleBytes / 1024).toFixed(0)} KB, onnxruntime ${usesOrt}, import ${ms.toFixed(0)} ms`);
    figures[`${spec.id}.bundleBytes`] = bundleBytes;
    figures[`${spec.id}.deployedBytes`] = deployedBytes;
    figures[`${spec.id}.importMs`] = Math.round(ms * 10) / 10;
    table.rows.push([
      spec.id,
      usesOrt ? (spec.onnxruntime ? 'yes' : 'yes (unexpected)') : spec.onnxruntime ? 'no (expected yes)' : 'no',
      Math.round(bundleBytes / 1024),
      Number((deployedBytes / MB).toFixed(2)),
      usesOrt ? '60 MB' : '1 MB',
      largestInputs(meta, outfile, 3),
      Math.round(ms),
    ]);
  }
  figures.maxBytesWithoutOnnxruntime = maxPlainBytes;
  figures.maxBytesWithOnnxruntime = maxOnnxBytes;
  figures.functionsOverLimit = overLimit.length ? overLimit.join(',') : 'none';
  return { id: 'bundles', title: 'Lambda bundle sizes and cold-start import', figures, tables: [table] };
}
