import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Info } from '@temporalio/activity';
import { DefaultLogger } from '@temporalio/worker';
import type { ModelEndpoint } from '../../../config/run-config.js';
import type { GenerateCodeInput, GenerateTestsInput, StageResult } from '../../../workflows/contract.js';
import { keys } from '../../../workflows/contract.js';
import type { CodeRollout, Problem } from '../../../activities/records.js';
import type { BatchRecord } from '../../../activities/sample-batch.js';
import type { GenerationDeps, GenerationManifest } from '../../../activities/llm/index.js';
import { getJson, openStore, putJson } from '../../../activities/storage/index.js';
import type { ObjectStore } from '../../../activities/storage/index.js';

/** Three short problems: short prompts keep the tiny CPU model's prefill cheap. */
export const problems: Problem[] = [
  {
    questionId: 'q-add',
    description: 'Return the sum of a and b.',
    entryPoint: 'add',
    gtCode: 'def add(a, b):\n    return a + b\n',
    prompt: 'def add(a, b):\n    """Return the sum of a and b."""\n',
    dataSource: 'test',
  },
  {
    questionId: 'q-rev',
    description: 'Return the string s reversed.',
    entryPoint: 'rev',
    gtCode: 'def rev(s):\n    return s[::-1]\n',
    dataSource: 'test',
  },
  {
    questionId: 'q-max',
    description: 'Return the largest element of a non-empty list xs.',
    entryPoint: 'biggest',
    gtCode: 'def biggest(xs):\n    return max(xs)\n',
    prompt: 'def biggest(xs):\n    """Return the largest element of a non-empty list xs."""\n',
    dataSource: 'test',
  },
];

/** A fresh file:// store with the batch written, removed by `close`. */
export interface Run {
  store: ObjectStore;
  ref: { runId: string; iteration: number; storageUri: string };
  batchKey: string;
  close(): Promise<void>;
}

export async function newRun(batch: Problem[] = problems): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'code-a1-llm-'));
  const storageUri = pathToFileURL(dir).href;
  const store = openStore(storageUri);
  const ref = { runId: 'run', iteration: 2, storageUri };
  const batchKey = keys.stage(ref.runId, ref.iteration, 'batch.json');
  await putJson(store, batchKey, { problems: batch, dataset: {} } as unknown as BatchRecord);
  return { store, ref, batchKey, close: () => rm(dir, { recursive: true, force: true }) };
}

export function endpoint(baseUrl: string, model: string, overrides: Partial<ModelEndpoint> = {}): ModelEndpoint {
  // 16 new tokens: enough for a few words of real output, short enough for two shared CPU cores.
  return { server: 'embedded', replicas: [], baseUrl, model, checkpoint: 'init/code', sampling: { temperature: 1, topP: 1, maxTokens: 16 }, concurrency: 2, probe: 'require', ...overrides };
}

export function codeInput(run: Run, model: ModelEndpoint, overrides: Partial<GenerateCodeInput> = {}): GenerateCodeInput {
  return { ...run.ref, batchKey: run.batchKey, model, checkpoint: 'ckpt/code-7', nCode: 2, seed: 11, ...overrides };
}

export function testsInput(run: Run, model: ModelEndpoint, codeKey: string, overrides: Partial<GenerateTestsInput> = {}): GenerateTestsInput {
  return { ...run.ref, batchKey: run.batchKey, codeKey, model, checkpoint: 'ckpt/test-7', nTest: 2, testsPerResponse: 4, seed: 11, ...overrides };
}

export function deps(extra: Partial<GenerationDeps> = {}): GenerationDeps {
  // Fast backoff: the tests inject faults, they do not need to wait politely.
  return { openStore: (uri) => openStore(uri), client: { initialDelayMs: 10, maxDelayMs: 200 }, heartbeatMs: 200, ...extra };
}

/** Runs an activity in a mock activity context, keeping its types. */
export function inActivity<I>(fn: (input: I) => Promise<StageResult>, input: I, env = activityEnv()): Promise<StageResult> {
  return env.run(fn, input) as Promise<StageResult>;
}

export function activityEnv(info: Partial<Info> = {}): MockActivityEnvironment {
  // Errors only: the stages' progress lines would bury the test report.
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
}

/** The manifest and every rollout of a stage, in stored order. */
export async function readStage<R>(store: ObjectStore, key: string): Promise<{ manifest: GenerationManifest; rollouts: R[] }> {
  const manifest = (await getJson<GenerationManifest>(store, key))!;
  const rollouts: R[] = [];
  for (const shard of manifest.shards) rollouts.push(...((await getJson<R[]>(store, shard)) ?? []));
  return { manifest, rollouts };
}

/** A code stage written by hand, so the test stage sees known candidates whatever the model says. */
export async function writeCodeStage(run: Run, candidates: { questionId: string; code: string | null }[][]): Promise<string> {
  const rollouts: CodeRollout[] = candidates.flatMap((group) =>
    group.map((c, candidateIndex) => ({
      messages: [],
      response: c.code === null ? 'I cannot help with that.' : '```python\n' + c.code + '```',
      finishReason: 'stop',
      truncated: false,
      promptTokens: 1,
      completionTokens: 1,
      promptVersion: 'code-v1',
      checkpoint: 'ckpt/code-7',
      questionId: c.questionId,
      candidateIndex,
      code: c.code,
    })),
  );
  const shard = keys.stage(run.ref.runId, run.ref.iteration, 'code/shard-00000.json');
  const key = keys.stage(run.ref.runId, run.ref.iteration, 'code/manifest.json');
  await putJson(run.store, shard, rollouts);
  await putJson(run.store, key, { shards: [shard], count: rollouts.length, summary: {} });
  return key;
}
