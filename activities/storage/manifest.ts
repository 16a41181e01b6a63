import type { Manifest } from '../records.js';
import { MissingArtifactError } from '../artifact-errors.js';
import type { ObjectStore } from './object-store.js';
import { getJson, putJsonOnce } from './json.js';

/**
 * Sharded stage output. Each shard is written once at a key derived from its index, and the
 * manifest that lists them is written last: a stage whose manifest exists is finished, and a
 * retried stage skips the shards it finds.
 */
export function shardKey(prefix: string, index: number): string {
  return `${prefix}/shard-${String(index).padStart(5, '0')}.json`;
}

export function manifestKey(prefix: string): string {
  return `${prefix}/manifest.json`;
}

export async function readManifest(store: ObjectStore, key: string): Promise<Manifest | undefined> {
  return getJson<Manifest>(store, key);
}

/** Every record of a finished sharded output, in shard order. Throws when a listed shard is missing. */
export async function readShardedRecords<T>(store: ObjectStore, key: string): Promise<T[]> {
  const manifest = await readManifest(store, key);
  if (!manifest) throw new MissingArtifactError(`manifest ${store.uri}/${key} is missing`);
  const shards = await Promise.all(
    manifest.shards.map(async (shard) => {
      const records = await getJson<T[]>(store, shard);
      if (!records) throw new MissingArtifactError(`shard ${store.uri}/${shard} listed by ${key} is missing`);
      return records;
    }),
  );
  return shards.flat();
}

export async function writeManifest(store: ObjectStore, key: string, manifest: Manifest): Promise<Manifest> {
  return putJsonOnce(store, key, manifest);
}
