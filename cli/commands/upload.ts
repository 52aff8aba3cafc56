/**
 * `haq upload MODEL --data DIR [--config search.json] [--name NAME] [--bucket B] [--json]`:
 * puts a model into the models bucket in the order the trigger needs: the data files
 * (models/<name>/data/*), then search.json, then models/<name>/model.onnx last, because
 * the model's "Object Created" event starts the search, which must find the rest in place.
 */
import type { Command } from 'commander';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, SearchFailedError } from '../../shared/errors';
import { SearchConfig } from '../../shared/config';
import { modelKeys } from '../../shared/keys';
import type { ObjectStore } from '../../shared/store/object-store';
import { parseJsonText } from '../../shared/validate';
import { awsClientSettings } from '../aws-clients';
import { followSearch } from '../deployed';
import { checkSearchInputs, modelNameOf, withUserPaths } from '../inputs';
import { action, printJson } from '../output';
import { cliS3Store, resolveBucket, stackOutputs, withAwsHints } from './policies';

/** Files a data folder must hold for a search (docs: calibration and validation splits). */
export const requiredDataFiles = ['calib-inputs.npy', 'val-inputs.npy'] as const;

export interface UploadRequest {
  modelPath: string;
  dataDir: string;
  configPath?: string;
  /** Folder name under models/ (default: the model file's name without .onnx). */
  name?: string;
}

export interface UploadedObject {
  key: string;
  sizeBytes: number;
}

export interface UploadResult {
  name: string;
  modelKey: string;
  /** In upload order; the model is last. */
  objects: UploadedObject[];
}

/**
 * A model name usable as one key segment and in execution names: --name, else from the
 * path as `haq search` names it (the folder of a `model.onnx`, else the file name).
 */
export function modelName(request: Pick<UploadRequest, 'modelPath' | 'name'>): string {
  const name = request.name ?? modelNameOf(request.modelPath);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new InvalidInputError(
      `model name "${name}" must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit; pass --name`,
      { name },
    );
  }
  return name;
}

async function readLocal(path: string, what: string): Promise<Uint8Array> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new InvalidInputError(`${what} ${path} is not a file`, { path });
    return new Uint8Array(await readFile(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidInputError(`${what} ${path} does not exist`, { path });
    throw err;
  }
}

/** The data folder's files to upload (*.npy and *.json such as meta.json), checked for the required ones. */
export async function dataFiles(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    throw new InvalidInputError(`--data ${dir} is not a readable folder; pass the folder that holds ${requiredDataFiles.join(' and ')}`, { dir });
  }
  const files = entries.filter((e) => e.isFile() && /\.(npy|json)$/i.test(e.name)).map((e) => e.name).sort();
  const missing = requiredDataFiles.filter((f) => !files.includes(f));
  if (missing.length) {
    throw new InvalidInputError(`--data ${dir} lacks ${missing.join(' and ')} (a search calibrates on calib-* and scores on val-*)`, { dir, missing });
  }
  return files;
}

/**
 * Checks a search.json: valid JSON, an object, field types of SearchConfig. model, modelKey
 * and dataPrefix are set by the upload, so they must not be in the file.
 */
export function checkSearchConfig(text: string, path: string): Record<string, unknown> {
  const partial = SearchConfig.innerType().partial();
  const config = parseJsonText(partial, text, `--config ${path}`) as Record<string, unknown>;
  for (const field of ['model', 'modelKey', 'dataPrefix']) {
    if (field in config) throw new InvalidInputError(`--config ${path}: remove "${field}", the upload sets it from the model's folder`, { field });
  }
  const hardware = config.hardware;
  if (typeof hardware === 'string' && !hardware.trim().startsWith('{') && (/\.json$/i.test(hardware) || hardware.includes('/'))) {
    throw new InvalidInputError(
      `--config ${path}: "hardware" is the file ${hardware}, which the deployed search cannot read; put the target's JSON object itself in "hardware"`,
      { hardware },
    );
  }
  return config;
}

/** Validates everything locally first, then uploads data, config, and the model last. */
export async function uploadModel(
  store: ObjectStore,
  request: UploadRequest,
  onObject: (o: UploadedObject) => void = () => {},
): Promise<UploadResult> {
  const name = modelName(request);
  const model = await readLocal(request.modelPath, 'model file');
  const files = await dataFiles(request.dataDir);
  let config: string | undefined;
  let fields: Record<string, unknown> = {};
  if (request.configPath) {
    config = new TextDecoder().decode(await readLocal(request.configPath, '--config'));
    fields = checkSearchConfig(config, request.configPath);
  }
  // The target, the constraint and its feasibility for this model, before anything is sent.
  await checkSearchInputs({ modelPath: request.modelPath, dataDir: request.dataDir, config: fields });

  const objects: UploadedObject[] = [];
  const put = async (key: string, body: Uint8Array | string, contentType: string) => {
    await store.put(key, body, { contentType });
    const o = { key, sizeBytes: typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength };
    objects.push(o);
    onObject(o);
  };
  for (const file of files) {
    await put(modelKeys.data(name, file), await readLocal(join(request.dataDir, file), 'data file'), file.endsWith('.json') ? 'application/json' : 'application/octet-stream');
  }
  if (config !== undefined) await put(modelKeys.searchConfig(name), config, 'application/json');
  // Last: this object's event starts the search.
  await put(modelKeys.model(name), model, 'application/octet-stream');
  return { name, modelKey: modelKeys.model(name), objects };
}

