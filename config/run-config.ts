import { z } from 'zod';

// zod installs its English messages as a module side effect, which the workflow bundler drops;
// without them a bad input started from the temporal CLI reads only "Invalid input".
z.config(z.locales.en());

/**
 * The one input of a training run. It travels in workflow history (so it stays small and
 * JSON-only) and is parsed once at the edge: by the CLI before starting a run and by the
 * training workflow for runs started straight from `temporal workflow start --input`.
 * Defaults are the paper's configuration (arXiv 2603.15611, see shared docs/code-a1.md).
 */

const id = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, ".", "_" and "-" only (at most 100), starting with a letter or digit');

const sampling = z.strictObject({
  temperature: z.number().min(0).max(2),
  topP: z.number().gt(0).max(1),
  /** New tokens per response; the paper allows 4,096. */
  maxTokens: z.number().int().positive(),
});

/**
 * The host a model server runs on, as its publish worker names it (`npx code-a1 worker publish
 * --host NAME`): publishing materialises checkpoints on that host's disk, so it runs on the task
 * queue `code-a1-publish-<host>`. Absent: on the llm worker's queue (the server runs beside it).
 */
const servingHost = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-" only (at most 63), starting with a letter or digit');

/** One more server of the same weights; generation spreads its requests over all of them. */
export const replicaSchema = z.strictObject({ baseUrl: z.url(), host: servingHost.optional() });

export const modelEndpointSchema = z.strictObject({
  /**
   * What serves the model, which decides how each iteration's weights are published to it
   * (docs/trainer-contract.md, "Publishing"): `embedded` (python/model_server.py), `vllm` (runtime
   * LoRA routes, or the dev-mode `/collective_rpc` reload for full weights) or `sglang`
   * (`/update_weights_from_disk`, `/load_lora_adapter`). Weights move as LoRA adapters when
   * `trainer.lora` is set, else as full checkpoints.
   */
  server: z.enum(['embedded', 'vllm', 'sglang']).default('embedded'),
  /** OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang or the embedded server). */
  baseUrl: z.url(),
  host: servingHost.optional(),
  /** Further servers of this role (another host each, or another port); all are published to before sampling. */
  replicas: z.array(replicaSchema).max(256).default([]),
  /** Model name the server expects in requests. */
  model: z.string().min(1),
  /** Name of the worker environment variable holding the API key; keys never enter history. */
  apiKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/).optional(),
  /** Initial policy checkpoint (a local directory or object-store prefix) that training starts from. */
  checkpoint: z.string().min(1),
  sampling: sampling.default({ temperature: 1.0, topP: 1.0, maxTokens: 4096 }),
  /** Requests in flight per stage against this endpoint. */
  concurrency: z.number().int().positive().max(1024).default(64),
  /**
   * A trained checkpoint without a valid `probe.json` (docs/trainer-contract.md, "The probe"):
   * `require` fails its publish, since nothing then proves the server loaded it; `warn`, for a
   * trainer that writes none, publishes it unverified with a warning, counted by the
   * code_a1_unverified_publishes metric.
   */
  probe: z.enum(['require', 'warn']).default('require'),
});

/**
 * Dynamic sampling (as DAPO fills its batches): a group whose rewards are all equal has no
 * advantage and trains nothing, and on a small model most groups are like that. While the
 * iteration holds fewer than `minGroups` groups with variance for either role, it draws another
 * batch of `batchSize` problems it has not sampled yet, generates, executes and scores them, at
 * most `maxExtraRounds` times, and trains on every round's groups. 0 extra rounds turns it off.
 */
export const dynamicSamplingSchema = z.strictObject({
  minGroups: z.number().int().nonnegative().default(1),
  maxExtraRounds: z.number().int().nonnegative().max(16).default(2),
});

