/**
 * Every artifact of a run (batches, rollouts, execution results, the Mistake Book, checkpoints)
 * lives behind this interface. Keys are relative to the store's root URI and use '/' separators.
 */
export interface ObjectStore {
  /** The root this store writes under, e.g. `s3://bucket/prefix` or `file:///var/code-a1`. */
  readonly uri: string;
  /** The object's bytes, or undefined when there is no object at `key`. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Writes `body` at `key`, replacing any object there. Readers never see a partial object. */
  put(key: string, body: Uint8Array | string): Promise<void>;
  /**
   * Writes `body` only when nothing exists at `key` yet. Returns false, leaving the stored
   * object untouched, when one was there: the primitive behind write-once artifacts.
   */
  putIfAbsent(key: string, body: Uint8Array | string): Promise<boolean>;
  exists(key: string): Promise<boolean>;
  /** Every key under `prefix`, sorted, however many there are. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Streams a local file to `key` (large artifacts such as checkpoint shards). */
  putFile(key: string, path: string): Promise<void>;
  /** Streams the object at `key` to a local file; false when there is no such object. */
  getFile(key: string, path: string): Promise<boolean>;
}

/** Storage failure that retrying cannot fix (bad URI, missing bucket, access denied). */
export class StorageConfigError extends Error {
  override name = 'StorageConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function assertKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.')) {
    throw new StorageConfigError(`invalid object key '${key}': keys are relative paths without '.' or '..'`);
  }
}

export function toBytes(body: Uint8Array | string): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}
