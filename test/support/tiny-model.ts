import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { tempDir } from './config.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

let tiny: Promise<string> | undefined;
/** A tiny random Llama checkpoint with a chat template (python/tests/test_trainer.py), built once per process. */
export function tinyModel(): Promise<string> {
  tiny ??= (async () => {
    const dir = join(await tempDir(), 'tiny');
    const script = 'import sys; sys.path.insert(0, "python/tests"); from test_trainer import build_tiny_model; build_tiny_model(sys.argv[1])';
    await execa(join(repoRoot, '.venv/bin/python'), ['-c', script, dir], { cwd: repoRoot });
    return dir;
  })();
  return tiny;
}
