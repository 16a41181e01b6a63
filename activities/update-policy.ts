import { createHash, randomUUID } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { StorageDeps } from './deps.js';
import { getJson } from './storage/index.js';
import type { ObjectStore } from './storage/index.js';
import { MissingArtifactError } from './artifact-errors.js';
import type { ScoresRecord } from './scoring/index.js';
import { ConfigError, trainerSchema } from '../config/run-config.js';
import { keys } from '../workflows/contract.js';
import type { PolicyCheckpoint, UpdatePolicyInput } from '../workflows/contract.js';
import {
  MANIFEST,
  METRICS,
  OPTIMIZER_STATE,
  assertTrainable,
  attemptDir,
  buildRollouts,
  fullWeights,
  hyperparameters,
  loadPolicy,
  numericMetrics,
  readManifest,
  readRollouts,
  runTrainer,
  trainedMarker,
  uploadDir,
} from './trainer/index.js';
import type { CheckpointManifest, TrainerJob } from './trainer/index.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const venvPython = join(repoRoot, '.venv/bin/python');

/** The built-in trainer: python/trainer.py in the project's virtual environment. */
export const builtinTrainerCommand = [venvPython, join(repoRoot, 'python/trainer.py')];

/** Prints, as JSON, this machine's CPU as the built-in trainer's dtype rule sees it and what `auto` picks (python/dtypes.py). */
export const dtypeRuleCommand = [venvPython, join(repoRoot, 'python/dtypes.py')];

/**
 * The built-in trainer on `devices` processes (`trainer.devices`): beyond one, under torchrun as
 * `python -m torch.distributed.run` runs it, through python/torchrun.py, which keeps the trainer's
 * exit status 65 (torchrun itself exits 1 for any failed rank). One GPU per process on CUDA.
 */
export function builtinTrainer(devices = 1): string[] {
  if (devices <= 1) return builtinTrainerCommand;
  return [venvPython, join(repoRoot, 'python/torchrun.py'), '--standalone', `--nproc_per_node=${devices}`, join(repoRoot, 'python/trainer.py')];
}

export interface UpdatePolicyDeps extends StorageDeps {
  /** Scratch space for trainer jobs and outputs, and the cache of downloaded checkpoints. */
  workDir: string;
  /** Where `model:<name>` checkpoints are installed. */
  modelsDir: string;
  /** Replaces the built-in command; the run config's `trainer.command` replaces both. */
  trainerCommand?: string[];
}

