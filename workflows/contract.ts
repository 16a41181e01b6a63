/**
 * What workflows and activities agree on: task queues, error types, artifact keys and the small
 * payloads that travel through workflow history. Data itself stays in object storage
 * (claim-check): payloads carry keys and summaries whose size does not grow with the batch.
 */
import type { RunConfig } from '../config/run-config.js';

export const taskQueues = {
  /** Batch sampling, scoring, Mistake Book, bookkeeping: cheap CPU work next to the workflows. */
  orchestration: 'code-a1-orchestration',
  /** Talks to the model servers: generation and publishing new weights. */
  llm: 'code-a1-llm',
  /** Runs untrusted Python. Put it on machines with many cores and nothing to steal. */
  sandbox: 'code-a1-sandbox',
  /** Policy updates. */
  gpu: 'code-a1-gpu',
} as const;

/**
 * Publishing to a model server on another host (`host` in the model config): a publish worker on
 * that host (`npx code-a1 worker publish --host NAME`) puts the checkpoint on its disk and calls
 * its local server.
 */
export const publishTaskQueue = (host: string) => `code-a1-publish-${host}`;

/** Error types no retry can fix. Activities throw ApplicationFailure with one of these types. */
export const nonRetryableErrors = {
  config: 'ConfigError',
  dataset: 'DatasetError',
  storageConfig: 'StorageConfigError',
  modelConfig: 'ModelConfigError',
  missingArtifact: 'MissingArtifactError',
  /** A stored artifact is malformed or has an unknown schema version. */
  invalidArtifact: 'InvalidArtifactError',
  /** A write-once artifact exists with different content (nondeterminism or a changed config). */
  artifactConflict: 'ArtifactConflictError',
  /** The trainer ran out of GPU memory: the same job would again, so the trainer config must change. */
  trainerOutOfMemory: 'TrainerOutOfMemoryError',
} as const;

export const nonRetryableErrorTypes: string[] = Object.values(nonRetryableErrors);

export const stages = [
  'sampleBatch',
  'publishPolicy',
  'generateCode',
  'generateTests',
  'execute',
  'score',
  'updateMistakeBook',
  'updatePolicy',
  'evaluate',
  'recordIteration',
] as const;
export type Stage = (typeof stages)[number];

/** Deterministic artifact keys, relative to the run config's storage URI. */
export const keys = {
  run: (runId: string) => `runs/${runId}`,
  iteration: (runId: string, iteration: number) => `runs/${runId}/iter-${iteration}`,
  stage: (runId: string, iteration: number, name: string) => `runs/${runId}/iter-${iteration}/${name}`,
  /**
   * A stage output of one sampling round (dynamic sampling): round 0 is the iteration's own batch,
   * at the keys iterations always had; extra rounds live under `iter-<n>/round-<r>/`.
   */
  roundStage: (ref: { runId: string; iteration: number; round?: number }, name: string) =>
    keys.stage(ref.runId, ref.iteration, ref.round ? `round-${ref.round}/${name}` : name),
  mistakeBook: (runId: string, iteration: number) => `runs/${runId}/mistake-book/iter-${iteration}.json`,
  checkpoint: (runId: string, role: string, iteration: number) => `runs/${runId}/checkpoints/${role}/iter-${iteration}`,
  /**
   * Written last by recordIteration: its presence means the iteration is complete. Records have
   * a prefix of their own so that finding where a run stands lists only them, not every shard.
   */
  iterationRecord: (runId: string, iteration: number) =>
    `runs/${runId}/iterations/${String(iteration).padStart(8, '0')}.json`,
  iterationRecords: (runId: string) => `runs/${runId}/iterations/`,
};

/** Every activity of an iteration receives this; together with a stage name it fixes the output key. */
export interface IterationRef {
  runId: string;
  iteration: number;
  storageUri: string;
  /**
   * The sampling round of a batch stage (sampleBatch through score): 0 or absent for the
   * iteration's batch, 1.. for the extra batches dynamic sampling draws (keys.roundStage).
   */
  round?: number;
}

export interface StageResult {
  /** Key of the stage's output (a JSON object or a manifest of shards). */
  key: string;
  /** Small numbers for progress and metrics; never per-problem data. */
  summary: Record<string, number>;
}

export interface SampleBatchInput extends IterationRef {
  dataset: RunConfig['dataset'];
  batchSize: number;
  seed: number;
}

