import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Command } from '../../command.js';
import { UsageError } from '../../command.js';
import { defaultCheckpoint, defaultModelName, startModelServer } from '../../../infra/model-server.js';
import { positiveInt } from '../exec.js';
import { loadProblems } from '../../../activities/dataset/index.js';
import { ChatClient, createLimiter, renderCodePrompt, requestSeed } from '../../../activities/llm/index.js';
import type { ChatRequest } from '../../../activities/llm/index.js';
import type { ChatMessage, Problem } from '../../../activities/records.js';
import { parseRunConfig } from '../../../config/run-config.js';
import type { RunConfig } from '../../../config/run-config.js';
import { llamaRequestBody, locateLlamaCpp, startLlamaServer } from './llama-cpp.js';

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
 *
 * `--compare llama.cpp` instead measures the embedded server against llama.cpp's llama-server on
 * the same machine, in one run (compareLlamaCpp below).
 */
const bench: Command = {
  summary: [
    'bench generate [--checkpoint DIR] [--dtype auto] [--compare-dtype float32] [--adapter DIR] [--problems 4] [--n 4] [--max-tokens 64] [--base-url URL --model NAME]: tokens/s of generateCode requests vs n=1 sequential, of one dtype vs another, of an adapter vs the base',
    'bench generate --compare llama.cpp [--config configs/local.json] [--rounds 1] [--problems P --n N --max-tokens T] [--threads <cores>] [--checkpoint DIR] [--dtype auto]:',
    '  the embedded server (as the stack starts it) against llama.cpp\'s llama-server on the GGUF the model was converted from (Q4_K_M),',
    '  both up at once and measured in turn (rounds alternate which goes first), at the code stage\'s concurrency from the config:',
    '  min(batchSize, models.code.concurrency) requests of n = nCode (llama.cpp: one request per stream, --parallel = streams, -t = cores),',
    '  same prompts, max tokens (models.code.sampling.maxTokens), temperature 1 and top_p 1, ignore_eos so every stream decodes max tokens.',
    '  Prints aggregate and per-stream completion tokens/s of each, their ratio (embedded / llama.cpp; median over rounds),',
    '  the CPU model and flags, and the load average before and after. Builds llama.cpp first if it is not cached (infra/install-llama-cpp.sh, 10-20 min).',
  ].join('\n'),
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
        compare: { type: 'string' },
        config: { type: 'string' },
        rounds: { type: 'string' },
        threads: { type: 'string' },
      },
    });
    if (values.compare !== undefined) {
      if (values.compare !== 'llama.cpp') throw new UsageError('--compare takes llama.cpp');
      for (const flag of ['base-url', 'compare-dtype', 'adapter'] as const) {
        if (values[flag] !== undefined) throw new UsageError(`--${flag} does not combine with --compare`);
      }
      if (values.dtype !== undefined && !dtypes.includes(values.dtype)) throw new UsageError(`--dtype must be one of ${dtypes.join(', ')}`);
      return compareLlamaCpp(values);
    }
    for (const flag of ['config', 'rounds', 'threads'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} is an option of --compare llama.cpp`);
    }
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

const defaultConfig = fileURLToPath(new URL('../../../configs/local.json', import.meta.url));

/** The code stage's shape in a run config: as generateCode sends it, one request per problem. */
export function codeStageShape(config: RunConfig): { problems: number; n: number; maxTokens: number; streams: number } {
  // generateCode keeps at most models.code.concurrency requests in flight, each for nCode samples.
  const problems = Math.min(config.algorithm.batchSize, config.models.code.concurrency);
  const n = config.algorithm.nCode;
  return { problems, n, maxTokens: config.models.code.sampling.maxTokens, streams: problems * n };
}

/** One stream's answer: its completion tokens and the seconds its request took. */
export interface StreamTiming {
  tokens: number;
  seconds: number;
}

/** Aggregate tokens/s (all streams' tokens over the wall time) and the mean per-stream rate. */
export function summarize(streams: StreamTiming[], wallSeconds: number) {
  const tokens = streams.reduce((sum, s) => sum + s.tokens, 0);
  const perStream = streams.map((s) => s.tokens / s.seconds);
  return {
    streams: streams.length,
    completionTokens: tokens,
    seconds: round(wallSeconds, 3),
    tokensPerSecond: round(tokens / wallSeconds, 1),
    perStreamTokensPerSecond: round(perStream.reduce((a, b) => a + b, 0) / perStream.length, 2),
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** What of /proc/cpuinfo says which kernels the engines can use: model name, cores, SIMD flags. */
export function cpuSummary(cpuinfo: string, cores: number) {
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  const simd = ['avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_bf16'].filter((f) => flags.has(f));
  return { model, cores, flags: simd, nativeBf16: flags.has('avx512_bf16') || flags.has('amx_bf16') };
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const load = () => loadavg().map((x) => round(x, 2));

interface Engine {
  name: 'embedded' | 'llamaCpp';
  baseUrl: string;
  /** Starts every stream of the workload at once; resolves with each stream's timing. */
  run(): Promise<StreamTiming[]>;
}

async function compareLlamaCpp(values: Record<string, string | boolean | undefined>): Promise<number> {
  const configPath = typeof values.config === 'string' ? values.config : defaultConfig;
  const config = parseRunConfig(JSON.parse(await readFile(configPath, 'utf8')));
  const shape = codeStageShape(config);
  const str = (flag: string) => (typeof values[flag] === 'string' ? (values[flag] as string) : undefined);
  const problemCount = positiveInt(str('problems'), '--problems', shape.problems);
  const n = positiveInt(str('n'), '--n', shape.n);
  const maxTokens = positiveInt(str('max-tokens'), '--max-tokens', shape.maxTokens);
  const rounds = positiveInt(str('rounds'), '--rounds', 1);
  const threads = positiveInt(str('threads'), '--threads', cpus().length);
  const model = str('model') ?? config.models.code.model;
  const { problems } = await loadProblems('builtin');
  const chosen = problems.slice(0, problemCount);
  if (chosen.length < problemCount) throw new UsageError(`only ${chosen.length} built-in problems`);
  const streams = chosen.length * n;
  const seeds = chosen.map((p) => requestSeed({ role: 'code', runSeed: config.seed, iteration: 0, questionId: p.questionId }));
  const messages = chosen.map((p) => renderCodePrompt(p).messages);

  const llama = await locateLlamaCpp(model);
  const checkpoint = str('checkpoint') ?? (await defaultCheckpoint(model));
  const cpu = cpuSummary(await readFile('/proc/cpuinfo', 'utf8').catch(() => ''), cpus().length);
  const loadBefore = load();

  const embeddedServer = await startModelServer({ model, checkpoint, dtype: str('dtype'), threads, timeoutMs: 300_000 });
  try {
    // Prompts of the built-in problems stay under 1,024 tokens with the chat template.
    const llamaServer = await startLlamaServer(llama.binDir, { gguf: llama.gguf, parallel: streams, threads, contextPerSlot: maxTokens + 1024 });
    try {
      const embedded: Engine = {
        name: 'embedded',
        baseUrl: embeddedServer.baseUrl,
        run: () =>
          Promise.all(
            messages.map((m, i) =>
              timedPost(embeddedServer.baseUrl, {
                model,
                messages: m,
                n,
                temperature: 1,
                top_p: 1,
                max_tokens: maxTokens,
                seed: seeds[i],
                ignore_eos: true,
              }),
            ),
          ).then((answers) => answers.flat()),
      };
      const llamaCpp: Engine = {
        name: 'llamaCpp',
        baseUrl: llamaServer.baseUrl,
        run: () =>
          Promise.all(
            messages.flatMap((m, i) =>
              Array.from({ length: n }, (_, s) =>
                timedPost(llamaServer.baseUrl, llamaRequestBody({ messages: m, temperature: 1, topP: 1, maxTokens, seed: seeds[i]! + s, ignoreEos: true })),
              ),
            ),
          ).then((answers) => answers.flat()),
      };
      // Warm-up, not timed: loads kernels and touches every weight once on both.
      for (const engine of [embedded, llamaCpp]) await engineWarmUp(engine.baseUrl, model, messages[0]!);

      const results: Record<Engine['name'], ReturnType<typeof summarize>[]> = { embedded: [], llamaCpp: [] };
      const loads: number[][] = [];
      for (let r = 0; r < rounds; r++) {
        // Alternate which engine goes first, so that load that rises or falls during a run falls on both.
        for (const engine of r % 2 ? [llamaCpp, embedded] : [embedded, llamaCpp]) {
          const started = performance.now();
          const timings = await engine.run();
          results[engine.name].push(summarize(timings, (performance.now() - started) / 1000));
          loads.push(load());
        }
      }
      const roundRatios = results.embedded.map((e, r) => round(e.tokensPerSecond / results.llamaCpp[r]!.tokensPerSecond, 2));
      const pick = (all: ReturnType<typeof summarize>[]) => all.reduce((best, x) => (x.tokensPerSecond >= best.tokensPerSecond ? x : best));
      const health = (await (await fetch(embeddedServer.baseUrl.replace(/\/v1$/, '/health'))).json()) as { dtype?: string };
      console.log(
        JSON.stringify({
          benchmark: 'generate',
          compare: 'llama.cpp',
          cpu,
          config: configPath,
          workload: { problems: chosen.length, n, streams, maxTokens, temperature: 1, topP: 1, ignoreEos: true, rounds },
          embedded: { checkpoint, dtype: health.dtype, threads, ...pick(results.embedded), rounds: results.embedded.map((x) => x.tokensPerSecond) },
          llamaCpp: { gguf: llama.gguf, parallel: streams, threads, ...pick(results.llamaCpp), rounds: results.llamaCpp.map((x) => x.tokensPerSecond) },
          ratio: round(median(roundRatios), 2),
          roundRatios,
          loadAverage: { before: loadBefore, afterEachRun: loads },
        }),
      );
    } finally {
      await llamaServer.stop();
    }
  } finally {
    await embeddedServer.stop();
  }
  return 0;
}

async function engineWarmUp(baseUrl: string, model: string, messages: ChatMessage[]): Promise<void> {
  await timedPost(baseUrl, { model, messages, max_tokens: 8, temperature: 1, top_p: 1 });
}

/** One chat request; each of its choices as a stream that took the request's time. */
async function timedPost(baseUrl: string, body: Record<string, unknown>): Promise<StreamTiming[]> {
  const started = performance.now();
  const res = await fetch(`${baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(60 * 60_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${baseUrl}/chat/completions answered ${res.status}: ${text.slice(0, 500)}`);
  const seconds = (performance.now() - started) / 1000;
  const answer = JSON.parse(text) as { choices: { token_ids?: number[] }[]; usage?: { completion_tokens?: number } };
  // The embedded server returns each choice's token ids; llama-server answers one choice and its usage.
  if (answer.choices.length === 1 && answer.choices[0]!.token_ids === undefined) {
    return [{ tokens: answer.usage?.completion_tokens ?? 0, seconds }];
  }
  return answer.choices.map((c) => ({ tokens: c.token_ids?.length ?? 0, seconds }));
}
