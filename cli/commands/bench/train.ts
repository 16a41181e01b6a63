import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Command } from '../../command.js';
import { defaultCheckpoint } from '../../../infra/model-server.js';
import { positiveInt } from '../exec.js';
import { builtinTrainerCommand } from '../../../activities/update-policy.js';
import { hyperparameters, runTrainer } from '../../../activities/trainer/index.js';
import type { TrainerJob } from '../../../activities/trainer/index.js';
import { trainerSchema } from '../../../config/run-config.js';

/**
 * One GRPO update step of the default model through the launcher's own process handling: the
 * frozen log-prob passes (policy and a separate reference, as in every iteration after the first)
 * and one optimizer step over all rollouts in micro-batches, with the run config's defaults.
 * Token ids are synthetic (a fixed pseudo-random stream): the cost does not depend on which
 * tokens they are. tokens/s counts prompt and response tokens over the log-prob passes plus the
 * training step; loading and saving the checkpoint are not timed. The baseline is the same update
 * with micro-batch 1 (one rollout per forward/backward), in the same run.
 */
const bench: Command = {
  summary: 'bench train [--rollouts 8] [--prompt-tokens 128] [--response-tokens 128] [--micro-batch 4] [--checkpoint DIR]: tokens/s of one policy update step, against micro-batch 1',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        rollouts: { type: 'string' },
        'prompt-tokens': { type: 'string' },
        'response-tokens': { type: 'string' },
        'micro-batch': { type: 'string' },
        checkpoint: { type: 'string' },
      },
    });
    const rollouts = positiveInt(values.rollouts, '--rollouts', 8);
    const promptTokens = positiveInt(values['prompt-tokens'], '--prompt-tokens', 128);
    const responseTokens = positiveInt(values['response-tokens'], '--response-tokens', 128);
    const microBatchSize = positiveInt(values['micro-batch'], '--micro-batch', 4);
    const checkpoint = values.checkpoint ?? (await defaultCheckpoint());

    const work = await mkdtemp(join(tmpdir(), 'code-a1-bench-train-'));
    try {
      // A reference that is the same files under another directory, so it is loaded and run separately.
      const reference = join(work, 'reference');
      await mkdir(reference);
      for (const f of await readdir(checkpoint)) await symlink(join(checkpoint, f), join(reference, f));
      let s = 12345;
      const token = () => {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        return 100 + (s % 20_000);
      };
      const batch = Array.from({ length: rollouts }, (_, i) => ({
        questionId: 'bench',
        candidateIndex: i,
        advantage: i % 2 === 0 ? 1 : -1,
        promptTokenIds: Array.from({ length: promptTokens }, token),
        responseTokenIds: Array.from({ length: responseTokens }, token),
        messages: [],
        response: '',
        finishReason: 'length',
        checkpoint,
      }));
      // The same update twice: one rollout per forward/backward (the baseline), then micro-batched.
      const step = async (name: string, microBatch: number) => {
        const job: TrainerJob = {
          schemaVersion: 1,
          runId: 'bench',
          iteration: 0,
          role: 'code',
          policy: checkpoint,
          reference,
          optimizerState: null,
          output: join(work, name),
          config: hyperparameters(trainerSchema.parse({ microBatchSize: microBatch })),
          rollouts: batch,
        };
        const jobPath = join(work, `${name}.json`);
        await writeFile(jobPath, JSON.stringify(job));
        await runTrainer({ command: builtinTrainerCommand, jobPath, cwd: work, signal: new AbortController().signal, onProgress: () => {} });
        return JSON.parse(await readFile(join(work, name, 'metrics.json'), 'utf8')) as Record<string, number>;
      };
      const base = await step('baseline', 1);
      const m = await step('batched', microBatchSize);
      console.log(
        JSON.stringify({
          benchmark: 'train',
          checkpoint,
          device: m.cuda ? 'cuda' : 'cpu',
          rollouts,
          microBatchSize,
          tokens: m.tokens,
          responseTokens: m.response_tokens,
          tokensPerSecond: Math.round(m.tokens_per_s!),
          trainTokensPerSecond: Math.round(m.train_tokens_per_s!),
          logprobSeconds: Number(m.logprob_seconds!.toFixed(2)),
          trainSeconds: Number(m.train_seconds!.toFixed(2)),
          peakMemoryMiB: Math.round(m.peak_memory_bytes! / 2 ** 20),
          totalSeconds: Number(m.seconds!.toFixed(2)),
          baselineTokensPerSecond: Math.round(base.tokens_per_s!),
          baselinePeakMemoryMiB: Math.round(base.peak_memory_bytes! / 2 ** 20),
          ratio: Number((m.tokens_per_s! / base.tokens_per_s!).toFixed(2)),
        }),
      );
      return 0;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
};
export default bench;
