import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ModelConfigError } from './errors.js';
import { InvalidArtifactError } from '../artifact-errors.js';
import type { Dialect } from './backends/backend.js';
import type { ServerApi } from './server-api.js';

/**
 * The on-policy probe: a checkpoint's `probe.json` (written by python/probe.py) holds the greedy
 * completion of a fixed chat prompt under its weights, with every token's log-probability, and the
 * same for the weights the update started from. After publishing, the endpoint is asked for that
 * completion with `logprobs`; a 200 from a reload is no proof that the weights changed.
 */
const side = z.strictObject({
  tokenIds: z.array(z.number().int().nonnegative()),
  tokens: z.array(z.string()),
  logprobs: z.array(z.number().max(0)),
});
export const probeRecordSchema = z.object({
  format: z.literal('code-a1-probe-v1'),
  messages: z.array(z.object({ role: z.string(), content: z.string() })).min(1),
  maxTokens: z.number().int().positive().max(256),
  dtype: z.string(),
  current: side,
  previous: side.optional(),
});
export type ProbeRecord = z.output<typeof probeRecordSchema>;
export type ProbeSide = z.output<typeof side>;

export const PROBE_FILE = 'probe.json';

/**
 * Mean absolute difference in log-probability (nats per token) under which two answers count as
 * the same weights. The trainer computes in float32 (LoRA: on a bfloat16 base), servers usually in
 * bfloat16. Measured on Qwen2.5-Coder-0.5B-Instruct, the embedded server in bfloat16 against the
 * same weights in the trainer: 0.0087 mean / 0.065 max (bfloat16) and 0.0068 / 0.035 (float32),
 * all 16 greedy tokens equal (`.venv/bin/python python/probe_tolerance.py`); a tenth of a nat
 * leaves a 10x margin. A training step at the paper's learning rate may move the probe by less than
 * this, in which case it cannot tell the two weights apart and says so in the log.
 */
export const PROBE_TOLERANCE = 0.1;

/** The text of the checkpoint directory's probe.json, or undefined when it has none. */
export async function readProbeText(dir: string): Promise<string | undefined> {
  return readFile(join(dir, PROBE_FILE), 'utf8').catch(() => undefined);
}

