import type { ObjectStore } from './storage/index.js';

/** What every activity factory receives: activities never read the environment themselves. */
export interface StorageDeps {
  openStore(uri: string): ObjectStore;
}
