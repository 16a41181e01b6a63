import type { CodeRollout, Manifest, TestRollout } from '../records.js';
import type { ObjectStore } from '../storage/index.js';
import { getJson } from '../storage/index.js';
import { InvalidArtifactError, MissingArtifactError } from '../artifact-errors.js';
import type { ScoresRecord } from '../scoring/index.js';
import type { RunConfig } from '../../config/run-config.js';

type Role = 'code' | 'test';

/** One rollout to train on: exactly what was sampled, and its GRPO advantage. */
export interface TrainerRollout {
  questionId: string;
  candidateIndex: number;
  responseIndex?: number;
  advantage: number;
  /** Absent when the sampler returned no ids; the trainer then tokenises `messages` and `response`. */
  promptTokenIds?: number[];
  responseTokenIds?: number[];
  messages: CodeRollout['messages'];
  response: string;
  finishReason: string;
  /** Checkpoint that sampled it; the update assumes it is the base checkpoint (on-policy). */
  checkpoint: string;
}

/** The trainer's input file (docs/trainer-contract.md). */
export interface TrainerJob {
  schemaVersion: 1;
  runId: string;
  iteration: number;
  role: Role;
  /** Local checkpoint directories. With LoRA, `policy` is the base model's full weights. */
  policy: string;
  reference: string;
  /** With LoRA: the adapter to continue, or null for a fresh one (the run's first update). */
  adapter?: string | null;
  /** AdamW state the base checkpoint carries, or null for a fresh optimizer. */
  optimizerState: string | null;
  /** Directory the trainer writes the new checkpoint into, metrics.json last. */
  output: string;
  config: TrainerHyperparameters;
  rollouts: TrainerRollout[];
}

/** The run config's trainer section minus what only the launcher uses. */
export type TrainerHyperparameters = Omit<RunConfig['trainer'], 'command' | 'parallelRoles' | 'maxAttempts' | 'devices' | 'stallMinutes'>;

export function hyperparameters(trainer: RunConfig['trainer']): TrainerHyperparameters {
  const { command: _command, parallelRoles: _parallel, maxAttempts: _attempts, devices: _devices, stallMinutes: _stall, ...rest } = trainer;
  return rest;
}

type Rollout = CodeRollout | TestRollout;

const rolloutKey = (questionId: string, candidateIndex: number, responseIndex?: number) =>
  responseIndex === undefined ? `${questionId}/${candidateIndex}` : `${questionId}/${candidateIndex}/${responseIndex}`;

/**
 * Joins a role's rollouts with the advantages of the scores record. Only scored rollouts are
 * trained on (the score stage already dropped zero-variance groups and unselected candidates),
 * and of those only the ones with a non-zero advantage: a zero advantage contributes no policy
 * gradient, only KL, and costs a full forward and backward pass. Order follows the scores record.
 */
export function buildRollouts(role: Role, rollouts: readonly Rollout[], scores: Pick<ScoresRecord, 'code' | 'test'>, where: string): TrainerRollout[] {
  const byKey = new Map<string, Rollout>();
  for (const r of rollouts) {
    const key = rolloutKey(r.questionId, r.candidateIndex, role === 'test' ? (r as TestRollout).responseIndex : undefined);
    if (byKey.has(key)) throw new InvalidArtifactError(`${where}: rollout ${key} appears twice`);
    byKey.set(key, r);
  }
  const scored =
    role === 'code'
      ? scores.code.map((s) => ({ key: rolloutKey(s.questionId, s.candidateIndex), advantage: s.advantageA }))
      : scores.test.map((s) => ({ key: rolloutKey(s.questionId, s.candidateIndex, s.responseIndex), advantage: s.advantageB }));
  const out: TrainerRollout[] = [];
  for (const { key, advantage } of scored) {
    if (!Number.isFinite(advantage)) throw new InvalidArtifactError(`${where}: the advantage of ${key} is not a finite number`);
    if (advantage === 0) continue;
    const r = byKey.get(key);
    if (!r) throw new InvalidArtifactError(`${where}: the scores name rollout ${key}, which the ${role} rollouts do not hold`);
    const hasIds = Array.isArray(r.promptTokenIds) && Array.isArray(r.responseTokenIds) && r.responseTokenIds.length > 0;
    out.push({
      questionId: r.questionId,
      candidateIndex: r.candidateIndex,
      ...(role === 'test' ? { responseIndex: (r as TestRollout).responseIndex } : {}),
      advantage,
      ...(hasIds ? { promptTokenIds: r.promptTokenIds, responseTokenIds: r.responseTokenIds } : {}),
      messages: r.messages,
      response: r.response,
      finishReason: r.finishReason,
      checkpoint: r.checkpoint,
    });
  }
  return out;
}

/** Reads every shard of a rollouts manifest (the generate stages' output). */
export async function readRollouts(store: ObjectStore, key: string, onShard?: (done: number) => void): Promise<Rollout[]> {
  const manifest = await getJson<Manifest>(store, key);
  if (manifest === undefined) throw new MissingArtifactError(`rollouts manifest ${store.uri}/${key} is missing`);
  if (!Array.isArray(manifest.shards) || !manifest.shards.every((s) => typeof s === 'string') || !Number.isInteger(manifest.count)) {
    throw new InvalidArtifactError(`${store.uri}/${key}: expected { shards: string[], count: integer }`);
  }
  const rollouts: Rollout[] = [];
  for (const [i, shard] of manifest.shards.entries()) {
    const records = await getJson<Rollout[]>(store, shard);
    if (records === undefined) throw new MissingArtifactError(`rollouts shard ${store.uri}/${shard} is missing`);
    if (!Array.isArray(records)) throw new InvalidArtifactError(`${store.uri}/${shard}: expected an array of rollouts`);
    rollouts.push(...records);
    onShard?.(i + 1);
  }
  if (rollouts.length !== manifest.count) {
    throw new InvalidArtifactError(`${store.uri}/${key}: count is ${manifest.count}, but its shards hold ${rollouts.length} rollouts`);
  }
  return rollouts;
}
