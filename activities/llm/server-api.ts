import { cancellationSignal, heartbeat } from '@temporalio/activity';
import { ModelConfigError } from './errors.js';

/** The endpoint is unreachable or failed (5xx): retried, the server may be starting or restarting. */
export class ModelServerError extends Error {
  override name = 'ModelServerError';
  constructor(
    message: string,
    readonly status?: number,
    readonly body?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The administrative side of one inference server: the routes publishing calls, outside `/v1`. */
export interface ServerApi {
  /** `http://host:port`: the base URL without its `/v1`. */
  readonly root: string;
  get(route: string): Promise<unknown>;
  post(route: string, body?: unknown): Promise<unknown>;
}

/** An activity's heartbeat and cancellation; outside an activity (CLI tools, tests) neither applies. */
function activityContext(): { beat: (details: unknown) => void; signal?: AbortSignal } {
  try {
    return { beat: heartbeat, signal: cancellationSignal() };
  } catch {
    return { beat: () => undefined };
  }
}

export function serverRoot(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/**
 * JSON over HTTP to one server. A 4xx is the configuration's fault (a route this server lacks, a
 * path it cannot read) and throws the non-retryable ModelConfigError; a 5xx or a refused connection
 * throws the retryable ModelServerError, keeping status and body for callers that recognise a
 * particular failure. vLLM answers some admin routes with plain text, returned as a string.
 */
export function serverApi(baseUrl: string, apiKey?: string, options: { timeoutMs?: number } = {}): ServerApi {
  const root = serverRoot(baseUrl);
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(apiKey ? { Authorization: `Bearer ${apiKey}` } : {}) };
  const call = async (method: 'GET' | 'POST', route: string, body?: unknown): Promise<unknown> => {
    const url = `${root}${route}`;
    const { beat, signal: cancelled } = activityContext();
    // Publishing waits as long as a load takes; a caller outside an activity (preflight) bounds each call.
    const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
    const signal = cancelled && timeout ? AbortSignal.any([cancelled, timeout]) : (cancelled ?? timeout);
    // Loading large weights takes minutes; the open request is the progress worth reporting.
    const started = Date.now();
    const timer = setInterval(() => beat({ phase: route, waitingMs: Date.now() - started }), 5_000);
    try {
      const res = await fetch(url, {
        method,
        headers,
        ...(signal ? { signal } : {}),
        ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
      }).catch((err: unknown) => {
        if (cancelled?.aborted) throw err;
        if (timeout?.aborted) throw new ModelServerError(`${method} ${url}: no answer within ${options.timeoutMs} ms`, undefined, undefined, { cause: err });
        throw new ModelServerError(`${method} ${url} failed: ${String(err)}`, undefined, undefined, { cause: err });
      });
      const text = await res.text();
      if (res.status >= 400 && res.status < 500) throw new ModelConfigError(`${method} ${url} answered ${res.status}: ${text.slice(0, 2_000)}`, res.status);
      if (!res.ok) throw new ModelServerError(`${method} ${url} answered ${res.status}: ${text.slice(0, 2_000)}`, res.status, text);
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return text;
      }
    } finally {
      clearInterval(timer);
    }
  };
  return { root, get: (route) => call('GET', route), post: (route, body) => call('POST', route, body) };
}
