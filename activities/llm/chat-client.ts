import type { ChatMessage } from '../records.js';
import type { Dialect } from './backends/backend.js';
import { vllmDialect } from './backends/embedded.js';
import { ModelConfigError, ModelUnavailableError } from './errors.js';

export interface ChatRequest {
  messages: ChatMessage[];
  /** Choices sampled from the one prompt; the server shares the prompt's prefill among them. */
  n: number;
  temperature: number;
  topP: number;
  maxTokens: number;
  seed?: number;
  stop?: string[];
}

export interface ChatChoice {
  /** The answer text; a refusal's text when the server sends one instead of content. */
  text: string;
  finishReason: string;
  completionTokens: number;
  tokenIds?: number[];
}

export interface ChatCompletion {
  /** Exactly `n` entries, by choice index; a choice the server left out is an 'error' choice. */
  choices: ChatChoice[];
  promptTokens: number;
  promptTokenIds?: number[];
  /**
   * The label of the weights that answered, where the server reports one (Dialect.answeredBy):
   * the embedded server's per-load `system_fingerprint`, SGLang's `weight_version`, vLLM's last
   * weight-version span. vLLM's own `system_fingerprint` is fixed per launch and says nothing
   * about reloads.
   */
  label?: string;
}

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface ChatClientOptions {
  /** OpenAI-compatible base URL ending in /v1. */
  baseUrl: string;
  /** The weights requests sample from: the server's base model, or a LoRA adapter's served name. */
  model: string;
  /** The server's base model name, when `model` is an adapter (SGLang names both). */
  base?: string;
  /** The server's request and answer shapes (activities/llm/backends); vLLM's by default. */
  dialect?: Dialect;
  apiKey?: string;
  fetch?: typeof fetch;
  /** One HTTP request, headers and body; a paper-scale answer (4,096 tokens, n = 8) takes minutes. */
  timeoutMs?: number;
  /** Tries of one request before the activity gives up and lets Temporal retry it. */
  maxAttempts?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Ask for token ids (vLLM, SGLang and the embedded server); plain OpenAI rejects the field. */
  returnTokenIds?: boolean;
  onRetry?: (info: RetryInfo) => void;
  random?: () => number;
}

/** The prompt plus max_tokens exceed the model's context: no retry helps, but only this request is affected. */
export class PromptTooLongError extends ModelConfigError {}

/** A failure worth another try of the same request, and how long the server asked us to wait. */
class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A fetch-based client for `/chat/completions` that owns its retries, since no SDK's own retry
 * policy may hide failures from Temporal: transient failures (429, 408, 5xx, connection resets,
 * timeouts, unparseable bodies) are retried with exponential backoff and full jitter, honouring
 * Retry-After, up to `maxAttempts`; then a retryable ModelUnavailableError hands over to the
 * activity retry. Any other 4xx is the config's fault and throws ModelConfigError with the
 * server's own message.
 */
export class ChatClient {
  private readonly url: string;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;
  private readonly dialect: Dialect;

  constructor(private readonly options: ChatClientOptions) {
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.fetch = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? 15 * 60_000;
    this.maxAttempts = options.maxAttempts ?? 6;
    this.initialDelayMs = options.initialDelayMs ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.random = options.random ?? Math.random;
    this.dialect = options.dialect ?? vllmDialect;
  }

  /** The model name every request carries. */
  get model(): string {
    return this.options.model;
  }

  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatCompletion> {
    const body = JSON.stringify(this.requestBody(request));
    for (let attempt = 1; ; attempt++) {
      try {
        return parseCompletion(await this.send(body, signal), request.n, this.dialect);
      } catch (err) {
        if (!(err instanceof TransientError)) throw err;
        const backoff = this.random() * Math.min(this.maxDelayMs, this.initialDelayMs * 2 ** (attempt - 1));
        // A server that asks for a longer pause than we would ever wait gets it from Temporal's
        // retry instead of from a worker slot sleeping here.
        if (attempt >= this.maxAttempts || (err.retryAfterMs ?? 0) > this.maxDelayMs) {
          throw new ModelUnavailableError(`${this.url}: ${err.message} (gave up after ${attempt} attempt(s))`, err.retryAfterMs, { cause: err });
        }
        const delayMs = Math.max(backoff, err.retryAfterMs ?? 0);
        this.options.onRetry?.({ attempt, delayMs, reason: err.message });
        await sleep(delayMs, signal);
      }
    }
  }

  /**
   * The request as the server must see it: the weights selected the server's way, and every
   * sampling parameter the trainer assumes, neutral ones included, so that no server default
   * (a checkpoint's generation_config.json) changes the distribution the rollouts come from.
   */
  requestBody(request: ChatRequest): Record<string, unknown> {
    return {
      ...this.dialect.select(this.options.model, this.options.base ?? this.options.model),
      messages: request.messages,
      n: request.n,
      temperature: request.temperature,
      top_p: request.topP,
      max_tokens: request.maxTokens,
      ...this.dialect.neutralSampling,
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(request.stop?.length ? { stop: request.stop } : {}),
      ...(this.options.returnTokenIds !== false ? this.dialect.tokenIdFields : {}),
      ...this.dialect.labelFields,
    };
  }

