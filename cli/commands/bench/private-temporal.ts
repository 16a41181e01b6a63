import { mkdtemp, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTemporal, stopTemporal, temporalBinary } from '../../../infra/temporal-server.js';
import type { TemporalServerOptions } from '../../../infra/temporal-server.js';
import { localStack } from '../../../infra/stack.js';
import { freePort } from '../../../infra/process.js';

/**
 * Runs `body` against a Temporal dev server of its own (free ports, its database in a temporary
 * directory, `namespace` registered), never the shared one on 7233 whose workers would take its
 * tasks. The server runs detached, so it is stopped and its directory removed when `body` ends or
 * fails, and on SIGINT/SIGTERM before the process exits; a second signal exits at once.
 */
export async function withPrivateTemporal<T>(namespace: string, body: (address: string, dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `${namespace}-`));
  const port = await freePort();
  const server: TemporalServerOptions = { stateDir: join(dir, 'temporal'), port, uiPort: await freePort(port), namespaces: [namespace] };
  const cleanUp = async () => {
    await stopTemporal(server);
    await rm(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => void cleanUp().finally(() => process.exit(128 + constants.signals[signal]));
  for (const s of signals) process.once(s, onSignal);
  try {
    await startTemporal(await temporalBinary(localStack.repoRoot), server);
    return await body(`127.0.0.1:${port}`, dir);
  } finally {
    for (const s of signals) process.off(s, onSignal);
    await cleanUp();
  }
}

const signals = ['SIGINT', 'SIGTERM'] as const;