interface UploadCliOptions {
  data: string;
  config?: string;
  name?: string;
  bucket?: string;
  stack?: string;
  wait?: boolean;
  timeout: string;
  json?: boolean;
}

/** The search an upload of `modelKey` started, followed to its end on the stack's search state machine. */
async function waitForUploadedSearch(modelKey: string, since: Date, timeoutMs: number, stack: string | undefined, quiet = false) {
  const outputs = await stackOutputs(stack);
  const { SFNClient } = await import('@aws-sdk/client-sfn');
  const sfn = new SFNClient(awsClientSettings());
  try {
    return await followSearch(sfn, cliS3Store(outputs.WorkBucketName), outputs.SearchStateMachineArn, modelKey, since, {
      timeoutMs,
      onStarted: (arn, searchId) => {
        if (!quiet) process.stdout.write(`search ${searchId} running (execution ${arn})\n`);
      },
    });
  } finally {
    sfn.destroy();
  }
}

export function register(program: Command): void {
  program
    .command('upload')
    .description('upload a model, its data and an optional search.json to the models bucket (the model last: it starts the search)')
    .argument('<model>', 'the ONNX model file')
    .requiredOption('--data <dir>', 'data folder: calib-inputs.npy, val-inputs.npy, optional val-labels.npy, test-*, meta.json')
    .option('--config <file>', 'search.json: search settings for this model (hardware, constraint, episodes, ...)')
    .option('--name <name>', 'folder name under models/ (default: the folder of a model.onnx, else the file name without .onnx)')
    .option('--bucket <name>', 'models bucket (default: $HAQ_MODELS_BUCKET, else the stack output ModelsBucketName)')
    .option('--stack <name>', 'CloudFormation stack to read outputs from (default: $HAQ_STACK or Haq)')
    .option('--wait', 'wait for the search the upload starts and say how it ended (exit 1 when it failed)')
    .option('--timeout <s>', 'with --wait: give up after this many seconds', '1800')
    .option('--json', 'print JSON: {"bucket","name","modelKey","objects"} (and "search" with --wait)')
    .action(
      action(async (modelPath: string, opts: UploadCliOptions) => {
        const timeoutS = Number(opts.timeout);
        if (!(timeoutS > 0)) throw new InvalidInputError(`--timeout ${opts.timeout} must be a positive number of seconds`);
        const bucket = await resolveBucket({ flag: opts.bucket, envVar: 'HAQ_MODELS_BUCKET', output: 'ModelsBucketName', stack: opts.stack });
        const store = cliS3Store(bucket);
        const since = new Date(Date.now() - 1000); // the emulator's clock has second resolution
        const result = await withAwsHints(bucket, () =>
          uploadModel(
            store,
            { modelPath, dataDir: opts.data, configPath: opts.config, name: opts.name },
            opts.json ? undefined : (o) => process.stdout.write(`put s3://${bucket}/${o.key} (${o.sizeBytes} bytes)\n`),
          ),
        );
        if (!opts.wait) {
          if (opts.json) return printJson({ bucket, ...result });
          process.stdout.write(`uploaded ${result.name}: the search starts from s3://${bucket}/${result.modelKey}\n`);
          return;
        }
        if (!opts.json) process.stdout.write(`uploaded ${result.name}; waiting for its search (up to ${timeoutS} s)\n`);
        const search = await waitForUploadedSearch(result.modelKey, since, timeoutS * 1000, opts.stack, opts.json);
        if (opts.json) printJson({ bucket, ...result, search });
        if (search.state === 'failed') {
          const why = search.error ? withUserPaths(`${search.error.name}: ${search.error.message}`, result.name, { modelPath, dataDir: opts.data }) : 'no reason recorded';
          throw new SearchFailedError(`search ${search.searchId} of ${result.name} failed: ${why}`, { searchId: search.searchId, error: search.error });
        }
        if (!opts.json) {
          process.stdout.write(`search ${search.searchId} succeeded; its policy: npx haq policies list --model ${result.name}\n`);
        }
      }),
    );
}