export interface GenerateCodeInput extends IterationRef {
  batchKey: string;
  model: RunConfig['models']['code'];
  /** Checkpoint the endpoint serves (published before sampling); recorded with every rollout. */
  checkpoint: string;
  nCode: number;
  seed: number;
}

export interface GenerateTestsInput extends IterationRef {
  batchKey: string;
  codeKey: string;
  model: RunConfig['models']['test'];
  checkpoint: string;
  nTest: number;
  testsPerResponse: number;
  seed: number;
}

export interface ExecuteInput extends IterationRef {
  batchKey: string;
  codeKey: string;
  testsKey: string;
  /** The Mistake Book version this iteration replays (the previous iteration's output). */
  mistakeBookKey: string | null;
  algorithm: RunConfig['algorithm'];
  sandbox: RunConfig['sandbox'];
}

/** One shard of the fanned-out execute stage: problems [shard × problemsPerShard, …) of the batch. */
export interface ExecuteShardInput extends ExecuteInput {
  shard: number;
  problemsPerShard: number;
}

export interface MergeExecutionInput extends IterationRef {
  /** The shards' results, in batch order: keys and small summaries. */
  shards: StageResult[];
  problems: number;
}

/** One sampling round's outputs, as mergeRounds joins them. */
export interface RoundKeys {
  codeKey: string;
  testsKey: string;
  scoresKey: string;
}

/** Joins the rounds of dynamic sampling into the batch the Mistake Book and the trainer read. */
export interface MergeRoundsInput extends IterationRef {
  /** Round 0 first. */
  rounds: RoundKeys[];
}

/** The joined rounds: rollouts of both roles and their scores, at keys of their own. */
export interface MergedRounds {
  code: StageResult;
  tests: StageResult;
  scores: StageResult;
}

export interface ScoreInput extends IterationRef {
  executionKey: string;
  mistakeBookKey: string | null;
  algorithm: RunConfig['algorithm'];
}

export interface UpdateMistakeBookInput extends IterationRef {
  scoresKey: string;
  previousKey: string | null;
  algorithm: RunConfig['algorithm'];
}

export interface UpdatePolicyInput extends IterationRef {
  role: 'code' | 'test';
  rolloutsKey: string;
  scoresKey: string;
  /** Checkpoint the rollouts were sampled from; the update starts from it. */
  baseCheckpoint: string;
  /** The frozen reference for the KL term: the run's initial checkpoint. */
  referenceCheckpoint: string;
  trainer: RunConfig['trainer'];
}

export interface PolicyCheckpoint {
  role: 'code' | 'test';
  /** Object-store prefix of the finished checkpoint. */
  checkpoint: string;
  metrics: Record<string, number>;
}

/** Makes a role's serving endpoint serve `checkpoint`; a no-op when it already does. */
export interface PublishPolicyInput extends IterationRef {
  role: 'code' | 'test';
  model: RunConfig['models']['code'];
  checkpoint: string;
  /** Which server of the role (0 = `baseUrl`, then `replicas`); absent in histories recorded before replicas. */
  replica?: number;
}

export interface RecordIterationInput extends IterationRef {
  stageResults: Partial<Record<Stage, StageResult>>;
  /** The policy updates of this iteration, code role first. */
  policies: PolicyCheckpoint[];
  stageDurationsMs: Partial<Record<Stage, number>>;
}

/** The durable summary of one completed iteration; also the input to the next one. */
export interface IterationRecord {
  runId: string;
  iteration: number;
  mistakeBookKey: string;
  checkpoints: Record<'code' | 'test', string>;
  metrics: Record<string, number>;
}

export interface RunState {
  /** Iterations completed so far; the next one to run has this index. */
  completed: number;
  last: IterationRecord | null;
}

export interface LoadRunStateInput {
  runId: string;
  storageUri: string;
}

export interface IterationInput {
  config: RunConfig;
  iteration: number;
  /** Where this iteration starts from: the previous record, or null for iteration 0. */
  previous: IterationRecord | null;
}

export interface TrainingInput {
  /** Raw config: validated inside the workflow, so that CLI-started runs fail with a clear message. */
  config: unknown;
  /** Carried across continue-as-new so a paused run stays paused. */
  paused?: boolean;
  /** Run this many iterations beyond those completed, instead of up to `config.iterations` (nightly schedules). */
  moreIterations?: number;
  /** The iteration count to reach, fixed by the first run of a chain; carried across continue-as-new. */
  target?: number;
}

