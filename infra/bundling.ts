/**
 * How every Lambda is bundled: the same esbuild settings feed NodejsFunction (infra/constructs/
 * functions.ts) and the bundle benchmark (bench/sections/bundles.ts), so the bench measures
 * what is deployed. No CDK imports here.
 */
import type { BuildOptions } from 'esbuild';

export type LambdaArch = 'arm64' | 'x86_64';

/** Lambda's nodejs22.x runtime. */
export const nodeTarget = 'node22';

/** The native package kept out of the bundle and copied beside it (one platform's binary). */
export const onnxruntimePackage = 'onnxruntime-node';

/**
 * ESM output (index.mjs): top-level await works and CommonJS dependencies that call
 * `require` for Node built-ins still can, through this banner.
 */
export const esmBanner =
  "import { createRequire as __haqCreateRequire } from 'node:module'; const require = __haqCreateRequire(import.meta.url);";

/**
 * Modules left out of every bundle: only onnxruntime-node (native: copied by
 * `onnxruntimeCopyCommands`). The AWS SDK v3 is bundled: the version is pinned by
 * package-lock.json, an ESM bundle needs no NODE_PATH to find it (Node's ESM resolver ignores
 * NODE_PATH), and one minified file loads faster than the SDK's many modules (bench "bundles").
 */
export const externalModules = [onnxruntimePackage];

export const sharedBundleSettings = {
  minify: true,
  sourceMap: false,
  format: 'esm' as const,
  target: nodeTarget,
  mainFields: ['module', 'main'],
  banner: esmBanner,
  externalModules,
  bundleAwsSDK: true,
};

/** The same settings as esbuild BuildOptions, for building one entry outside CDK. */
export function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    target: sharedBundleSettings.target,
    format: sharedBundleSettings.format,
    minify: sharedBundleSettings.minify,
    sourcemap: sharedBundleSettings.sourceMap,
    mainFields: sharedBundleSettings.mainFields,
    banner: { js: sharedBundleSettings.banner },
    external: sharedBundleSettings.externalModules,
    metafile: true,
    logLevel: 'silent',
  };
}

/** Node's names for the Lambda architecture (onnxruntime-node's bin/napi-v6/linux/<arch>). */
export const nodeArch = (arch: LambdaArch): 'arm64' | 'x64' => (arch === 'arm64' ? 'arm64' : 'x64');

/**
 * The files of onnxruntime-node (and its one runtime dependency, onnxruntime-common) that a
 * function needs on Lambda: JavaScript, package.json files and the one linux binary folder.
 * Paths relative to the repository root; they go to `node_modules/...` beside index.mjs.
 */
export function onnxruntimeFiles(arch: LambdaArch): string[] {
  return [
    'node_modules/onnxruntime-node/package.json',
    'node_modules/onnxruntime-node/dist',
    `node_modules/onnxruntime-node/bin/napi-v6/linux/${nodeArch(arch)}`,
    'node_modules/onnxruntime-common/package.json',
    'node_modules/onnxruntime-common/dist',
  ];
}

/** A static or dynamic import of onnxruntime-node in esbuild's minified ESM output. */
export const onnxruntimeImportPattern = /from"onnxruntime-node"|import"onnxruntime-node"|import\("onnxruntime-node"\)/;

/**
 * Shell commands (run after esbuild, offline, no npm install) that copy `onnxruntimeFiles`
 * from `inputDir` (the repository root) to `outputDir` (the asset folder) when the bundle
 * imports onnxruntime-node: a handler that does is never deployed without its binary.
 */
export function onnxruntimeCopyCommands(inputDir: string, outputDir: string, arch: LambdaArch): string[] {
  const copies = onnxruntimeFiles(arch).map((path) => {
    const parent = path.slice(0, path.lastIndexOf('/'));
    return `mkdir -p "${outputDir}/${parent}" && cp -R "${inputDir}/${path}" "${outputDir}/${parent}/"`;
  });
  const grep = `grep -qE '${onnxruntimeImportPattern.source.replaceAll('\\', '\\')}' "${outputDir}/index.mjs"`;
  return [`if ${grep}; then ${copies.join(' && ')}; fi`];
}
