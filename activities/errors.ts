import { ApplicationFailure } from '@temporalio/common';
import { nonRetryableErrorTypes } from '../workflows/contract.js';

/**
 * Activity errors are classified here and nowhere else. An error whose class name is one of the
 * contract's non-retryable types (bad config, bad dataset, a storage URI that cannot work, a
 * model endpoint that rejects the request) fails the workflow with that type; everything else is
 * an infrastructure failure that Temporal retries, after the delay it names when it names one.
 * The cause is always kept.
 */
export function classify(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  // A failure that says how long to wait (a server's Retry-After) is retried after that delay.
  const retryAfterMs = (err as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  if (err instanceof Error && typeof retryAfterMs === 'number') {
    return ApplicationFailure.create({ message: err.message, type: err.name, nextRetryDelay: retryAfterMs, cause: err });
  }
  if (err instanceof Error && nonRetryableErrorTypes.includes(err.name)) {
    return ApplicationFailure.create({ message: err.message, type: err.name, nonRetryable: true, cause: err });
  }
  return err;
}

type AnyActivity = (...args: never[]) => Promise<unknown>;

/** Wraps every activity of a set so that its errors pass through `classify`. */
export function withErrorClassification<T extends Record<string, AnyActivity>>(activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      async (...args: never[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          throw classify(err);
        }
      },
    ]),
  ) as T;
}
