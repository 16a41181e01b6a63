import { randomUUID } from 'node:crypto';
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { StorageDeps } from './deps.js';
import { getJson } from './storage/index.js';
import type { ObjectStore } from './storage/index.js';
import { MissingArtifactError } from './artifact-errors.js';
import type { ScoresRecord } from './scoring/index.js';
import { ConfigError } from '../config/run-config.js';
import { keys } from '../workflows/contract.js';
import type { PolicyCheckpoint, UpdatePolicyInput } from '../workflows/contract.js';
import {
  MANIFEST,
  METRICS,
  OPTIMIZER_STATE,
  attemptDir,
  buildRollouts,
  hyperparameters,
  materialise,
  numericMetrics,
  readManifest,
  readRollouts,
  resolveCheckpointRef,
  runTrainer,
  uploadDir,
} from './trainer/index.js';
import type { CheckpointManifest, TrainerJob } from './trainer/index.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** The built-in trainer: python/trainer.py in the project's virtual environment. */
export const builtinTrainerCommand = [join(repoRoot, '.venv/bin/python'), join(repoRoot, 'python/trainer.py')];

export interface UpdatePolicyDeps extends StorageDeps {
  /** Scratch space for trainer jobs and outputs, and the cache of downloaded checkpoints. */
  workDir: string;
  /** Where `model:<name>` checkpoints are installed. */
  modelsDir: string;
  /** Replaces the built-in command; the run config's `trainer.command` replaces both. */
  trainerCommand?: string[];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * Stage `updatePolicy`: one GRPO update of one role (docs/code-a1.md, step 9), producing the
 * checkpoint `runs/<runId>/checkpoints/<role>/iter-<n>` (layout in activities/trainer/layout.ts).
 *
 * Idempotent: a checkpoint whose manifest exists is returned without training. Otherwise the
 * rollouts the score stage kept are joined with their advantages, the trainer runs as a child
 * process whose JSON progress lines become heartbeats, and its output is uploaded into a folder of
 * this attempt before the manifest is written (once) to make it the checkpoint.
 *
 * With nothing to train on (every group dropped, or all advantages zero) the iteration still gets
 * a checkpoint: the base's files, optimizer state included, under the new prefix, so that the next
 * iteration, publishing and the iteration record treat every iteration alike.
 */
export function createUpdatePolicyActivity(deps: UpdatePolicyDeps) {
  return {
    async updatePolicy(input: UpdatePolicyInput): Promise<PolicyCheckpoint> {
      const { runId, iteration, role } = input;
      const store = deps.openStore(input.storageUri);
      const prefix = keys.checkpoint(runId, role, iteration);
      const checkpoint = `${store.uri}/${prefix}`;
      const finished = await readManifest(store, prefix);
      if (finished) {
        log.info('checkpoint already finished', { runId, iteration, role, checkpoint });
        return { role, checkpoint, metrics: finished.metrics };
      }

      const cache = join(deps.workDir, 'checkpoints');
      const progress = (phase: string) => (done: number, total: number) => heartbeat({ phase, done, total });
      const resolve = (ref: string) => resolveCheckpointRef(ref, deps.modelsDir);
      const base = await materialise(resolve(input.baseCheckpoint), deps.openStore, cache, progress('download-base'));
      const reference = await materialise(resolve(input.referenceCheckpoint), deps.openStore, cache, progress('download-reference'));
      const scores = await getJson<ScoresRecord>(store, input.scoresKey);
      if (scores === undefined) throw new MissingArtifactError(`scores ${store.uri}/${input.scoresKey} are missing`);
      const rollouts = buildRollouts(role, await readRollouts(store, input.rolloutsKey, (shards) => heartbeat({ phase: 'read-rollouts', shards })), scores, `${store.uri}/${input.scoresKey}`);
      const offPolicy = rollouts.filter((r) => r.checkpoint !== input.baseCheckpoint).length;
      if (offPolicy > 0) log.warn('rollouts sampled from another checkpoint than the base', { runId, iteration, role, offPolicy });

      const attempt = attemptDir(activityInfo().attempt, randomUUID().slice(0, 8));
      const work = join(deps.workDir, 'update-policy', runId, role, `iter-${iteration}`, attempt);
      await mkdir(work, { recursive: true });
      try {
        const optimizerState = join(base.dir, OPTIMIZER_STATE);
        let outDir: string;
        let metrics: Record<string, number>;
        if (rollouts.length === 0) {
          outDir = base.dir;
          const carried = base.manifest?.metrics.steps;
          metrics = { rollouts: 0, steps_this_run: 0, ...(carried === undefined ? {} : { steps: carried }) };
          log.info('nothing to train on: carrying the base checkpoint over', { runId, iteration, role });
        } else {
          outDir = join(work, 'out');
          const job: TrainerJob = {
            schemaVersion: 1,
            runId,
            iteration,
            role,
            policy: base.dir,
            reference: reference.dir,
            optimizerState: (await exists(optimizerState)) ? optimizerState : null,
            output: outDir,
            config: hyperparameters(input.trainer),
            rollouts,
          };
          const jobPath = join(work, 'job.json');
          await writeFile(jobPath, JSON.stringify(job));
          // Heartbeats say this worker and its trainer are alive, not that a step finished: loading
          // a model prints nothing for minutes. A trainer that hangs is bounded by trainMinutes.
          let last: Record<string, unknown> = { phase: 'train', event: 'starting' };
          const alive = setInterval(() => heartbeat(last), 5_000);
          try {
            await runTrainer({
              command: input.trainer.command ?? deps.trainerCommand ?? builtinTrainerCommand,
              jobPath,
              cwd: repoRoot,
              signal: cancellationSignal(),
              onProgress: (event) => heartbeat((last = { phase: 'train', ...event })),
            });
          } finally {
            clearInterval(alive);
          }
          const written = await readFile(join(outDir, METRICS), 'utf8').catch(() => undefined);
          if (written === undefined || !(await exists(join(outDir, 'config.json')))) {
            throw new ConfigError(`the trainer exited with status 0 without writing config.json and ${METRICS} into ${outDir} (docs/trainer-contract.md)`);
          }
          metrics = numericMetrics(JSON.parse(written));
        }
        metrics = { ...metrics, trained: rollouts.length > 0 ? 1 : 0, offPolicyRollouts: offPolicy };

        cancellationSignal().throwIfAborted();
        // A carried-over base brings its own manifest and metrics; this checkpoint's are new.
        const skip = (path: string) => path === MANIFEST || (rollouts.length === 0 && path === METRICS);
        const files = await uploadDir(store, `${prefix}/${attempt}`, outDir, skip, progress('upload'));
        if (rollouts.length === 0) {
          const local = join(work, METRICS);
          await writeFile(local, JSON.stringify(metrics, null, 2));
          files.push(...(await uploadDir(store, `${prefix}/${attempt}`, work, (p) => p !== METRICS)));
        }
        const manifest: CheckpointManifest = {
          schemaVersion: 1,
          runId,
          role,
          iteration,
          dir: attempt,
          files,
          base: input.baseCheckpoint,
          reference: input.referenceCheckpoint,
          trained: rollouts.length > 0,
          metrics,
        };
        if (await store.putIfAbsent(`${prefix}/${MANIFEST}`, JSON.stringify(manifest, null, 2))) {
          await removeAttempts(store, prefix, (dir) => dir !== attempt);
          log.info('checkpoint finished', { runId, iteration, role, checkpoint, ...metrics });
          return { role, checkpoint, metrics };
        }
        // Another attempt finished first; its checkpoint is the one, ours is discarded.
        await removeAttempts(store, prefix, (dir) => dir === attempt);
        const winner = await readManifest(store, prefix);
        return { role, checkpoint, metrics: winner!.metrics };
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}

/** Deletes the files of attempt folders under a checkpoint prefix that `which` selects. */
async function removeAttempts(store: ObjectStore, prefix: string, which: (dir: string) => boolean): Promise<void> {
  for (const key of await store.list(`${prefix}/attempt-`)) {
    const dir = key.slice(prefix.length + 1).split('/')[0]!;
    if (which(dir)) await store.delete(key);
  }
}