export const algorithmSchema = z.strictObject({
  /** Problems per iteration (Q). Paper: 256. */
  batchSize: z.number().int().positive().default(256),
  /** Code candidates per problem. Paper: 8. */
  nCode: z.number().int().positive().default(8),
  /** Test responses per candidate. Paper: 8. */
  nTest: z.number().int().positive().default(8),
  /** Asserts asked for, and counted, per test response (T). Paper: 8. */
  testsPerResponse: z.number().int().positive().default(8),
  /** Weight of test validity against attack in the Test LLM reward. Paper: 0.5. */
  alpha: z.number().min(0).max(1).default(0.5),
  /** Mistake Book tests replayed per problem (top-K by frequency). Paper: 8. */
  mistakeBookTopK: z.number().int().nonnegative().default(8),
  /** Bound on stored Mistake Book tests per problem; lowest frequency evicted first. */
  mistakeBookCap: z.number().int().positive().default(64),
  /** Candidates per problem whose test responses train the Test LLM. Paper: 1. */
  updateN: z.number().int().positive().default(1),
  /** Drop problems whose candidates all score the same from the Code LLM update. */
  dropZeroVarianceGroups: z.boolean().default(true),
  /** Retire a problem after this many iterations in which every valid candidate passed everything; 0 = never. */
  blacklistAfter: z.number().int().nonnegative().default(0),
  dynamicSampling: dynamicSamplingSchema.default(dynamicSamplingSchema.parse({})),
});

export const sandboxSchema = z.strictObject({
  /** Wall-clock limit for one assert (oracle or candidate), in ms. */
  perTestTimeoutMs: z.number().int().positive().max(600_000).default(3_000),
  /** Wall-clock limit for defining a program (its module top level), in ms. */
  defineTimeoutMs: z.number().int().positive().max(600_000).default(5_000),
  /** Address-space limit per execution, in MiB. */
  memoryMb: z.number().int().min(64).max(65_536).default(1024),
  /**
   * Problems per executeShard activity: the execute stage runs as one activity per shard on the
   * sandbox queue, spread over every sandbox worker. 16 problems at the paper's shape (8 candidates
   * x 8 responses x 8 asserts) is about a thousand programs: tens of seconds on one machine.
   */
  problemsPerShard: z.number().int().positive().max(10_000).default(16),
  /** Shards in flight at once: bounds the load on the sandbox workers and on object storage. */
  parallelShards: z.number().int().positive().max(4_096).default(64),
});

/**
 * Low-rank adapters instead of full-parameter training (the paper trains every parameter). The
 * checkpoint is then the adapter and its optimizer state (megabytes), served on top of the base
 * model through the runtime-LoRA API that vLLM and the embedded server share.
 */
export const loraSchema = z.strictObject({
  rank: z.number().int().positive().max(1024).default(16),
  /** Scale of the adapter's output is alpha / rank. */
  alpha: z.number().positive().default(32),
  dropout: z.number().min(0).lt(1).default(0),
  /** Module names (suffixes) that get an adapter; the attention and MLP projections of Llama/Qwen-style models. */
  targetModules: z
    .array(z.string().regex(/^[A-Za-z0-9_.]+$/))
    .min(1)
    .default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
});

