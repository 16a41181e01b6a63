import { copyFile, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '@temporalio/activity';
import type { IterationRecord } from '../../workflows/contract.js';
import type { ObjectStore } from '../storage/index.js';
import { StorageConfigError, putJson } from '../storage/index.js';
import type { EventFileOptions } from './event-file.js';
import { CurveWriterError, curveKeys, eventFileName, renderEventFile } from './event-file.js';

export interface CurveOptions extends EventFileOptions {
  /** Also keep each run's event files in `<localDir>/<runId>/`, for a TensorBoard on the worker's machine. */
  localDir?: string;
  /** Tries in all; a storage outage or a stalled writer usually passes within them. */
  attempts?: number;
  /** Wait before the second try, doubled before each later one. */
  retryDelayMs?: number;
}

/** What became of one iteration's curves. */
export type CurveOutcome = { written: true; key: string } | { written: false; error: string; attempts: number };

/**
 * Writes an iteration's curves from its committed record: the event file into the run's storage
 * (and the local log dir when there is one). The record is the truth and the curves are derived
 * from it, so this never throws: infrastructure errors are retried a few times, then the failure
 * is logged and noted at `curveKeys.failure` for `code-a1 tensorboard` to report and fill in.
 * Bounded well inside recordIteration's five-minute start-to-close (3 tries of at most a minute).
 */
export function createCurveWriter(openStore: (uri: string) => ObjectStore, options: CurveOptions = {}) {
  const { localDir, attempts = 3, retryDelayMs = 2_000, ...render } = options;

  async function writeOnce(store: ObjectStore, record: IterationRecord): Promise<string> {
    const tmp = await mkdtemp(join(tmpdir(), 'code-a1-curves-'));
    try {
      const file = join(tmp, eventFileName(record.iteration));
      await renderEventFile(record, file, render);
      const key = curveKeys.eventFile(record.runId, record.iteration);
      await store.putFile(key, file);
      if (localDir) await copyInto(join(localDir, record.runId), file);
      // A later try that succeeded makes an earlier failure note wrong.
      await store.delete(curveKeys.failure(record.runId, record.iteration));
      return key;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  return async function writeCurves(storageUri: string, record: IterationRecord): Promise<CurveOutcome> {
    const where = { runId: record.runId, iteration: record.iteration };
    let error: unknown;
    let tries = 0;
    let store: ObjectStore | undefined;
    while (tries < attempts) {
      if (tries > 0) await sleep(retryDelayMs * 2 ** (tries - 1));
      tries++;
      try {
        store ??= openStore(storageUri);
        return { written: true, key: await writeOnce(store, record) };
      } catch (err) {
        error = err;
        if (permanent(err) || tries >= attempts) break;
        log.warn('training curves not written, retrying', { ...where, attempt: tries, error: message(err) });
      }
    }
    const outcome = { written: false as const, error: message(error), attempts: tries };
    log.error('training curves not written; the iteration record stands, `code-a1 tensorboard` fills them in from it', { ...where, ...outcome });
    if (store) {
      await putJson(store, curveKeys.failure(record.runId, record.iteration), { ...where, ...outcome }).catch((err: unknown) =>
        log.warn('could not note the missing training curves', { ...where, error: message(err) }),
      );
    }
    return outcome;
  };
}

/** Copies `file` into `dir` under its own name, whole: a TensorBoard reading the folder never sees half a file. */
export async function copyInto(dir: string, file: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const name = file.slice(file.lastIndexOf('/') + 1);
  // No `tfevents` in the temporary name, so TensorBoard skips it.
  const partial = join(dir, `.partial-${process.pid}-${name.replace('tfevents', 'part')}`);
  await copyFile(file, partial);
  await rename(partial, join(dir, name));
}

function permanent(err: unknown): boolean {
  return (err instanceof CurveWriterError && err.permanent) || err instanceof StorageConfigError;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
