import { parseArgs } from 'node:util';
import type { Command } from '../../command.js';
import { defaultModelName, startModelServer } from '../../../infra/model-server.js';
import { positiveInt } from '../exec.js';
import { loadProblems } from '../../../activities/dataset/index.js';
import { ChatClient, createLimiter, renderCodePrompt, requestSeed } from '../../../activities/llm/index.js';
import type { ChatRequest } from '../../../activities/llm/index.js';

const modelName = defaultModelName;

/**
 * The code-generation workload (code prompts of built-in problems, temperature 1.0 as in the
 * paper) run two ways against one server: as generateCode sends it (one request per problem with
 * n samples, all problems in flight together) and as a client without `n` or concurrency would
 * (one sample per request, one request at a time). Same prompts, same token budget; tokens/s is
 * completion tokens over wall time.
 */
const bench: Command = {
  summary: 'bench generate [--problems 4] [--n 4] [--max-tokens 64] [--base-url URL --model NAME]: tokens/s of generateCode requests vs n=1 sequential',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        problems: { type: 'string' },
        n: { type: 'string' },
        'max-tokens': { type: 'string' },
        'base-url': { type: 'string' },
        model: { type: 'string' },
      },
    });
    const problemCount = positiveInt(values.problems, '--problems', 4);
    const n = positiveInt(values.n, '--n', 4);
    const maxTokens = positiveInt(values['max-tokens'], '--max-tokens', 64);
    const { problems } = await loadProblems('builtin');
    const chosen = problems.slice(0, problemCount);

    const server = values['base-url'] ? undefined : await startModelServer();
    try {
      const client = new ChatClient({ baseUrl: values['base-url'] ?? server!.baseUrl, model: values.model ?? modelName, maxAttempts: 1 });
      const request = (problemIndex: number, samples: number, sample = 0): ChatRequest => ({
        messages: renderCodePrompt(chosen[problemIndex]!).messages,
        n: samples,
        temperature: 1,
        topP: 1,
        maxTokens,
        seed: requestSeed({ role: 'code', runSeed: sample, iteration: 0, questionId: chosen[problemIndex]!.questionId }),
      });
      // Loads kernels and caches once, so neither measured run pays the first-request cost.
      await client.complete({ ...request(0, 1), maxTokens: 4 });

      const batched = await timed(async () => {
        const limit = createLimiter(chosen.length);
        const answers = await Promise.all(chosen.map((_, i) => limit(() => client.complete(request(i, n)))));
        return answers.flatMap((a) => a.choices.map((c) => c.completionTokens));
      });
      const baseline = await timed(async () => {
        const tokens: number[] = [];
        for (const i of chosen.keys()) {
          for (let s = 0; s < n; s++) tokens.push(...(await client.complete(request(i, 1, s))).choices.map((c) => c.completionTokens));
        }
        return tokens;
      });
      console.log(
        JSON.stringify({
          benchmark: 'generate',
          model: values.model ?? modelName,
          problems: chosen.length,
          n,
          maxTokens,
          batched,
          baseline,
          ratio: Math.round((batched.tokensPerSecond / baseline.tokensPerSecond) * 100) / 100,
        }),
      );
      return 0;
    } finally {
      await server?.stop();
    }
  },
};
export default bench;

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
