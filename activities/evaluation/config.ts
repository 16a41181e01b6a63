import { z } from 'zod';
import { ConfigError, formatIssues, modelEndpointSchema } from '../../config/run-config.js';

/**
 * The one input of a Code LLM evaluation (`code-a1 eval --config FILE`, or the codeA1Evaluate
 * workflow started directly). Parsed once at the edge; pure (zod only) so that the workflow
 * bundle can parse it too. Defaults are the paper's evaluation setting (docs/code-a1.md,
 * Evaluation): n = 32 samples at temperature 0.7, top_p 0.95, pass@k for k in 1, 8, 16, 32.
 */
export const evaluationConfigSchema = z.strictObject({
  /** Names the evaluation; its workflow ID and storage keys derive from it. */
  evalId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, ".", "_" and "-" only (at most 100), starting with a letter or digit'),
  /** Root of the evaluation's artifacts: s3://bucket/prefix or file:///path. */
  storageUri: z.string().regex(/^(s3:\/\/[a-z0-9][a-z0-9.-]{1,62}(\/.*)?|file:\/\/\/.*)$/, 'expected s3://bucket[/prefix] or file:///absolute/path'),
  dataset: z.strictObject({
    /** A parquet or JSONL dataset with golden tests (`test` column): path, file:// or s3:// URI. */
    uri: z.string().min(1),
    /** Keep only rows of these data sources; all when absent. */
    sources: z.array(z.string().min(1)).min(1).optional(),
    /** Evaluate only the first this many problems (dataset order): quick checks of a pipeline. */
    maxProblems: z.number().int().positive().optional(),
  }),
  model: modelEndpointSchema.extend({
    /** A label recorded with the samples: what the endpoint serves. The endpoint is not changed. */
    checkpoint: z.string().min(1).default('served'),
    sampling: modelEndpointSchema.shape.sampling.unwrap().default({ temperature: 0.7, topP: 0.95, maxTokens: 4096 }),
  }),
  /**
   * Test LLM evaluation, run after the Code LLM's when present:
   * k responses per problem, validity pass@k, mut@k over mutants of the reference, and Mul.
   */
  tests: z
    .strictObject({
      model: modelEndpointSchema.extend({
        checkpoint: z.string().min(1).default('served'),
        sampling: modelEndpointSchema.shape.sampling.unwrap().default({ temperature: 0.7, topP: 0.95, maxTokens: 4096 }),
      }),
      /**
       * `black-box`: the question only. `white-box`: the question and a candidate to attack, the
       * training prompt, with the evaluated Code LLM's first sample that holds code as the candidate.
       */
      mode: z.enum(['black-box', 'white-box']).default('black-box'),
      /** Responses per problem (k). Paper: 5. */
      responses: z.number().int().positive().max(64).default(5),
      /** Asserts asked for per response, as in training (T). Paper: 8. */
      testsPerResponse: z.number().int().positive().default(8),
      /** Mutants per problem before equivalent ones are discarded. */
      mutantLimit: z.number().int().positive().max(500).default(30),
      /** Wall-clock limit for one assert on the reference or a mutant, in ms. */
      perTestTimeoutMs: z.number().int().positive().default(3_000),
    })
    .optional(),
  /** Samples per problem (n). Paper: 32. */
  samples: z.number().int().positive().max(1024).default(32),
  /** pass@k values reported; those above n are left out. */
  ks: z.array(z.number().int().positive()).min(1).default([1, 8, 16, 32]),
  /** Seeds the sampling requests; with it an evaluation is reproducible on a deterministic server. */
  seed: z.number().int().nonnegative().max(2 ** 31 - 1).default(0),
  /** EvalPlus-style limits per program: max(floorMs, factor x reference time), capped at referenceMs. */
  timeLimits: z
    .strictObject({
      floorMs: z.number().int().positive().default(10_000),
      factor: z.number().positive().default(4),
      referenceMs: z.number().int().positive().default(60_000),
    })
    .default({ floorMs: 10_000, factor: 4, referenceMs: 60_000 }),
  /** Address-space limit per program, in MiB. EvalPlus: 4 GB. */
  memoryMb: z.number().int().positive().default(4096),
  timeouts: z
    .strictObject({
      heartbeatSeconds: z.number().int().positive().default(120),
      /** Whole-stage limits; a paper-size evaluation (542 problems x 32) takes hours on a few cores. */
      sampleMinutes: z.number().int().positive().default(24 * 60),
      executeMinutes: z.number().int().positive().default(24 * 60),
    })
    .default({ heartbeatSeconds: 120, sampleMinutes: 24 * 60, executeMinutes: 24 * 60 }),
});

export type EvaluationConfigInput = z.input<typeof evaluationConfigSchema>;
export type EvaluationConfig = z.output<typeof evaluationConfigSchema>;

export function parseEvaluationConfig(input: unknown): EvaluationConfig {
  const parsed = evaluationConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error);
    throw new ConfigError(`invalid evaluation config: ${issues.join('; ')}`, issues);
  }
  return parsed.data;
}

export function evaluationConfigJsonSchema(): unknown {
  return z.toJSONSchema(evaluationConfigSchema, { io: 'input' });
}
