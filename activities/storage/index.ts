import { fileURLToPath } from 'node:url';
import { FileStore } from './file-store.js';
import type { ObjectStore } from './object-store.js';
import { StorageConfigError } from './object-store.js';
import type { S3Connection } from './s3-store.js';
import { S3Store, createS3Client } from './s3-store.js';

export type { ObjectStore } from './object-store.js';
export { StorageConfigError } from './object-store.js';
export type { S3Connection } from './s3-store.js';
export { FileStore } from './file-store.js';
export { S3Store } from './s3-store.js';
export { getJson, putJson, putJsonOnce } from './json.js';

/**
 * Opens the store a URI names: `file:///abs/path` or `s3://bucket[/prefix]`.
 * S3 stores share one client per connection so that sockets are pooled across activities.
 */
export function openStore(uri: string, s3?: S3Connection): ObjectStore {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (err) {
    throw new StorageConfigError(`storage URI '${uri}' is not a URI (expected file:///path or s3://bucket/prefix)`, {
      cause: err,
    });
  }
  if (url.protocol === 'file:') return new FileStore(fileURLToPath(url), uri.replace(/\/+$/, ''));
  if (url.protocol === 's3:') {
    if (!url.hostname) throw new StorageConfigError(`storage URI '${uri}' names no bucket`);
    if (!s3) throw new StorageConfigError(`storage URI '${uri}' needs an S3 connection, and this worker has none`);
    return new S3Store(clientFor(s3), url.hostname, url.pathname.replace(/^\/+|\/+$/g, ''));
  }
  throw new StorageConfigError(`storage URI '${uri}' has unsupported scheme '${url.protocol}' (use file:// or s3://)`);
}

const clients = new Map<string, ReturnType<typeof createS3Client>>();

function clientFor(conn: S3Connection) {
  const id = JSON.stringify(conn);
  let client = clients.get(id);
  if (!client) {
    client = createS3Client(conn);
    clients.set(id, client);
  }
  return client;
}
