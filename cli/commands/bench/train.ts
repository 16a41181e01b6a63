import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { UsageError } from '../../command.js';
import type { Command } from '../../command.js';
import { defaultCheckpoint } from '../../../infra/model-server.js';
import { positiveInt } from '../exec.js';
import { builtinTrainerCommand, dtypeRuleCommand } from '../../../activities/update-policy.js';
import { hyperparameters, runTrainer } from '../../../activities/trainer/index.js';
import type { TrainerHyperparameters, TrainerJob } from '../../../activities/trainer/index.js';
import { trainerSchema } from '../../../config/run-config.js';

/** metrics.json: numbers, and the dtype names as strings. */
type Metrics = Record<string, number | string>;

const dtypes = trainerSchema.shape.dtype.unwrap().options;
type Dtype = (typeof dtypes)[number];

function dtypeFlag(value: string | undefined, flag: string): Dtype | undefined {
  if (value === undefined) return undefined;
  if (!(dtypes as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${dtypes.join(', ')}, got '${value}'`);
  return value as Dtype;
}

/** python/dtypes.py's view of this machine: what decides `auto`. */
async function cpuSeenByDtypeRule() {
  const [command, ...args] = dtypeRuleCommand;
  const cpu = JSON.parse((await execa(command!, args)).stdout) as Record<string, string | boolean>;
  return {
    model: cpu.model,
    avx512Bf16: cpu.avx512_bf16,
    amxBf16: cpu.amx_bf16,
    torchCapability: cpu.torch_capability,
    onednnMaxCpuIsa: cpu.onednn_max_cpu_isa || null,
    fastBf16: cpu.fast_bf16,
    auto: cpu.auto,
  };
}

/** What one update reports: speed of the whole step and of training alone, memory, what was trained. */
function summary(m: Metrics) {
  const n = (key: string) => m[key] as number;
  return {
    baseDtype: m.base_dtype,
    computeDtype: m.compute_dtype,
    trainableParameters: n('trainable_parameters'),
    tokensPerSecond: Number(n('tokens_per_s').toFixed(1)),
    trainTokensPerSecond: Number(n('train_tokens_per_s').toFixed(1)),
    logprobSeconds: Number(n('logprob_seconds').toFixed(2)),
    trainSeconds: Number(n('train_seconds').toFixed(2)),
    peakMemoryMiB: Math.round(n('peak_memory_bytes') / 2 ** 20),
    totalSeconds: Number(n('seconds').toFixed(2)),
  };
}

/**
 * One GRPO update step of the default model through the launcher's own process handling, twice on
 * the same rollouts: full-parameter training (fp32 master weights; the policy and a separate
 * reference, as in every iteration after the first), then a fresh LoRA adapter on the frozen base
 * (the reference is the base with the adapter switched off). Each is the frozen log-prob passes plus
 * one optimizer step over all rollouts in micro-batches, with the run config's defaults otherwise.
 * Token ids are synthetic (a fixed pseudo-random stream): the cost does not depend on which tokens
 * they are. tokens/s counts prompt and response tokens over the log-prob passes plus the training
 * step; loading and saving are not timed. Peak memory is the trainer process's (max RSS on CPU,
 * max allocated on CUDA). `ratio` is LoRA's tokens/s over full-parameter's.
 *
 * Both compute in `--dtype` (the run config's `trainer.dtype`, default auto; `--lora-base-dtype` is
 * its former name). `--compare-dtype D` runs the LoRA step once more on the same rollouts in D:
 * `compare.dtypeRatio` is the first LoRA step's tokens/s over that one's, e.g. auto against bfloat16
 * is what the dtype rule gains on this CPU. `cpu` is the CPU as the rule sees it (python/dtypes.py).
 */
const bench: Command = {
  summary:
    'bench train [--rollouts 8] [--prompt-tokens 128] [--response-tokens 128] [--micro-batch 4] [--lora-rank 16] [--dtype auto|bfloat16|float32] [--compare-dtype auto|bfloat16|float32] [--checkpoint DIR]: one policy update step with LoRA against full-parameter training, and LoRA in one dtype against another',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        rollouts: { type: 'string' },
        'prompt-tokens': { type: 'string' },
        'response-tokens': { type: 'string' },
        'micro-batch': { type: 'string' },
        'lora-rank': { type: 'string' },
        dtype: { type: 'string' },
        'lora-base-dtype': { type: 'string' },
        'compare-dtype': { type: 'string' },
        checkpoint: { type: 'string' },
      },
    });
    const rollouts = positiveInt(values.rollouts, '--rollouts', 8);
    const promptTokens = positiveInt(values['prompt-tokens'], '--prompt-tokens', 128);
    const responseTokens = positiveInt(values['response-tokens'], '--response-tokens', 128);
    const microBatchSize = positiveInt(values['micro-batch'], '--micro-batch', 4);
    const loraRank = positiveInt(values['lora-rank'], '--lora-rank', 16);
    const asked = dtypeFlag(values.dtype, 'dtype');
    const alias = dtypeFlag(values['lora-base-dtype'], 'lora-base-dtype');
    if (asked && alias && asked !== alias) throw new UsageError(`--dtype ${asked} and --lora-base-dtype ${alias} disagree`);
    const dtype = asked ?? alias ?? 'auto';
    const compareDtype = dtypeFlag(values['compare-dtype'], 'compare-dtype');
    const checkpoint = values.checkpoint ?? (await defaultCheckpoint());

    const work = await mkdtemp(join(tmpdir(), 'code-a1-bench-train-'));
    try {
      // A reference that is the same files under another directory, so full-parameter training loads and runs it separately.
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
      const update = async (name: string, lora: boolean, stepDtype: Dtype): Promise<Metrics> => {
        const config: TrainerHyperparameters = hyperparameters(
          trainerSchema.parse({ microBatchSize, dtype: stepDtype, ...(lora ? { lora: { rank: loraRank } } : {}) }),
        );
        const job: TrainerJob = {
          schemaVersion: 1,
          runId: 'bench',
          iteration: 0,
          role: 'code',
          policy: checkpoint,
          reference: lora ? checkpoint : reference,
          adapter: null,
          optimizerState: null,
          output: join(work, name),
          config,
          rollouts: batch,
        };
        const jobPath = join(work, `${name}.json`);
        await writeFile(jobPath, JSON.stringify(job));
        await runTrainer({ command: builtinTrainerCommand, jobPath, cwd: work, signal: new AbortController().signal, onProgress: () => {} });
        const metrics = JSON.parse(await readFile(join(work, name, 'metrics.json'), 'utf8')) as Metrics;
        await rm(join(work, name), { recursive: true, force: true }); // a full checkpoint is gigabytes
        return metrics;
      };
      const cpu = await cpuSeenByDtypeRule();
      const full = await update('full', false, dtype);
      const lora = await update('lora', true, dtype);
      const compared = compareDtype ? await update('lora-compare', true, compareDtype) : undefined;
      const ratio = (a: Metrics, b: Metrics, key: string) => Number(((a[key] as number) / (b[key] as number)).toFixed(2));
      console.log(
        JSON.stringify({
          benchmark: 'train',
          checkpoint,
          device: lora.cuda === 1 ? 'cuda' : 'cpu',
          cpu,
          dtype,
          rollouts,
          microBatchSize,
          tokens: lora.tokens,
          responseTokens: lora.response_tokens,
          lora: { rank: loraRank, ...summary(lora) },
          full: summary(full),
          ratio: ratio(lora, full, 'tokens_per_s'),
          memoryRatio: ratio(lora, full, 'peak_memory_bytes'),
          ...(compared
            ? {
                compare: {
                  dtype: compareDtype,
                  lora: { rank: loraRank, ...summary(compared) },
                  dtypeRatio: ratio(lora, compared, 'tokens_per_s'),
                  dtypeMemoryRatio: ratio(lora, compared, 'peak_memory_bytes'),
                },
              }
            : {}),
        }),
      );
      return 0;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
};
export default bench;
