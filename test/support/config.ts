import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { RunConfig, RunConfigInput } from '../../config/run-config.js';
import { parseRunConfig } from '../../config/run-config.js';

export async function tempDir(prefix = 'code-a1-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A fresh run ID per test, so tests never see each other's workflows or artifacts. */
export function uniqueRunId(label: string): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

/** A small valid raw config (as a user would write it) with a file:// store of its own. */
export function rawConfig(storageDir: string, overrides: Partial<RunConfigInput> = {}): RunConfigInput {
  return {
    runId: uniqueRunId('test'),
    storageUri: `file://${storageDir}`,
    models: {
      code: { baseUrl: 'http://127.0.0.1:1/v1', model: 'code', checkpoint: 'init/code' },
      test: { baseUrl: 'http://127.0.0.1:1/v1', model: 'test', checkpoint: 'init/test' },
    },
    algorithm: { batchSize: 4, nCode: 2, nTest: 2 },
    timeouts: { heartbeatSeconds: 3 },
    iterations: 2,
    ...overrides,
  };
}

export function testConfig(storageDir: string, overrides: Partial<RunConfigInput> = {}): RunConfig {
  return parseRunConfig(rawConfig(storageDir, overrides));
}
