import { parseArgs } from 'node:util';
import type { Command } from '../../command.js';
import { UsageError } from '../../command.js';
import { defaultCheckpoint, defaultModelName, startModelServer } from '../../../infra/model-server.js';
import { positiveInt } from '../exec.js';
import { loadProblems } from '../../../activities/dataset/index.js';
import { ChatClient, createLimiter, renderCodePrompt, requestSeed } from '../../../activities/llm/index.js';
import type { ChatRequest } from '../../../activities/llm/index.js';
import type { Problem } from '../../../activities/records.js';

const dtypes = ['auto', 'bfloat16', 'float32', 'float16'];
const adapterName = 'bench-adapter';

/**
 * The code-generation workload (code prompts of built-in problems, temperature 1.0 as in the
 * paper) run two ways against one server: as generateCode sends it (one request per problem with
 * n samples, all problems in flight together) and as a client without `n` or concurrency would
 * (one sample per request, one request at a time). Same prompts, same token budget; tokens/s is
 * completion tokens over wall time.
 *
 * `--compare-dtype D` runs both again on a second embedded server with `--dtype D` (e.g. float32
 * against the default bfloat16); `--adapter DIR` loads a LoRA adapter (vLLM's runtime LoRA route)
 * and runs the batched workload through it, against the base.
 */
const bench: Command = {
  summary:
    'bench generate [--checkpoint DIR] [--dtype auto] [--compare-dtype float32] [--adapter DIR] [--problems 4] [--n 4] [--max-tokens 64] [--base-url URL --model NAME]: tokens/s of generateCode requests vs n=1 sequential, of one dtype vs another, of an adapter vs the base',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        problems: { type: 'string' },
        n: { type: 'string' },
        'max-tokens': { type: 'string' },
        'base-url': { type: 'string' },
        model: { type: 'string' },
        checkpoint: { type: 'string' },
        dtype: { type: 'string' },
        'compare-dtype': { type: 'string' },
        adapter: { type: 'string' },
      },
    });
    const problemCount = positiveInt(values.problems, '--problems', 4);
    const n = positiveInt(values.n, '--n', 4);
    const maxTokens = positiveInt(values['max-tokens'], '--max-tokens', 64);
    for (const flag of ['dtype', 'compare-dtype'] as const) {
      const value = values[flag];
      if (value !== undefined && !dtypes.includes(value)) throw new UsageError(`--${flag} must be one of ${dtypes.join(', ')}`);
    }
    if (values['base-url'] && (values.checkpoint || values.dtype || values['compare-dtype'])) {
      throw new UsageError('--checkpoint, --dtype and --compare-dtype start embedded servers; they do not combine with --base-url');
    }
    const { problems } = await loadProblems('builtin');
    const workload = { problems: problems.slice(0, problemCount), n, maxTokens };
    const model = values.model ?? defaultModelName;
    const checkpoint = values['base-url'] ? undefined : (values.checkpoint ?? (await defaultCheckpoint(model)));

    const first = await withServer({ baseUrl: values['base-url'], model, checkpoint, dtype: values.dtype }, async (baseUrl) => {
      const measured = await measure(new ChatClient({ baseUrl, model, maxAttempts: 1 }), workload);
      if (!values.adapter) return { ...measured, dtype: await servedDtype(baseUrl, values.dtype) };
      const adapter = await withAdapter(baseUrl, values.adapter, async () => {
        const client = new ChatClient({ baseUrl, model: adapterName, maxAttempts: 1 });
        await warmUp(client, workload);
        return timed(() => batched(client, workload));
      });
      return {
        ...measured,
        dtype: await servedDtype(baseUrl, values.dtype),
        adapter: { path: values.adapter, batched: adapter, ratioToBase: ratio(adapter, measured.batched) },
      };
    });
    const compareDtype = values['compare-dtype'];
    const compared = compareDtype
      ? await withServer({ model, checkpoint, dtype: compareDtype }, async (baseUrl) => ({
          ...(await measure(new ChatClient({ baseUrl, model, maxAttempts: 1 }), workload)),
          dtype: await servedDtype(baseUrl, compareDtype),
        }))
      : undefined;

    console.log(
      JSON.stringify({
        benchmark: 'generate',
        model,
        checkpoint,
        problems: workload.problems.length,
        n,
        maxTokens,
        ...first,
        ...(compared
          ? {
              compare: compared,
              dtypeRatio: { batched: ratio(first.batched, compared.batched), baseline: ratio(first.baseline, compared.baseline) },
            }
          : {}),
      }),
    );
    return 0;
  },
};
export default bench;

