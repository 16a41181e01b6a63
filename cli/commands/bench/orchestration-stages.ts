import { setTimeout as sleep } from 'node:timers/promises';
import type {
  GpuActivities,
  IterationRef,
  LlmActivities,
  OrchestrationActivities,
  SandboxActivities,
  StageResult,
  UpdatePolicyInput,
} from '../../../workflows/contract.js';
import { keys } from '../../../workflows/contract.js';
import { createRunStateActivities } from '../../../activities/run-state.js';
import { openStore } from '../../../activities/storage/index.js';

/** When an activity ran, in performance.now() milliseconds. */
export interface Interval {
  start: number;
  end: number;
}

/**
 * Stand-ins for every stage for `bench orchestration`: each waits `stageMs` and returns the small
 * result the workflow expects, of the same size whatever the batch, as the real stages do (they
 * claim-check their data to object storage). The run-state activities are the real ones on a
 * file:// store, since the training workflow reads where a run stands from them. Every activity
 * reports the interval it ran in, so that the time no activity was running can be told apart.
 */
export function benchStages(stageMs: () => number, onInterval: (interval: Interval) => void) {
  async function stage(name: string, ref: IterationRef): Promise<StageResult> {
    const ms = stageMs();
    if (ms > 0) await sleep(ms);
    return { key: keys.stage(ref.runId, ref.iteration, `${name}.json`), summary: { problems: 1, samples: 1 } };
  }

  const orchestration: OrchestrationActivities = {
    ...createRunStateActivities({ openStore: (uri) => openStore(uri) }),
    sampleBatch: (i) => stage('sampleBatch', i),
    score: (i) => stage('score', i),
    updateMistakeBook: async (i) => ({ ...(await stage('updateMistakeBook', i)), key: keys.mistakeBook(i.runId, i.iteration) }),
    mergeExecution: (i) => stage('mergeExecution', i),
    mergeRounds: async (i) => ({ code: await stage('mergeRounds', i), tests: await stage('mergeRounds', i), scores: await stage('mergeRounds', i) }),
  };
  const llm: LlmActivities = {
    generateCode: (i) => stage('generateCode', i),
    generateTests: (i) => stage('generateTests', i),
    publishPolicy: async (i) => void (await stage('publishPolicy', i)),
  };
  const sandbox: SandboxActivities = { execute: (i) => stage('execute', i), executeShard: (i) => stage(`execute-${i.shard}`, i) };
  const gpu: GpuActivities = {
    updatePolicy: async (i: UpdatePolicyInput) => {
      await stage('updatePolicy', i);
      return { role: i.role, checkpoint: keys.checkpoint(i.runId, i.role, i.iteration), metrics: { loss: 0.1 } };
    },
  };

  const activities: Record<string, (input: never) => Promise<unknown>> = { ...orchestration, ...llm, ...sandbox, ...gpu };
  return Object.fromEntries(
    Object.entries(activities).map(([name, run]) => [
      name,
      async (input: never) => {
        const start = performance.now();
        try {
          return await run(input);
        } finally {
          onInterval({ start, end: performance.now() });
        }
      },
    ]),
  );
}

/** Milliseconds covered by at least one interval. */
export function busyMs(intervals: Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  let total = 0;
  let end = -Infinity;
  for (const i of sorted) {
    if (i.end <= end) continue;
    total += i.end - Math.max(i.start, end);
    end = i.end;
  }
  return total;
}
