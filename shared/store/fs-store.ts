import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { InvalidInputError, ObjectExistsError, ObjectNotFoundError } from '../errors';
import { tooLarge, type GetOptions, type ObjectStore, type PutOptions } from './object-store';

/** ObjectStore over a local folder: key `a/b.json` is the file `<root>/a/b.json`. */
export class FsStore implements ObjectStore {
  readonly root: string;
  readonly location: string;
  private tmpCounter = 0;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = this.root;
  }

  private path(key: string): string {
    if (!key || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '')) {
      throw new InvalidInputError(`object key "${key}" is not a relative path without '..' or empty parts`);
    }
    return join(this.root, ...key.split('/'));
  }

  async get(key: string, options: GetOptions = {}): Promise<Uint8Array> {
    try {
      const path = this.path(key);
      if (options.maxBytes !== undefined) {
        const { size } = await stat(path);
        if (size > options.maxBytes) throw tooLarge(key, this.location, size, options.maxBytes);
      }
      return new Uint8Array(await readFile(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(key, this.location);
      throw err;
    }
  }

  /** Writes to a temporary file and renames it, so a reader never sees a partial object. */
  async put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<void> {
    const path = this.path(key);
    await mkdir(dirname(path), { recursive: true });
    if (options?.ifAbsent) {
      // O_EXCL: the create fails atomically when another writer got there first.
      try {
        await writeFile(path, body, { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ObjectExistsError(key, this.location);
        throw err;
      }
      return;
    }
    const tmp = `${path}.tmp-${process.pid}-${this.tmpCounter++}`;
    await writeFile(tmp, body);
    await rename(tmp, path);
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.path(key))).isFile();
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (!entry.name.includes('.tmp-')) out.push(relative(this.root, full).split(sep).join('/'));
      }
    };
    // Walk from the deepest folder the prefix names, then filter by the full prefix.
    const folder = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    await walk(folder ? join(this.root, ...folder.split('/')) : this.root);
    return out.filter((k) => k.startsWith(prefix)).sort();
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }
}