interface Workload {
  problems: Problem[];
  n: number;
  maxTokens: number;
}
type Timing = Awaited<ReturnType<typeof timed>>;

/** Runs `work` against `baseUrl`, or against an embedded server started for it and stopped after. */
async function withServer<T>(
  opts: { baseUrl?: string; model: string; checkpoint?: string; dtype?: string },
  work: (baseUrl: string) => Promise<T>,
): Promise<T> {
  if (opts.baseUrl) return work(opts.baseUrl);
  const server = await startModelServer({ model: opts.model, checkpoint: opts.checkpoint, dtype: opts.dtype, timeoutMs: 300_000 });
  try {
    return await work(server.baseUrl);
  } finally {
    await server.stop();
  }
}

/** The batched workload, then the same samples one request at a time. */
async function measure(client: ChatClient, workload: Workload) {
  await warmUp(client, workload);
  const batchedRun = await timed(() => batched(client, workload));
  const baseline = await timed(async () => {
    const tokens: number[] = [];
    for (const i of workload.problems.keys()) {
      for (let s = 0; s < workload.n; s++) {
        tokens.push(...(await client.complete(request(workload, i, 1, s))).choices.map((c) => c.completionTokens));
      }
    }
    return tokens;
  });
  return { batched: batchedRun, baseline, ratio: ratio(batchedRun, baseline) };
}

/** Loads kernels and caches once, so that no measured run pays the first request's cost. */
async function warmUp(client: ChatClient, workload: Workload): Promise<void> {
  await client.complete({ ...request(workload, 0, 1), maxTokens: 4 });
}

async function batched(client: ChatClient, workload: Workload): Promise<number[]> {
  const limit = createLimiter(workload.problems.length);
  const answers = await Promise.all(workload.problems.map((_, i) => limit(() => client.complete(request(workload, i, workload.n)))));
  return answers.flatMap((a) => a.choices.map((c) => c.completionTokens));
}

function request(workload: Workload, problemIndex: number, samples: number, sample = 0): ChatRequest {
  const problem = workload.problems[problemIndex]!;
  return {
    messages: renderCodePrompt(problem).messages,
    n: samples,
    temperature: 1,
    topP: 1,
    maxTokens: workload.maxTokens,
    seed: requestSeed({ role: 'code', runSeed: sample, iteration: 0, questionId: problem.questionId }),
  };
}

/** Loads a LoRA adapter through vLLM's runtime route for `work`, and unloads it after. */
async function withAdapter<T>(baseUrl: string, path: string, work: () => Promise<T>): Promise<T> {
  await post(`${baseUrl}/load_lora_adapter`, { lora_name: adapterName, lora_path: path });
  try {
    return await work();
  } finally {
    await post(`${baseUrl}/unload_lora_adapter`, { lora_name: adapterName });
  }
}

async function post(url: string, body: object): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`POST ${url} answered ${res.status}: ${await res.text()}`);
}

/** The dtype the embedded server reports on /health; other servers (vLLM) do not say. */
async function servedDtype(baseUrl: string, requested: string | undefined): Promise<string | undefined> {
  const res = await fetch(`${baseUrl.replace(/\/v1\/?$/, '')}/health`).catch(() => undefined);
  const health = res?.ok ? ((await res.json().catch(() => ({}))) as { dtype?: string }) : {};
  return health.dtype ?? requested;
}

function ratio(a: Timing, b: Timing): number {
  return Math.round((a.tokensPerSecond / b.tokensPerSecond) * 100) / 100;
}

async function timed(run: () => Promise<number[]>) {
  const started = performance.now();
  const tokens = await run();
  const seconds = (performance.now() - started) / 1000;
  const completionTokens = tokens.reduce((a, b) => a + b, 0);
  return {
    samples: tokens.length,
    completionTokens,
    seconds: Math.round(seconds * 1000) / 1000,
    tokensPerSecond: Math.round((completionTokens / seconds) * 10) / 10,
  };
}