/** For inputs recorded before `trainer.stallMinutes` existed. */
const defaultStallMinutes = trainerSchema.parse({}).stallMinutes;

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
 * process whose JSON progress lines become heartbeats (and whose silence, for
 * `trainer.stallMinutes`, kills it: TrainerStalledError), its output is uploaded into a folder of
 * this attempt, a trained marker naming that folder is written (once), and then the manifest
 * (once) makes it the checkpoint.
 *
 * No attempt trains a job whose output is already stored: the marker lets a retry on any worker of
 * the shared GPU queue (the first one killed between upload and manifest) write the manifest
 * without training. Until the marker is written the finished output also stays on the worker's
 * disk, so an upload that broke off is retried on that worker by uploading again. With
 * `trainer.lora` the checkpoint is an adapter on the run's initial model and its optimizer state;
 * the manifest names that model.
 *
 * With nothing to train on (every group dropped, or all advantages zero) the iteration still gets
 * a checkpoint: a manifest that is an alias of the base, so that the next iteration, publishing
 * and the iteration record treat every iteration alike without copying the base's files.
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

      const hyper = hyperparameters(input.trainer);
      // Same inputs, same trainer output: stored outputs and kept local ones are found by this digest.
      const jobDigest = createHash('sha256')
        .update(JSON.stringify([input.baseCheckpoint, input.referenceCheckpoint, input.rolloutsKey, input.scoresKey, hyper]))
        .digest('hex')
        .slice(0, 16);
      const marker = trainedMarker(jobDigest);
      const stored = await readManifest(store, prefix, marker);
      if (stored) {
        log.info('the trainer output of an earlier attempt is stored: writing its manifest', { runId, iteration, role, dir: stored.dir });
        return writeManifest(store, prefix, checkpoint, { ...stored, metrics: { ...stored.metrics, reusedTrainerOutput: 1 } }, input);
      }

      const lora = input.trainer.lora !== undefined;
      const progress = (phase: string) => (done: number, total: number) => heartbeat({ phase, done, total });
      const policyOptions = { openStore: deps.openStore, modelsDir: deps.modelsDir, cacheDir: join(deps.workDir, 'checkpoints') };
      const base = await loadPolicy(input.baseCheckpoint, { ...policyOptions, onFile: progress('download-base') });
      assertTrainable(base, lora, input.baseCheckpoint);
      const model = fullWeights(base);
      const reference = await loadPolicy(input.referenceCheckpoint, { ...policyOptions, onFile: progress('download-reference') });
      if (lora && (reference.adapterOf || reference.checkpoint !== model.checkpoint)) {
        throw new ConfigError(
          `LoRA training keeps the KL reference at the adapter's base model: the reference ${input.referenceCheckpoint} must be ${model.checkpoint}, the model ${input.baseCheckpoint} applies to`,
        );
      }
      const scores = await getJson<ScoresRecord>(store, input.scoresKey);
      if (scores === undefined) throw new MissingArtifactError(`scores ${store.uri}/${input.scoresKey} are missing`);
      const rollouts = buildRollouts(role, await readRollouts(store, input.rolloutsKey, (shards) => heartbeat({ phase: 'read-rollouts', shards })), scores, `${store.uri}/${input.scoresKey}`);
      const offPolicy = rollouts.filter((r) => r.checkpoint !== input.baseCheckpoint).length;
      if (offPolicy > 0) log.warn('rollouts sampled from another checkpoint than the base', { runId, iteration, role, offPolicy });

      if (rollouts.length === 0) {
        const carried = base.manifest?.metrics.steps;
        const metrics = { rollouts: 0, steps_this_run: 0, ...(carried === undefined ? {} : { steps: carried }), trained: 0, offPolicyRollouts: 0 };
        log.info('nothing to train on: the checkpoint is an alias of the base', { runId, iteration, role, base: base.checkpoint });
        const alias: CheckpointManifest = { ...manifestHeader(input, ''), files: [], trained: false, metrics, alias: base.checkpoint };
        return writeManifest(store, prefix, checkpoint, alias, input);
      }

      // The trainer's output is kept per job, not per attempt: a retry on this worker whose upload
      // broke off finds it finished and only uploads. Attempts train in folders of their own and
      // move a finished output into place with one rename, so a presumed-dead attempt still running
      // cannot mix its files into it.
      const jobDir = join(deps.workDir, 'update-policy', runId, role, `iter-${iteration}`);
      const finishedDir = join(jobDir, `finished-${jobDigest}`);
      const attempt = attemptDir(activityInfo().attempt, randomUUID().slice(0, 8));
      const work = join(jobDir, attempt);
      await mkdir(work, { recursive: true });
      try {
        const reused = await isFinishedOutput(finishedDir);
        if (reused) {
          log.info('reusing the finished trainer output of an earlier attempt', { runId, iteration, role, dir: finishedDir });
        } else {
          const outDir = join(work, 'out');
          const optimizerState = join(base.dir, OPTIMIZER_STATE);
          const job: TrainerJob = {
            schemaVersion: 1,
            runId,
            iteration,
            role,
            policy: model.dir,
            reference: reference.dir,
            ...(lora ? { adapter: base.adapterOf ? base.dir : null } : {}),
            optimizerState: (await exists(optimizerState)) ? optimizerState : null,
            output: outDir,
            config: hyper,
            rollouts,
          };
          const jobPath = join(work, 'job.json');
          await writeFile(jobPath, JSON.stringify(job));
          await train(input, jobPath);
          if (!(await isFinishedOutput(outDir))) {
            throw new ConfigError(`the trainer exited with status 0 without writing ${lora ? 'adapter_config.json' : 'config.json'} and ${METRICS} into ${outDir} (docs/trainer-contract.md)`);
          }
          await rm(finishedDir, { recursive: true, force: true });
          await rename(outDir, finishedDir);
        }
        const metrics = {
          ...numericMetrics(JSON.parse(await readFile(join(finishedDir, METRICS), 'utf8'))),
          trained: 1,
          offPolicyRollouts: offPolicy,
          reusedTrainerOutput: reused ? 1 : 0,
        };

        cancellationSignal().throwIfAborted();
        const files = await uploadDir(store, `${prefix}/${attempt}`, finishedDir, (path) => path === MANIFEST, progress('upload'));
        const manifest = await storeTrained(store, prefix, marker, {
          ...manifestHeader(input, attempt),
          files,
          trained: true,
          metrics,
          ...(lora ? { adapter: { model: model.checkpoint } } : {}),
        });
        // Stored: from here on a retry anywhere writes the manifest from the marker.
        await rm(jobDir, { recursive: true, force: true });
        return await writeManifest(store, prefix, checkpoint, manifest, input);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };

  async function train(input: UpdatePolicyInput, jobPath: string): Promise<void> {
    // Between progress lines (loading a model prints nothing for minutes) heartbeats carry the last
    // one, so that a dead worker is noticed after one heartbeat timeout; a live worker whose trainer
    // prints nothing new for stallMinutes fails the attempt instead. Often: the SDK throttles
    // heartbeats to the timeout, and a short timeout must not see a live trainer as dead.
    let last: Record<string, unknown> = { phase: 'train', event: 'starting' };
    const alive = setInterval(() => heartbeat(last), 1_000);
    try {
      await runTrainer({
        // `devices` and `stallMinutes` are absent from configs recorded before they existed.
        command: input.trainer.command ?? deps.trainerCommand ?? builtinTrainer(input.trainer.devices ?? 1),
        jobPath,
        cwd: repoRoot,
        signal: cancellationSignal(),
        stallMs: (input.trainer.stallMinutes ?? defaultStallMinutes) * 60_000,
        onProgress: (event) => heartbeat((last = { phase: 'train', ...event })),
      });
    } finally {
      clearInterval(alive);
    }
  }
}

