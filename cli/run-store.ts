import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from './command.js';
import { readConfigFile } from './config-file.js';
import { parseCommandLine } from './commands/exec.js';
import { parseRunConfig, runConfigSchema } from '../config/run-config.js';
import { parseWorkerEnv } from '../config/worker-env.js';
import { StorageConfigError, openStore } from '../activities/storage/index.js';

/** The local stack's bucket (infra/stack.ts), which `make run` trains into. */
const defaultStorageUri = 's3://code-a1';

/** Options every command that reads a stored run takes, beside its own. */
const storeOptions = { storage: { type: 'string' }, config: { type: 'string' } } as const;

/**
 * `<command> <runId> [--storage URI] [--config FILE] [own options]`: the run ID, checked as a
 * run config checks it (it names local files, so no '/' or '..'), and the run's store: from
 * --storage, else the config's storageUri, else the local stack; S3 endpoint and credentials from
 * the environment, as the workers take them.
 */
export async function openRunStore<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], own: O) {
  const { values, positionals } = parseCommandLine(() =>
    parseArgs({ args: argv, options: { ...storeOptions, ...own }, strict: true, allowPositionals: true }),
  );
  if (positionals.length !== 1) throw new UsageError('expected one run ID');
  const runIdCheck = runConfigSchema.shape.runId.safeParse(positionals[0]);
  if (!runIdCheck.success) throw new UsageError(`run ID '${positionals[0]}': ${runIdCheck.error.issues[0]?.message}`);
  const { storage, config: configPath } = values as { storage?: string; config?: string };
  const config = configPath === undefined ? undefined : (await readConfigFile(configPath, parseRunConfig)).config;
  // Its planned iteration count is read as this run's: a config of another run would mislead.
  if (config && config.runId !== runIdCheck.data) throw new UsageError(`${configPath} configures run '${config.runId}', not '${runIdCheck.data}'`);
  const storageUri = storage ?? config?.storageUri ?? defaultStorageUri;
  try {
    return { runId: runIdCheck.data, store: openStore(storageUri, parseWorkerEnv(process.env).s3), config, values };
  } catch (err) {
    if (err instanceof StorageConfigError) throw new UsageError(err.message);
    throw err;
  }
}