export const trainerSchema = z.strictObject({
  learningRate: z.number().positive().default(1e-6),
  /** Cosine schedule warm-up, in optimizer steps. Paper: 10. */
  warmupSteps: z.number().int().nonnegative().default(10),
  weightDecay: z.number().nonnegative().default(0.1),
  gradClip: z.number().positive().default(1.0),
  /** Asymmetric PPO clip range (DAPO-style "clip-higher"). Paper: 0.2 / 0.28. */
  clipLow: z.number().positive().default(0.2),
  clipHigh: z.number().positive().default(0.28),
  /** Coefficient of the k3 KL estimate to the frozen reference. Paper: 0.001. */
  klCoef: z.number().nonnegative().default(0.001),
  ppoEpochs: z.number().int().positive().default(1),
  microBatchSize: z.number().int().positive().default(4),
  /**
   * When set, a micro-batch holds as many rollouts as fit this many tokens (padded width times
   * rollouts) instead of `microBatchSize`. On a 2-core AVX2 CPU, LoRA on Qwen2.5-Coder-0.5B, 4
   * rollouts of ~650 tokens trained 1.2-1.5x faster one per micro-batch than as one, in less than
   * half the memory (README, `bench_cpu_passes.py micro-batches`).
   */
  microBatchTokens: z.number().int().positive().optional(),
  /**
   * Processes (devices) one policy update runs on: more than 1 runs the built-in trainer under
   * `torchrun --standalone --nproc_per_node=N` (FSDP2 for full weights, DDP for LoRA; one GPU per
   * process on CUDA, gloo processes on CPU). docs/trainer-contract.md, "More than one device".
   */
  devices: z.number().int().positive().max(64).default(1),
  /** Update both roles at once (separate GPUs) instead of one after the other. */
  parallelRoles: z.boolean().default(false),
  /** Train a LoRA adapter per role on the frozen base; absent = full-parameter training (the paper's). */
  lora: loraSchema.optional(),
  /**
   * dtype the built-in trainer computes in (python/dtypes.py, the model server's `--dtype` rule):
   * `auto` is bfloat16 on CUDA and on CPUs with bf16 instructions (AVX-512 BF16, AMX), float32
   * elsewhere, where bf16 is only emulated: on an AVX2-only CPU a LoRA update with a bf16 base ran
   * 22 times slower than with float32 (README, "Policy update"). A LoRA base is held in it; full
   * weights keep fp32 master weights and autocast to it on CUDA only.
   */
  dtype: z.enum(['auto', 'bfloat16', 'float32']).default('auto'),
  /**
   * Attempts of one policy update before the iteration fails. Bounded, unlike the other stages:
   * every attempt that fails after training costs a whole training run on the GPUs.
   */
  maxAttempts: z.number().int().positive().max(100).default(5),
  /**
   * Minutes without a new progress line from the trainer before it is killed and the attempt
   * fails (TrainerStalledError). The built-in trainer prints at least one line per micro-batch and
   * per loading or saving phase; 10 leaves room for loading or saving a 7B checkpoint with its
   * optimizer state. A hung collective is then noticed in minutes, not after trainMinutes.
   */
  stallMinutes: z.number().positive().default(10),
  /** Replaces the built-in trainer (see docs/trainer-contract.md); argv, run without a shell. */
  command: z.array(z.string().min(1)).min(1).optional(),
});

export const timeoutsSchema = z.strictObject({
  /** Start-to-close of a generation stage, in minutes. */
  generateMinutes: z.number().positive().default(120),
  /** Start-to-close of the sandbox stage, in minutes. */
  executeMinutes: z.number().positive().default(60),
  /** Start-to-close of one policy update, in minutes. */
  trainMinutes: z.number().positive().default(240),
  /** A long activity that is silent this long is presumed dead and retried, in seconds. */
  heartbeatSeconds: z.number().positive().default(120),
});

/**
 * How many times each stage is attempted before the run is blocked (README, "When a run is
 * blocked"): a blocked run waits, visible, for `code-a1 retry <runId>` instead of failing or
 * retrying for ever. Retries back off from `initialIntervalSeconds`, doubling up to
 * `maximumIntervalSeconds`; the defaults ride out a restart of S3 or of a model server (about
 * 20 minutes of retrying for bookkeeping, a few minutes for the others). The policy update's
 * budget is `trainer.maxAttempts`.
 */
const attempts = z.number().int().positive().max(1000);
export const retriesSchema = z.strictObject({
  /** Small reads and writes of object storage next to the workflows (sample, score, Mistake Book, records). */
  bookkeeping: attempts.default(12),
  generate: attempts.default(8),
  execute: attempts.default(8),
  /** Loading new weights into a model server. */
  publish: attempts.default(8),
  initialIntervalSeconds: z.number().positive().default(1),
  maximumIntervalSeconds: z.number().positive().default(300),
});