  /** One HTTP exchange: the parsed JSON body of a 2xx answer, or a classified error. */
  private async send(body: string, signal: AbortSignal | undefined): Promise<unknown> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let text: string;
    let response: Response;
    try {
      response = await this.fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
        },
        body,
        signal: combined,
      });
      // Inside the try: a connection reset or the timeout can strike while the body streams in.
      text = await response.text();
    } catch (err) {
      // Cancellation of the activity is not a fault of the server: never retried, never wrapped.
      if (signal?.aborted) throw signal.reason ?? err;
      if (timeout.aborted) throw new TransientError(`no complete answer within ${this.timeoutMs} ms`, undefined, { cause: err });
      throw new TransientError(`request failed: ${describe(err)}`, undefined, { cause: err });
    }
    if (response.ok) {
      try {
        return JSON.parse(text) as unknown;
      } catch (err) {
        throw new TransientError(`HTTP ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`, undefined, { cause: err });
      }
    }
    const message = `HTTP ${response.status} from ${this.url}: ${serverMessage(text)}`;
    if (response.status === 429 || response.status === 408 || response.status >= 500) {
      throw new TransientError(message, retryAfterMs(response.headers.get('retry-after')));
    }
    if (response.status === 400 && isContextLengthError(text)) throw new PromptTooLongError(message, response.status);
    throw new ModelConfigError(message, response.status);
  }
}

export function parseCompletion(raw: unknown, n: number, dialect: Dialect = vllmDialect): ChatCompletion {
  const body = raw as {
    choices?: unknown;
    usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
  } | null;
  if (typeof body !== 'object' || body === null || !Array.isArray(body.choices)) {
    throw new TransientError(`answer without a choices list: ${JSON.stringify(raw)?.slice(0, 200)}`);
  }
  const byIndex = new Map<number, ChatChoice>();
  body.choices.forEach((c: unknown, position: number) => {
    const choice = (typeof c === 'object' && c !== null ? c : {}) as {
      index?: unknown;
      message?: { content?: unknown; refusal?: unknown } | null;
      finish_reason?: unknown;
    };
    const index = Number.isInteger(choice.index) ? (choice.index as number) : position;
    const content = choice.message?.content;
    const refusal = choice.message?.refusal;
    const tokenIds = intArray(dialect.completionTokenIds(choice));
    byIndex.set(index, {
      text: typeof content === 'string' ? content : typeof refusal === 'string' ? refusal : '',
      finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : 'error',
      completionTokens: tokenIds?.length ?? -1,
      ...(tokenIds ? { tokenIds } : {}),
    });
  });
  const choices = Array.from({ length: n }, (_, i) => byIndex.get(i) ?? { text: '', finishReason: 'error', completionTokens: 0 });
  // Without token ids only the request's total is known; with one choice that is exact, with
  // several it is shared out by answer length, which keeps the stage's token total right.
  const total = nonNegativeInt(body.usage?.completion_tokens) ?? 0;
  const unknown = choices.filter((c) => c.completionTokens < 0);
  if (unknown.length > 0) {
    const known = choices.reduce((sum, c) => sum + Math.max(c.completionTokens, 0), 0);
    const chars = unknown.reduce((sum, c) => sum + c.text.length, 0);
    for (const c of unknown) c.completionTokens = Math.round(((total - known) * (chars ? c.text.length / chars : 1 / unknown.length)));
  }
  const record = body as Record<string, unknown>;
  const first = (body.choices as unknown[]).find((c) => typeof c === 'object' && c !== null) as Record<string, unknown> | undefined;
  const promptTokenIds = intArray(dialect.promptTokenIds(record, first));
  const label = dialect.answeredBy(record, first);
  return {
    choices,
    promptTokens: nonNegativeInt(body.usage?.prompt_tokens) ?? promptTokenIds?.length ?? 0,
    ...(promptTokenIds ? { promptTokenIds } : {}),
    ...(label !== undefined ? { label } : {}),
  };
}

function intArray(value: unknown): number[] | undefined {
  return Array.isArray(value) && value.every((v) => Number.isInteger(v)) ? (value as number[]) : undefined;
}

function nonNegativeInt(value: unknown): number | undefined {
  return Number.isInteger(value) && (value as number) >= 0 ? (value as number) : undefined;
}

/** The OpenAI-shaped `error.message` when there is one, else the start of the body. */
function serverMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    if (typeof parsed.error === 'object' && typeof parsed.error?.message === 'string') return parsed.error.message;
    if (typeof parsed.error === 'string') return parsed.error;
    if (typeof parsed.message === 'string') return parsed.message;
    if (typeof parsed.detail === 'string') return parsed.detail;
  } catch {
    // not JSON: the raw text is the best message there is
  }
  return text.slice(0, 500) || '(empty body)';
}

function isContextLengthError(text: string): boolean {
  return /context_length_exceeded|maximum context length/i.test(text);
}

/** Retry-After is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function describe(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  const base = err instanceof Error ? err.message : String(err);
  return cause?.code ? `${base} (${cause.code})` : cause?.message ? `${base} (${cause.message})` : base;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
