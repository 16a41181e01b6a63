import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ModelConfigError } from './errors.js';
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

/** The checkpoint's probe, or undefined when it has none (an initial model, an external trainer). */
export async function readProbe(dir: string): Promise<ProbeRecord | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, PROBE_FILE), 'utf8');
  } catch {
    return undefined;
  }
  return parseProbe(text);
}

/** A probe.json's record; a malformed one is a trainer bug: publishing must not stop on it, only stop trusting it. */
export function parseProbe(text: string): ProbeRecord | undefined {
  try {
    const parsed = probeRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
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

/**
 * Asks the server for the probe's greedy completion from `weights` (on the base `base`) and
 * compares it with the record. Servers that return no token ids are compared by token text.
 */
export async function runProbe(api: ServerApi, dialect: Dialect, weights: string, base: string, record: ProbeRecord): Promise<ProbeVerdict> {
  const body = await api.post('/v1/chat/completions', {
    ...dialect.select(weights, base),
    messages: record.messages,
    max_tokens: record.maxTokens,
    temperature: 0,
    top_p: 1,
    ...dialect.neutralSampling,
    logprobs: true,
    top_logprobs: 1,
    ...dialect.tokenIdFields,
    seed: 0,
  });
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
