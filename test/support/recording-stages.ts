import { appendFile, access } from 'node:fs/promises';
import { Context, heartbeat } from '@temporalio/activity';
import type {
  ExecuteInput,
  ExecuteShardInput,
  MergeExecutionInput,
  MergeRoundsInput,
  GenerateCodeInput,
  GenerateTestsInput,
  GpuActivities,
  IterationRef,
  LlmActivities,
  OrchestrationActivities,
  PublishPolicyInput,
  SampleBatchInput,
  SandboxActivities,
  ScoreInput,
  StageResult,
  UpdateMistakeBookInput,
  UpdatePolicyInput,
} from '../../workflows/contract.js';
import { keys } from '../../workflows/contract.js';
import { createRunStateActivities } from '../../activities/run-state.js';
import { openStore } from '../../activities/storage/index.js';
import type { S3Connection } from '../../activities/storage/index.js';

/**
 * Test doubles for the stages, for tests of orchestration alone: each writes a small output at
 * its stage's key, once, and appends a line to `journal` for every call ("call") and for every
 * output it actually wrote ("apply"). A stage blocks, heartbeating, while the file
 * `<gateDir>/<stage>` or `<gateDir>/<iteration>.<stage>` exists, which lets a test kill a worker
 * in the middle of it.
 *
 * The write is conditional (put-if-absent), so "apply" can never count more than one per stage:
 * it says the output exists, not that it was written once. What these doubles can show is how
 * often the workflow called a stage (`callCounts`); whether the real stages write their outputs
 * exactly once is counted at the S3 server (test/support/s3-put-counter.ts).
 */
export interface RecordingOptions {
  journal: string;
  gateDir: string;
  /** For `s3://` storage URIs. */
  s3?: S3Connection;
}

export function recordingStages({ journal, gateDir, s3 }: RecordingOptions) {
  const deps = { openStore: (uri: string) => openStore(uri, s3) };

  /** A stage of an extra sampling round is journalled as `<name>@<round>`. */
  async function stage(stageName: string, ref: IterationRef, summary: Record<string, number>, extra: object = {}): Promise<StageResult> {
    const name = ref.round ? `${stageName}@${ref.round}` : stageName;
    await appendFile(journal, `call ${ref.runId} ${ref.iteration} ${name}\n`);
    while ((await exists(`${gateDir}/${name}`)) || (await exists(`${gateDir}/${ref.iteration}.${name}`))) {
      heartbeat(name);
      // Rejects when the activity is cancelled, e.g. because its workflow was terminated.
      await Context.current().sleep(200);
    }
    const key = keys.roundStage(ref, `${stageName}.json`);
    const store = deps.openStore(ref.storageUri);
    if (await store.putIfAbsent(key, JSON.stringify({ stage: name, ...extra }))) {
      await appendFile(journal, `apply ${ref.runId} ${ref.iteration} ${name}\n`);
    }
    return { key, summary };
  }

  const orchestration: OrchestrationActivities = {
    ...createRunStateActivities(deps),
    sampleBatch: (i: SampleBatchInput) => stage('sampleBatch', i, { problems: i.batchSize }),
    // Every group carries signal, unless `<gateDir>/no-signal.<iteration>.<round>` exists.
    score: async (i: ScoreInput) => {
      const groups = (await exists(`${gateDir}/no-signal.${i.iteration}.${i.round ?? 0}`)) ? 0 : 1;
      return stage('score', i, { codeRewardMean: 0.5, codeGroupsWithVariance: groups, testGroupsWithVariance: groups }, { input: i.executionKey });
    },
    mergeRounds: async (i: MergeRoundsInput) => {
      const scores = await stage('mergeRounds', i, { rounds: i.rounds.length }, { rounds: i.rounds });
      const at = (name: string) => ({ key: keys.stage(i.runId, i.iteration, `merged/${name}`), summary: {} });
      return { code: at('code'), tests: at('tests'), scores };
    },
    mergeExecution: (i: MergeExecutionInput) => stage('mergeExecution', i, { executions: i.shards.reduce((n, s) => n + (s.summary.executions ?? 0), 0) }),
    updateMistakeBook: async (i: UpdateMistakeBookInput) => {
      const result = await stage('updateMistakeBook', i, { tests: 1 }, { previous: i.previousKey });
      return { ...result, key: keys.mistakeBook(i.runId, i.iteration) };
    },
  };
  const llm: LlmActivities = {
    generateCode: (i: GenerateCodeInput) => stage('generateCode', i, { samples: i.nCode }, { checkpoint: i.checkpoint }),
    generateTests: (i: GenerateTestsInput) => stage('generateTests', i, { samples: i.nTest }, { input: i.codeKey }),
    publishPolicy: async (i: PublishPolicyInput) => {
      await stage(`publishPolicy-${i.role}`, i, {}, { checkpoint: i.checkpoint });
    },
  };
  const sandbox: SandboxActivities = {
    execute: (i: ExecuteInput) => stage('execute', i, { executions: 1 }, { tests: i.testsKey, book: i.mistakeBookKey }),
    executeShard: (i: ExecuteShardInput) => stage('execute', i, { executions: 1 }, { tests: i.testsKey, book: i.mistakeBookKey }),
  };
  const gpu: GpuActivities = {
    updatePolicy: async (i: UpdatePolicyInput) => {
      await stage(`updatePolicy-${i.role}`, i, {}, { base: i.baseCheckpoint });
      return { role: i.role, checkpoint: keys.checkpoint(i.runId, i.role, i.iteration), metrics: { loss: 0.1 } };
    },
  };
  return { ...orchestration, ...llm, ...sandbox, ...gpu };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
