/**
 * Huge inputs are refused before they are read: a sparse file stands in for a model or data
 * file over the limit (it takes no disk space).
 */
import { closeSync, mkdirSync, openSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { limits } from '../../shared/limits';
import { assertOneLineError, haq } from '../helpers/cli';
import { tempDir } from '../helpers/tmp';

const tmp = tempDir('haq-limits');
after(tmp.cleanup);

function sparseFile(path: string, sizeBytes: number): string {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, sizeBytes);
  closeSync(fd);
  return path;
}

describe('size limits on the command line', () => {
  it('inspect refuses a model file over the model limit with one clear line', async () => {
    const model = sparseFile(join(tmp.dir, 'huge.onnx'), limits.modelBytes + 1);
    assertOneLineError(await haq(['inspect', model]), 'InvalidInputError', /huge\.onnx is 512\.0 MiB, over haq's limit of 512\.0 MiB; use a smaller file/);
  });

  it('eval refuses a data file over the data limit', async () => {
    const data = join(tmp.dir, 'data');
    mkdirSync(data);
    sparseFile(join(data, 'val-inputs.npy'), limits.dataFileBytes + 1);
    assertOneLineError(await haq(['eval', 'models/zoo/fmnist-cnn/model.onnx', '--data', data]), 'InvalidInputError', /val-inputs\.npy in .* is 1\.0 GiB, over haq's limit of 1\.0 GiB/);
  });
});
