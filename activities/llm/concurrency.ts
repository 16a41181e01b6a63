/**
 * At most `limit` calls of the returned function run at once; the rest wait in call order, so
 * work queued for earlier shards finishes first and a stage stores its shards roughly in order.
 */
export function createLimiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next waiter, so `active` never dips below the limit while work queues.
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
