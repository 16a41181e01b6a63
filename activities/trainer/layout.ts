import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { ObjectStore } from '../storage/index.js';
import { getJson } from '../storage/index.js';
import { InvalidArtifactError } from '../artifact-errors.js';

/**
 * A finished checkpoint in object storage, under `runs/<runId>/checkpoints/<role>/iter-<n>/`:
 *
 *   manifest.json             written last, once (putIfAbsent): its presence is what "finished" means
 *   attempt-<a>-<id>/...      the files; one folder per activity attempt, and only the folder the
 *                             manifest names counts
 *   trained-<job digest>.json the manifest-to-be, written once (putIfAbsent) right after the trainer's
 *                             output is stored: a retry on any worker finds it and writes the
 *                             manifest instead of training again; deleted with the manifest written
 *
 * Each attempt uploads into a folder of its own, so two attempts alive at once (a worker presumed
 * dead that is still uploading) can never mix their files, and a crash mid-upload leaves a folder
 * no manifest names. The attempt that writes the manifest deletes the other folders and the markers.
 */
export const MANIFEST = 'manifest.json';
/** The trainer's completion marker inside its output directory (docs/trainer-contract.md). */
export const METRICS = 'metrics.json';
/** AdamW state the next iteration resumes from. */
export const OPTIMIZER_STATE = 'optimizer.safetensors';

export interface CheckpointFile {
  /** Path relative to the attempt folder, '/'-separated. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface CheckpointManifest {
  schemaVersion: 1;
  runId: string;
  role: 'code' | 'test';
  iteration: number;
  /** The folder under the checkpoint prefix holding the files. */
  dir: string;
  files: CheckpointFile[];
  base: string;
  reference: string;
  /** False when there was nothing to train on and the base was carried over unchanged. */
  trained: boolean;
  metrics: Record<string, number>;
  /** LoRA: the files are an adapter on this full-weight checkpoint (`model:<name>`, a path or a store URI). */
  adapter?: { model: string };
  /**
   * Nothing was trained: this checkpoint is that one, and has no files of its own (`files` is empty).
   * A multi-gigabyte base is never copied just to give an iteration a checkpoint.
   */
  alias?: string;
}

export function attemptDir(attempt: number, id: string): string {
  return `attempt-${attempt}-${id}`;
}

/** The stored-output marker of one trainer job (same inputs and hyperparameters, same digest). */
export function trainedMarker(jobDigest: string): string {
  return `trained-${jobDigest}.json`;
}

/** The manifest under `prefix`, or a trained marker there when `file` names one. */
export async function readManifest(store: ObjectStore, prefix: string, file = MANIFEST): Promise<CheckpointManifest | undefined> {
  const key = prefix ? `${prefix}/${file}` : file;
  const manifest = await getJson<CheckpointManifest>(store, key);
  if (manifest === undefined) return undefined;
  const alias = manifest.alias;
  const ok =
    manifest.schemaVersion === 1 &&
    typeof manifest.dir === 'string' &&
    (alias === undefined ? /^[A-Za-z0-9._-]+$/.test(manifest.dir) : typeof alias === 'string' && alias !== '' && manifest.files?.length === 0) &&
    (manifest.adapter === undefined || typeof manifest.adapter.model === 'string') &&
    Array.isArray(manifest.files) &&
    manifest.files.every((f) => typeof f.path === 'string' && Number.isInteger(f.bytes) && typeof f.sha256 === 'string');
  if (!ok) throw new InvalidArtifactError(`${store.uri}/${key}: not a checkpoint manifest of schema version 1`);
  return manifest;
}

/** Every file under `dir`, '/'-separated and sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Uploads the files of a local directory under `prefix`, returning what a manifest lists. */
export async function uploadDir(
  store: ObjectStore,
  prefix: string,
  dir: string,
  skip: (path: string) => boolean,
  onFile?: (done: number, total: number) => void,
): Promise<CheckpointFile[]> {
  const paths = (await listFiles(dir)).filter((p) => !skip(p));
  const files: CheckpointFile[] = [];
  for (const [i, path] of paths.entries()) {
    const local = join(dir, ...path.split('/'));
    const [{ size }, sha256] = await Promise.all([stat(local), sha256File(local)]);
    await store.putFile(`${prefix}/${path}`, local);
    files.push({ path, bytes: size, sha256 });
    onFile?.(i + 1, paths.length);
  }
  return files;
}

/** Keeps only numeric metrics: the PolicyCheckpoint payload is Record<string, number>. */
export function numericMetrics(raw: unknown): Record<string, number> {
  if (typeof raw !== 'object' || raw === null) return {};
  return Object.fromEntries(Object.entries(raw).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1])));
}
