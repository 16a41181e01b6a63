/** One line of the pre-flight report: what was checked, what was found, and the exact fix when it failed. */
export interface Finding {
  ok: boolean;
  /** What was checked, as the config names it: `dataset.uri s3://bucket/kodcode.parquet`. */
  subject: string;
  detail: string;
  /** The step that makes the check pass; failures only. */
  fix?: string;
}

export const pass = (subject: string, detail: string): Finding => ({ ok: true, subject, detail });
export const fail = (subject: string, detail: string, fix: string): Finding => ({ ok: false, subject, detail, fix });

/** Fails after `ms`, so that one silent service cannot hold up the whole pre-flight. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** An error's message with the causes it does not repeat (fetch's "fetch failed" hides ECONNREFUSED two levels down), on one line. */
export function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let text = err.name === 'Error' || err.message.startsWith(err.name) ? err.message : `${err.name}: ${err.message}`;
  for (let cause = err.cause; cause instanceof Error; cause = cause.cause) {
    if (!text.includes(cause.message)) text += ` (${cause.message})`;
  }
  return text.replace(/\s*\n\s*/g, ' ');
}
