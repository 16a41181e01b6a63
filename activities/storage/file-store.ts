import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from './object-store.js';
import { assertKey, toBytes } from './object-store.js';

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * A directory as an object store. Writes go to a temporary sibling and are renamed into place,
 * so a crash mid-write never leaves a partial object under a real key.
 */
export class FileStore implements ObjectStore {
  constructor(
    readonly root: string,
    readonly uri = `file://${root}`,
  ) {}

  private path(key: string): string {
    assertKey(key);
    return join(this.root, ...key.split('/'));
  }

  private async temporary(key: string): Promise<string> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    return `${target}.tmp-${randomUUID()}`;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const tmp = await this.temporary(key);
    await writeFile(tmp, toBytes(body));
    await rename(tmp, this.path(key));
  }

  async putIfAbsent(key: string, body: Uint8Array | string): Promise<boolean> {
    const tmp = await this.temporary(key);
    await writeFile(tmp, toBytes(body));
    try {
      // link() fails with EEXIST instead of replacing: an atomic create-if-absent.
      await link(tmp, this.path(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(tmp);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.path(key))).isFile();
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const entry of entries) {
        const full = join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (entry.isFile() && !entry.name.includes('.tmp-')) keys.push(relative(this.root, full).split(sep).join('/'));
      }
    };
    await walk(this.root);
    return keys.filter((k) => k.startsWith(prefix)).sort();
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async putFile(key: string, path: string): Promise<void> {
    const tmp = await this.temporary(key);
    await copyFile(path, tmp);
    await rename(tmp, this.path(key));
  }

  async getFile(key: string, path: string): Promise<boolean> {
    if (!(await this.exists(key))) return false;
    await mkdir(dirname(path), { recursive: true });
    await pipeline(createReadStream(this.path(key)), createWriteStream(path));
    return true;
  }
}
