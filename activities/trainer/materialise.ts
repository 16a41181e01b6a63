import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ObjectStore } from '../storage/index.js';
import { InvalidArtifactError, MissingArtifactError } from '../artifact-errors.js';
import { ConfigError } from '../../config/run-config.js';
import type { CheckpointManifest } from './layout.js';
import { readManifest, sha256File } from './layout.js';

/** A checkpoint as a local directory a trainer or model server can read. */
export interface LocalCheckpoint {
  dir: string;
  /** Present when the checkpoint came from object storage. */
  manifest?: CheckpointManifest;
}

/**
 * `model:<name>` names a model the worker machine has installed (infra/install-models.sh puts the
 * default one at `<models dir>/smollm2-135m-instruct`), so a config kept in the repo works on
 * any machine; everything else passes through unchanged.
 */
export function resolveCheckpointRef(checkpoint: string, modelsDir: string): string {
  const name = /^model:([A-Za-z0-9._-]+)$/.exec(checkpoint)?.[1];
  if (checkpoint.startsWith('model:') && !name) throw new ConfigError(`checkpoint '${checkpoint}': expected model:<name> with letters, digits, '.', '_' or '-'`);
  return name ? join(modelsDir, name) : checkpoint;
}

export function isStoreUri(checkpoint: string): boolean {
  return /^(s3|file):\/\//.test(checkpoint);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Resolves a checkpoint reference: a local directory (a run's initial model) is used in place; an
 * object-store prefix (`s3://…` or `file://…`, what updatePolicy returns) must hold a manifest,
 * and its files are used in place for file:// stores or downloaded once into `cacheDir` for S3.
 * A prefix without a manifest is an unfinished upload and is never used.
 */
export async function materialise(
  checkpoint: string,
  openStore: (uri: string) => ObjectStore,
  cacheDir: string,
  onFile?: (done: number, total: number) => void,
): Promise<LocalCheckpoint> {
  if (!isStoreUri(checkpoint)) {
    const dir = resolve(checkpoint);
    if (!(await isFile(join(dir, 'config.json')))) {
      throw new ConfigError(`checkpoint '${checkpoint}' is neither a checkpoint directory (with config.json) nor an s3:// or file:// URI`);
    }
    return { dir };
  }
  const uri = checkpoint.replace(/\/+$/, '');
  const store = openStore(uri);
  const manifest = await readManifest(store, '');
  if (!manifest) throw new MissingArtifactError(`${uri} is not a finished checkpoint: it has no manifest.json`);
  if (manifest.alias !== undefined) throw new InvalidArtifactError(`${uri} is an alias of ${manifest.alias}; resolve it with loadPolicy`);

  if (uri.startsWith('file://')) {
    const dir = join(fileURLToPath(uri), manifest.dir);
    for (const f of manifest.files) {
      const size = await stat(join(dir, ...f.path.split('/'))).then((s) => s.size, () => -1);
      if (size !== f.bytes) throw new InvalidArtifactError(`${uri}: ${manifest.dir}/${f.path} has ${size} bytes, the manifest says ${f.bytes}`);
    }
    return { dir, manifest };
  }

  // One cache folder per (prefix, attempt folder): a finished checkpoint never changes, so a
  // complete download is reused; a download is made in a temporary folder and renamed when whole.
  const dir = join(cacheDir, `${createHash('sha256').update(uri).digest('hex').slice(0, 16)}-${manifest.dir}`);
  if (await isDir(dir)) return { dir, manifest };
  const partial = `${dir}.partial-${randomUUID().slice(0, 8)}`;
  try {
    await mkdir(partial, { recursive: true });
    for (const [i, f] of manifest.files.entries()) {
      const local = join(partial, ...f.path.split('/'));
      if (!(await store.getFile(`${manifest.dir}/${f.path}`, local))) {
        throw new MissingArtifactError(`${uri}/${manifest.dir}/${f.path} is listed in the manifest but missing`);
      }
      if ((await sha256File(local)) !== f.sha256) throw new InvalidArtifactError(`${uri}/${manifest.dir}/${f.path} does not match its sha256 in the manifest`);
      onFile?.(i + 1, manifest.files.length);
    }
    try {
      await rename(partial, dir);
    } catch (err) {
      // Another activity on this worker finished the same download first; use its copy.
      if (!(await isDir(dir))) throw err;
    }
    return { dir, manifest };
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}
