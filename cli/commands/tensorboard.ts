import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openRunStore } from '../run-store.js';
import { readIterationRecords } from '../report/index.js';
import { InvalidArtifactError } from '../../activities/artifact-errors.js';
import { copyInto, curveKeys, eventFileName, iterationOfEventFile, renderEventFile } from '../../activities/curves/index.js';
import type { ObjectStore } from '../../activities/storage/index.js';
import { getJson } from '../../activities/storage/index.js';
import type { IterationRecord } from '../../workflows/contract.js';
import { keys } from '../../workflows/contract.js';

/** Downloads in flight at once: event files are small, a long run has thousands. */
const inFlight = 32;
/** The TensorBoard that infra/install-python.sh installs. */
const venvTensorboard = fileURLToPath(new URL('../../.venv/bin/tensorboard', import.meta.url));

/**
 * Copies a run's training curves (the event files recordIteration stores under
 * `runs/<runId>/tensorboard/`) into `<logdir>/<runId>/` and prints the command that shows them.
 * TensorBoard reads S3 only through extra plugins, so a local copy is the robust way; running this
 * again picks up new iterations. An iteration whose record exists but whose curves were never
 * stored (the writer failed) gets them written here from its record, which is the truth.
 */
const tensorboard: Command = {
  summary: 'tensorboard <runId> [--storage URI] [--config FILE] [--logdir DIR]: copy a run\'s training curves to DIR/<runId>/ (default ./tensorboard) and print the tensorboard command',
  async run(argv) {
    const { runId, store, values } = await openRunStore(argv, { logdir: { type: 'string' } });
    const logdir = resolve(values.logdir ?? 'tensorboard');
    const target = join(logdir, runId);

    let records: IterationRecord[];
    try {
      records = await readIterationRecords(store, runId);
    } catch (err) {
      if (!(err instanceof InvalidArtifactError)) throw err;
      console.error(`code-a1 tensorboard: ${err.message}`);
      return 1;
    }
    const stored = new Map<number, string>();
    for (const key of await store.list(curveKeys.dir(runId))) {
      const iteration = iterationOfEventFile(key.slice(key.lastIndexOf('/') + 1));
      if (iteration !== undefined) stored.set(iteration, key);
    }
    if (records.length === 0 && stored.size === 0) {
      throw new UsageError(`run ${runId} has no iteration records under ${store.uri}/${keys.iterationRecords(runId)}`);
    }

    await mkdir(target, { recursive: true });
    const tmp = await mkdtemp(join(tmpdir(), 'code-a1-tensorboard-'));
    const filled: number[] = [];
    const failed: string[] = [];
    try {
      const downloads = [...stored];
      for (let i = 0; i < downloads.length; i += inFlight) {
        await Promise.all(
          downloads.slice(i, i + inFlight).map(async ([iteration, key]) => {
            const file = join(tmp, eventFileName(iteration));
            if (await store.getFile(key, file)) await replaceIfChanged(target, file);
          }),
        );
      }
      for (const record of records.filter((r) => !stored.has(r.iteration))) {
        const file = join(tmp, eventFileName(record.iteration));
        try {
          await renderEventFile(record, file);
          await replaceIfChanged(target, file);
          filled.push(record.iteration);
        } catch (err) {
          failed.push(`iteration ${record.iteration}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      await removeStale(target, new Set([...stored.keys(), ...records.map((r) => r.iteration)]));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }

    const copied = stored.size === 0 ? 'no stored event files' : `${stored.size} event file${stored.size === 1 ? '' : 's'} from ${store.uri}/${curveKeys.dir(runId)}`;
    console.log(`run ${runId}: ${records.length} completed iteration${records.length === 1 ? '' : 's'}, ${copied}`);
    for (const line of await fillNotes(store, runId, filled)) console.log(line);
    for (const line of failed) console.error(`code-a1 tensorboard: no curves for ${line}`);
    console.log(`curves: ${target}`);
    console.log(`view: ${existsSync(venvTensorboard) ? venvTensorboard : 'tensorboard'} --logdir ${logdir}`);
    return failed.length === 0 ? 0 : 1;
  },
};
export default tensorboard;

/** Puts `file` into `dir` unless an identical copy is there: a TensorBoard reading the folder sees no change. */
async function replaceIfChanged(dir: string, file: string): Promise<void> {
  const name = file.slice(file.lastIndexOf('/') + 1);
  const existing = await readFile(join(dir, name)).catch(() => undefined);
  if (existing?.equals(await readFile(file))) return;
  await copyInto(dir, file);
}

/** Our event files for iterations the run no longer has (an earlier run under the same ID). */
async function removeStale(dir: string, iterations: ReadonlySet<number>): Promise<void> {
  for (const name of await readdir(dir)) {
    const iteration = iterationOfEventFile(name);
    if (iteration !== undefined && !iterations.has(iteration)) await rm(join(dir, name), { force: true });
  }
}

/** One line per iteration whose curves were written here from its record, with the stored reason they were missing. */
async function fillNotes(store: ObjectStore, runId: string, filled: readonly number[]): Promise<string[]> {
  return Promise.all(
    filled.map(async (iteration) => {
      const note = await getJson<{ error?: unknown }>(store, curveKeys.failure(runId, iteration)).catch(() => undefined);
      const why = typeof note?.error === 'string' ? ` (the worker's writer failed: ${note.error})` : '';
      return `iteration ${iteration}: no stored event file${why}; written here from its record`;
    }),
  );
}
