import { nonRetryableErrors } from '../../workflows/contract.js';

/**
 * The endpoint rejected the request in a way no retry can fix: a wrong model name, bad or
 * missing credentials, a parameter the server refuses. Its name is the contract's
 * non-retryable type, so the activity fails the workflow at once with the server's message.
 */
export class ModelConfigError extends Error {
  override name = nonRetryableErrors.modelConfig;
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The endpoint did not answer usefully within one request's retry budget (down, overloaded,
 * rate limited, timing out). Retryable: Temporal retries the activity, which resumes from the
 * shards already stored. `retryAfterMs` is the server's own hint when it gave one.
 */
export class ModelUnavailableError extends Error {
  override name = 'ModelUnavailableError';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
