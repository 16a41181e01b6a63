import { startTemporal, stopTemporal, temporalBinary } from '../../infra/temporal-server.js';
import { localStack } from '../../infra/stack.js';
import { tempDir } from './config.js';
import { testNamespace } from './temporal.js';

/**
 * A Temporal dev server of a test's own, on its own port and database, so that a test can
 * restart it without disturbing any other. `stop()` is safe to call more than once.
 */
export async function privateTemporal(port: number) {
  const server = { stateDir: await tempDir('code-a1-temporal-'), port, uiPort: port + 1000, namespaces: [testNamespace] };
  const binary = await temporalBinary(localStack.repoRoot);
  await startTemporal(binary, server);
  return {
    address: `127.0.0.1:${port}`,
    /** Stops the server and starts it again on the same database. */
    async restart() {
      await stopTemporal(server);
      await startTemporal(binary, server);
    },
    stop: () => stopTemporal(server),
  };
}
