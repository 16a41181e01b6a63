import type { ObjectStore } from './object-store.js';

export async function getJson<T = unknown>(store: ObjectStore, key: string): Promise<T | undefined> {
  const bytes = await store.get(key);
  return bytes === undefined ? undefined : (JSON.parse(Buffer.from(bytes).toString('utf8')) as T);
}

export async function putJson(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await store.put(key, JSON.stringify(value));
}

/**
 * Write-once JSON: the first writer wins and every later call returns what is stored, so a
 * retried activity that recomputed a result never replaces the one other stages already read.
 */
export async function putJsonOnce<T>(store: ObjectStore, key: string, value: T): Promise<T> {
  if (await store.putIfAbsent(key, JSON.stringify(value))) return value;
  return (await getJson<T>(store, key)) as T;
}