export const datasetSchema = z.strictObject({
  /** `builtin`, a local path, a file:// URI or an s3:// URI of a parquet or JSONL file. */
  uri: z.string().min(1).default('builtin'),
  /** Keep only rows whose data_source is listed; all rows when absent. */
  sources: z.array(z.string().min(1)).min(1).optional(),
});

/** Code LLM evaluation inside training (docs/code-a1.md, Evaluation); off unless `every` > 0. */
export const trainingEvaluationSchema = z.strictObject({
  /** Evaluate the freshly trained Code LLM after every this many iterations; 0 = never. */
  every: z.number().int().nonnegative().default(0),
  /** A dataset with golden tests: `builtin`, a path, file:// or s3:// URI (e.g. the HumanEval+/MBPP+ parquet). */
  datasetUri: z.string().min(1).default('builtin'),
  sources: z.array(z.string().min(1)).min(1).optional(),
  /** Evaluate only the first this many problems: a cheap signal between full evaluations. */
  maxProblems: z.number().int().positive().optional(),
  /** Samples per problem (n) and reported k. Paper: 32 at temperature 0.7, top_p 0.95. */
  samples: z.number().int().positive().max(1024).default(32),
  ks: z.array(z.number().int().positive()).min(1).default([1, 8, 16, 32]),
  sampling: sampling.default({ temperature: 0.7, topP: 0.95, maxTokens: 4096 }),
});

export const runConfigSchema = z.strictObject({
  /** Names the run; workflow IDs and storage keys derive from it. */
  runId: id,
  /** Root of every artifact of the run: s3://bucket/prefix or file:///path. */
  storageUri: z.string().regex(/^(s3:\/\/[a-z0-9][a-z0-9.-]{1,62}(\/.*)?|file:\/\/\/.*)$/, 'expected s3://bucket[/prefix] or file:///absolute/path'),
  dataset: datasetSchema.default({ uri: 'builtin' }),
  models: z.strictObject({ code: modelEndpointSchema, test: modelEndpointSchema }),
  algorithm: algorithmSchema.default(algorithmSchema.parse({})),
  sandbox: sandboxSchema.default(sandboxSchema.parse({})),
  trainer: trainerSchema.default(trainerSchema.parse({})),
  timeouts: timeoutsSchema.default(timeoutsSchema.parse({})),
  retries: retriesSchema.default(retriesSchema.parse({})),
  evaluation: trainingEvaluationSchema.default(trainingEvaluationSchema.parse({})),
  /** Iterations the run should have completed when it ends. */
  iterations: z.number().int().positive().max(1_000_000),
  /** Seeds batch sampling and model sampling; with it a run is reproducible. */
  seed: z.number().int().nonnegative().max(2 ** 31 - 1).default(0),
  /** Training workflow continues-as-new after this many iterations, to keep its history short. */
  continueAsNewEvery: z.number().int().positive().default(10),
});

export type RunConfigInput = z.input<typeof runConfigSchema>;
export type RunConfig = z.output<typeof runConfigSchema>;
export type ModelEndpoint = RunConfig['models']['code'];
export type Replica = z.output<typeof replicaSchema>;

/** Every server of a role, the first being `baseUrl`; a replica's index is its place here. */
export function replicasOf(model: ModelEndpoint): Replica[] {
  // Configs recorded before replicas existed (replayed histories) have no such field.
  return [{ baseUrl: model.baseUrl, ...(model.host ? { host: model.host } : {}) }, ...(model.replicas ?? [])];
}
export type Role = keyof RunConfig['models'];

/** Thrown for input that no retry can fix; its message names every offending field. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    message: string,
    readonly issues: string[] = [],
  ) {
    super(message);
  }
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`);
}

export function parseRunConfig(input: unknown): RunConfig {
  const parsed = runConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new ConfigError(`invalid run config: ${issues.join('; ')}`, issues);
  }
  if (parsed.data.trainer.clipLow >= 1) throw new ConfigError('invalid run config: trainer.clipLow: must be below 1');
  return parsed.data;
}

export function runConfigJsonSchema(): unknown {
  return z.toJSONSchema(runConfigSchema, { io: 'input' });
}