/** A probe.json's record, or why it is not one. */
export function parseProbe(text: string): ProbeRecord | { malformed: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { malformed: `not JSON (${(err as Error).message})` };
  }
  const parsed = probeRecordSchema.safeParse(json);
  return parsed.success ? parsed.data : { malformed: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

/**
 * The probe to check a publish of `checkpoint` against. A model a run starts from carries none and
 * is trusted; a trained checkpoint must carry a valid one, since without it nothing proves that
 * the server loaded the new weights: with `probe: "require"` (the default) its absence or a
 * malformed file fails the publish (InvalidArtifactError, not retried: the file will not change);
 * with `"warn"` the publish goes on unverified, loudly, and `onUnverified` counts it.
 */
export function probeFor(
  checkpoint: string,
  text: string | undefined,
  trained: boolean,
  mode: 'require' | 'warn' | undefined,
  onUnverified: (why: string) => void,
): ProbeRecord | undefined {
  let problem: string;
  if (text === undefined) {
    if (!trained) return undefined;
    problem = `has no ${PROBE_FILE}`;
  } else {
    const parsed = parseProbe(text);
    if (!('malformed' in parsed)) return parsed;
    problem = `has a malformed ${PROBE_FILE}: ${parsed.malformed}`;
  }
  if (mode === 'warn') {
    onUnverified(`${checkpoint} ${problem}`);
    return undefined;
  }
  throw new InvalidArtifactError(
    `${checkpoint} ${problem}, so the served weights cannot be checked; the built-in trainer writes one into every checkpoint. ` +
      `For a trainer that writes none, set the model's "probe": "warn" in the run config.`,
  );
}

/** How far two greedy completions' log-probabilities are apart, compared up to their first different token (inclusive). */
export function probeDistance(a: ProbeSide, b: ProbeSide): { compared: number; meanAbs: number; sameTokens: number } {
  const n = Math.min(a.logprobs.length, b.logprobs.length);
  let sameTokens = 0;
  while (sameTokens < n && a.tokenIds[sameTokens] === b.tokenIds[sameTokens]) sameTokens++;
  // At the first difference both sides still chose their argmax: equal weights give (nearly) equal maxima there.
  const compared = Math.min(n, sameTokens + 1);
  let sum = 0;
  for (let i = 0; i < compared; i++) sum += Math.abs(a.logprobs[i]! - b.logprobs[i]!);
  return { compared, meanAbs: compared ? sum / compared : Number.POSITIVE_INFINITY, sameTokens };
}

export interface ProbeVerdict {
  ok: boolean;
  /** Distance of the served answer from the checkpoint's. */
  meanAbs: number;
  /** Whether this checkpoint's probe differs from the previous weights' by more than the tolerance. */
  distinguishable: boolean;
  /** The served answer is closer to the weights before the update than to this checkpoint. */
  servesPrevious: boolean;
  served: ProbeSide;
}

/** What a greedy chat completion with `logprobs` answered, in the probe's terms; token ids where the dialect finds them. */
export function servedSide(body: unknown, dialect: Pick<Dialect, 'completionTokenIds'>): ProbeSide {
  const choice = (body as { choices?: Record<string, unknown>[] }).choices?.[0];
  const content = (choice?.logprobs as { content?: { token?: string; logprob?: number }[] } | null | undefined)?.content;
  if (!Array.isArray(content) || content.length === 0) {
    throw new ModelConfigError('the endpoint returned no logprobs for the probe: it must support the OpenAI `logprobs` field (vLLM, SGLang and the embedded server do)');
  }
  const tokens = content.map((c) => String(c.token ?? ''));
  const logprobs = content.map((c) => Number(c.logprob));
  const ids = choice ? dialect.completionTokenIds(choice) : undefined;
  const tokenIds = Array.isArray(ids) && ids.length === tokens.length && ids.every((v) => Number.isInteger(v)) ? (ids as number[]) : [];
  return { tokens, logprobs, tokenIds };
}

/** A greedy chat completion request that asks for every token's log-probability, in the server's dialect. */
export function greedyWithLogprobs(dialect: Dialect, weights: string, base: string, messages: ProbeRecord['messages'], maxTokens: number): Record<string, unknown> {
  return {
    ...dialect.select(weights, base),
    messages,
    max_tokens: maxTokens,
    temperature: 0,
    top_p: 1,
    ...dialect.neutralSampling,
    logprobs: true,
    top_logprobs: 1,
    ...dialect.tokenIdFields,
    seed: 0,
  };
}

/**
 * Asks the server for the probe's greedy completion from `weights` (on the base `base`) and
 * compares it with the record. Servers that return no token ids are compared by token text.
 */
export async function runProbe(api: ServerApi, dialect: Dialect, weights: string, base: string, record: ProbeRecord): Promise<ProbeVerdict> {
  const body = await api.post('/v1/chat/completions', greedyWithLogprobs(dialect, weights, base, record.messages, record.maxTokens));
  const byText = (s: ProbeSide) => ({ ...s, tokenIds: s.tokens.map((t) => hashToken(t)) });
  let served = servedSide(body, dialect);
  let current = record.current;
  let previous = record.previous;
  if (served.tokenIds.length === 0) {
    served = byText(served);
    current = byText(current);
    previous = previous && byText(previous);
  }
  const toCurrent = probeDistance(current, served);
  const toPrevious = previous ? probeDistance(previous, served) : undefined;
  const distinguishable = previous ? probeDistance(current, previous).meanAbs > PROBE_TOLERANCE : false;
  return {
    ok: toCurrent.meanAbs <= PROBE_TOLERANCE,
    meanAbs: toCurrent.meanAbs,
    distinguishable,
    servesPrevious: toPrevious !== undefined && distinguishable && toPrevious.meanAbs < toCurrent.meanAbs,
    served,
  };
}

/** A stand-in id for a token known only by its text, so the comparison can run on one key. */
function hashToken(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}
