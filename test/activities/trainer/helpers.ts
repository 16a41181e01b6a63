import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Info } from '@temporalio/activity';
import type { CodeRollout } from '../../../activities/records.js';
import type { ObjectStore } from '../../../activities/storage/index.js';
import { openStore, putJson } from '../../../activities/storage/index.js';
import { trainerSchema } from '../../../config/run-config.js';
import type { RunConfig } from '../../../config/run-config.js';
import { keys } from '../../../workflows/contract.js';
import { tinyModel } from '../../support/tiny-model.js';

export { tinyModel };
import type { UpdatePolicyInput } from '../../../workflows/contract.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const python = join(repoRoot, '.venv/bin/python');

const cleanups: (() => Promise<unknown>)[] = [];
/** Registers something to undo in `cleanup`. */
export function onCleanup(fn: () => Promise<unknown>): void {
  cleanups.push(fn);
}

/** Runs every registered cleanup; call from `after`. */
export async function cleanup(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'code-a1-trainer-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function fileStore(): Promise<{ store: ObjectStore; uri: string }> {
  const uri = pathToFileURL(await tempDir()).href;
  return { store: openStore(uri), uri };
}

/** Trainer settings big enough that one step visibly moves a tiny model. */
export function trainerConfig(overrides: Partial<RunConfig['trainer']> = {}): RunConfig['trainer'] {
  return trainerSchema.parse({ learningRate: 1e-2, warmupSteps: 0, microBatchSize: 2, ...overrides });
}

export function codeRollout(questionId: string, candidateIndex: number, prompt: number[], response: number[], checkpoint: string): CodeRollout {
  return {
    questionId,
    candidateIndex,
    code: null,
    messages: [{ role: 'user', content: 'Write a Python function.' }],
    response: 'def f(): pass',
    finishReason: 'stop',
    truncated: false,
    promptTokens: prompt.length,
    completionTokens: response.length,
    promptTokenIds: prompt,
    responseTokenIds: response,
    promptVersion: 'test',
    checkpoint,
  };
}

/** Stores code rollouts (one shard) and a scores record giving them `advantages`. */
export async function writeCodeStage(store: ObjectStore, runId: string, iteration: number, rollouts: CodeRollout[], advantages: number[]) {
  const shard = keys.stage(runId, iteration, 'code/shard-0.json');
  await putJson(store, shard, rollouts);
  const rolloutsKey = keys.stage(runId, iteration, 'code.json');
  await putJson(store, rolloutsKey, { shards: [shard], count: rollouts.length });
  const scoresKey = keys.stage(runId, iteration, 'scores.json');
  const code = rollouts.map((r, i) => ({ questionId: r.questionId, candidateIndex: r.candidateIndex, rewardA: advantages[i]!, advantageA: advantages[i]! }));
  await putJson(store, scoresKey, { code, test: [] });
  return { rolloutsKey, scoresKey };
}

/** A small stored batch for the tiny model: two responses, one to reinforce and one to suppress. */
export async function tinyUpdateInput(overrides: Partial<UpdatePolicyInput> = {}): Promise<{ store: ObjectStore; input: UpdatePolicyInput }> {
  const { store, uri } = await fileStore();
  const base = await tinyModel();
  const rollouts = [codeRollout('q1', 0, [1, 40, 41, 42], [60, 61, 62, 2], base), codeRollout('q1', 1, [1, 40, 41, 42], [80, 81, 82, 2], base)];
  const stage = await writeCodeStage(store, 'run', 0, rollouts, [1, -1]);
  const input: UpdatePolicyInput = {
    runId: 'run',
    iteration: 0,
    storageUri: uri,
    role: 'code',
    ...stage,
    baseCheckpoint: base,
    referenceCheckpoint: base,
    trainer: trainerConfig(),
    ...overrides,
  };
  return { store, input };
}

/** Runs an activity function in a mock activity context with the given attempt number and listeners. */
export function inActivity<I, O>(
  fn: (input: I) => Promise<O>,
  input: I,
  { attempt = 1, onHeartbeat, env = new MockActivityEnvironment({ attempt } as Partial<Info>) }: { attempt?: number; onHeartbeat?: (details: unknown, env: MockActivityEnvironment) => void; env?: MockActivityEnvironment } = {},
): Promise<O> {
  if (onHeartbeat) env.on('heartbeat', (d: unknown) => onHeartbeat(d, env));
  return env.run(fn, input) as Promise<O>;
}