function manifestHeader(input: UpdatePolicyInput, dir: string) {
  const { runId, role, iteration } = input;
  return { schemaVersion: 1 as const, runId, role, iteration, dir, base: input.baseCheckpoint, reference: input.referenceCheckpoint };
}

/** A trainer output is finished when metrics.json (written last) and the weights' config are there. */
async function isFinishedOutput(dir: string): Promise<boolean> {
  if (!(await exists(join(dir, METRICS)))) return false;
  return (await exists(join(dir, 'config.json'))) || (await exists(join(dir, 'adapter_config.json')));
}

/**
 * Writes the trained marker (write-once) for an uploaded output and returns the manifest to
 * write. When another attempt of the same job stored its output first, that one is used and this
 * attempt's files go; when its marker is already gone, the manifest is written and writeManifest
 * sorts out which files stay.
 */
async function storeTrained(store: ObjectStore, prefix: string, marker: string, manifest: CheckpointManifest): Promise<CheckpointManifest> {
  if (await store.putIfAbsent(`${prefix}/${marker}`, JSON.stringify(manifest, null, 2))) return manifest;
  const first = await readManifest(store, prefix, marker);
  if (!first) return manifest;
  await removeStored(store, prefix, 'attempt-', (dir) => dir === manifest.dir);
  return { ...first, metrics: { ...first.metrics, reusedTrainerOutput: 1 } };
}

/**
 * Makes `manifest` the checkpoint (write-once) and removes the files of every other attempt and
 * the trained markers; when another attempt finished first, its checkpoint is the one and this
 * attempt's files go.
 */
async function writeManifest(store: ObjectStore, prefix: string, checkpoint: string, manifest: CheckpointManifest, input: UpdatePolicyInput): Promise<PolicyCheckpoint> {
  const { runId, iteration, role } = input;
  if (await store.putIfAbsent(`${prefix}/${MANIFEST}`, JSON.stringify(manifest, null, 2))) {
    await removeStored(store, prefix, 'attempt-', (dir) => dir !== manifest.dir);
    await removeStored(store, prefix, 'trained-', () => true);
    log.info('checkpoint finished', { runId, iteration, role, checkpoint, ...manifest.metrics });
    return { role, checkpoint, metrics: manifest.metrics };
  }
  const winner = (await readManifest(store, prefix))!;
  if (manifest.dir && manifest.dir !== winner.dir) await removeStored(store, prefix, 'attempt-', (dir) => dir === manifest.dir);
  await removeStored(store, prefix, 'trained-', () => true);
  return { role, checkpoint, metrics: winner.metrics };
}

/** Deletes the objects under a checkpoint prefix whose first path segment starts with `kind` and is one `which` selects. */
async function removeStored(store: ObjectStore, prefix: string, kind: 'attempt-' | 'trained-', which: (name: string) => boolean): Promise<void> {
  for (const key of await store.list(`${prefix}/${kind}`)) {
    const name = key.slice(prefix.length + 1).split('/')[0]!;
    if (which(name)) await store.delete(key);
  }
}