/** The nightly schedule's workflow: N more iterations of run `config.runId`, added to its one training workflow. */
export interface NightlyInput {
  config: unknown;
  moreIterations: number;
}

export interface AddIterationsInput {
  runId: string;
  /** Raw run config: starts the training workflow when none is running. */
  config: unknown;
  moreIterations: number;
}

export interface TrainingProgress {
  runId: string;
  targetIterations: number;
  completedIterations: number;
  /** The iteration running now; query its workflow (`<runId>/iter-<n>`) for the stage. */
  currentIteration: number | null;
  /** The stage the current iteration is in; absent in runs recorded before iterations reported it. */
  stage?: Stage | null;
  /** Set while a stage waits for `code-a1 retry`; absent in runs recorded before blocking existed. */
  blocked?: BlockedStage | null;
  paused: boolean;
  stopping: boolean;
  last: IterationRecord | null;
}

/**
 * A stage whose retry budget ran out, or that failed with an error no retry can fix: the
 * iteration holds there, its finished stages kept, until `code-a1 retry <runId>` (an Update)
 * runs the stage again. Shown by the progress query, `report`, the search attributes
 * CodeA1Blocked/CodeA1Stage and the `code_a1_run_blocked` gauge.
 */
export interface BlockedStage {
  iteration: number;
  stage: Stage;
  /** The activity that failed, e.g. `executeShard` inside stage `execute`. */
  activity: string;
  /** Attempts made: the budget when it ran out; null when the count is not known (a non-retryable error, a timeout). */
  attempts: number | null;
  /** Why retrying stopped: `budget` (attempts used up), `non-retryable` (the error says no retry can fix it), `timeout`, or `failed`. */
  reason: 'budget' | 'non-retryable' | 'timeout' | 'failed';
  errorType: string;
  error: string;
  /** ISO 8601, workflow time. */
  since: string;
}

/** What an iteration tells its run at every stage change (workflows/run-control.ts). */
export interface StageReport {
  iteration: number;
  stage: Stage;
  blocked: BlockedStage | null;
}

/** Activities by task queue. Workflows import these types only; implementations live in activities/. */
export interface OrchestrationActivities {
  loadRunState(input: LoadRunStateInput): Promise<RunState>;
  sampleBatch(input: SampleBatchInput): Promise<StageResult>;
  score(input: ScoreInput): Promise<StageResult>;
  updateMistakeBook(input: UpdateMistakeBookInput): Promise<StageResult>;
  mergeExecution(input: MergeExecutionInput): Promise<StageResult>;
  mergeRounds(input: MergeRoundsInput): Promise<MergedRounds>;
  recordIteration(input: RecordIterationInput): Promise<IterationRecord>;
}

/** On the orchestration queue, beside the workflows: it needs a Temporal client, not storage. */
export interface RunControlActivities {
  /** Update-with-Start of the run's training workflow: adds iterations to it, starting it when none runs. */
  addIterations(input: AddIterationsInput): Promise<TrainingProgress>;
}

export interface LlmActivities {
  generateCode(input: GenerateCodeInput): Promise<StageResult>;
  generateTests(input: GenerateTestsInput): Promise<StageResult>;
  publishPolicy(input: PublishPolicyInput): Promise<void>;
}

export interface SandboxActivities {
  execute(input: ExecuteInput): Promise<StageResult>;
  executeShard(input: ExecuteShardInput): Promise<StageResult>;
}

export interface GpuActivities {
  updatePolicy(input: UpdatePolicyInput): Promise<PolicyCheckpoint>;
}

/** What the gpu worker's machine offers the trainer, as its Python sees it (`code-a1 preflight`). */
export interface DeviceReport {
  host: string;
  cpuCount: number;
  torch?: string;
  /** CUDA_VISIBLE_DEVICES in the worker's environment, where set. */
  visibleDevices?: string;
  cuda: { index: number; name: string; freeBytes: number; totalBytes: number }[];
  /** Why the devices could not be listed (no Python, no torch). */
  error?: string;
}

/** The checks `code-a1 preflight` runs on a worker's own machine; registered beside the stage activities. */
export interface PreflightActivities {
  describeDevices(): Promise<DeviceReport>;
}
