import { createHash, randomUUID } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';

/**
 * A directory holding only what an inference server loads from a checkpoint.
 *
 * Servers treat every tensor file of a directory as weights: vLLM's `DefaultModelLoader` takes
 * every `*.safetensors` unless `model.safetensors.index.json` lists them, and its
 * `filter_files_not_needed_for_inference` drops only a few `.bin`/`.pt` names; SGLang's loader
 * reads them all and skips unknown names. The trainer keeps its AdamW moments in
 * `optimizer.safetensors` beside the weights (the next update resumes from them), which vLLM
 * would then try to load as parameters (`exp_avg/…`) and fail. So a checkpoint directory is
 * published through a sibling of hard links: the weight files, and every file that is not a
 * tensor file (config, generation config, tokenizer, chat template, probe).
 */
const tensorFile = /\.(safetensors|bin|pt|pth|ckpt|gguf)$/;
const weightFile = /^(model(-\d{5}-of-\d{5})?\.safetensors|adapter_model\.safetensors)$/;

/** The files of `dir` a server should see. */
export async function servableFiles(dir: string): Promise<{ keep: string[]; dropped: string[] }> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name);
  const indexed = await indexedWeights(dir);
  const isWeight = (name: string) => (indexed ? indexed.has(name) : weightFile.test(name));
  const keep = entries.filter((name) => !tensorFile.test(name) || isWeight(name)).sort();
  return { keep, dropped: entries.filter((name) => !keep.includes(name)).sort() };
}

async function indexedWeights(dir: string): Promise<Set<string> | undefined> {
  const text = await readFile(join(dir, 'model.safetensors.index.json'), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const map = (JSON.parse(text) as { weight_map?: Record<string, string> }).weight_map ?? {};
  return new Set(Object.values(map));
}

/**
 * `dir` itself when a server may read all of it, else a directory under `<workDir>/serving/` of
 * hard links to its servable files (symbolic links where the two are on different file systems).
 * Built once per checkpoint directory and renamed into place whole, so concurrent publishes and
 * retries share it.
 */
export async function servingDir(dir: string, workDir: string): Promise<string> {
  const { keep, dropped } = await servableFiles(dir);
  if (dropped.length === 0) return dir;
  // Named after the checkpoint folder too, so a server's logs and listings still say which attempt it serves.
  const target = join(workDir, 'serving', `${createHash('sha256').update(dir).digest('hex').slice(0, 16)}-${basename(dir)}`);
  if (await isDir(target)) return target;
  const partial = `${target}.partial-${randomUUID().slice(0, 8)}`;
  await mkdir(partial, { recursive: true });
  try {
    for (const name of keep) {
      await link(join(dir, name), join(partial, name)).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EXDEV' && err.code !== 'EPERM') throw err;
        await symlink(join(dir, name), join(partial, name));
      });
    }
    await rename(partial, target).catch(async (err: unknown) => {
      if (!(await isDir(target))) throw err; // another publish on this worker built it first
    });
    return target;
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}
