import type { StageResult } from '../workflows/contract.js';
import type { SampleSolutionsInput } from '../workflows/evaluate.js';
import { evaluationKeys } from '../workflows/evaluate.js';
import { chunk } from './generate-code.js';
import { evaluationProblems, type EvaluationSample } from './evaluation/problems.js';
import type { GoldenProblem } from './evaluation/golden-runner.js';
import type { ChatClient, ChatCompletion, GenerationDeps } from './llm/index.js';
import {
  PromptTooLongError,
  createLimiter,
  endpointClient,
  failedCompletion,
  renderCodePrompt,
  requestSeed,
  runShardedStage,
} from './llm/index.js';
import { extractCode } from './parsing/index.js';
import { isStoreUri } from './trainer/index.js';

/** Problems per shard (the unit of resume): 8 x 32 samples of up to 4,096 tokens stays a few MB. */
const defaultProblemsPerShard = 8;

/**
 * The sampling stage of a Code LLM evaluation: n samples per problem from the model endpoint, one
 * request per problem using the server's `n`, with the same prompt the Code LLM is trained on.
 * Output: `evals/<evalId>/samples/manifest.json` listing shards of EvaluationSample.
 */
export function createSampleSolutionsActivity(deps: GenerationDeps) {
  async function sampleSolutions({ config }: SampleSolutionsInput): Promise<StageResult> {
    const store = deps.openStore(config.storageUri);
    const problems = await evaluationProblems(config, deps.openStore);
    // A checkpoint that training wrote may be a LoRA adapter, served under a name of its own.
    const served = isStoreUri(config.model.checkpoint) ? await deps.ensureServed?.(config.model, config.model.checkpoint, 0) : undefined;
    const client = endpointClient(deps, config.model, 'code', served?.model);
    const limit = createLimiter(config.model.concurrency);
    const shards = chunk(problems, deps.problemsPerShard?.code ?? defaultProblemsPerShard);
    return runShardedStage<EvaluationSample>({
      store,
      prefix: evaluationKeys.samples(config.evalId),
      shardCount: shards.length,
      heartbeatMs: deps.heartbeatMs,
      fixed: { problems: problems.length },
      generate: async (index, signal) =>
        (await Promise.all(shards[index]!.map((problem) => limit(() => sampleProblem(client, config, problem, signal))))).flat(),
      count: (samples) => ({
        samples: samples.length,
        noCode: samples.filter((s) => s.code === null).length,
        truncated: samples.filter((s) => s.finishReason === 'length').length,
        completionTokens: samples.reduce((sum, s) => sum + s.completionTokens, 0),
      }),
    });
  }

  async function sampleProblem(client: ChatClient, config: SampleSolutionsInput['config'], problem: GoldenProblem, signal: AbortSignal): Promise<EvaluationSample[]> {
    const prompt = renderCodePrompt(problem);
    const { sampling } = config.model;
    let completion: ChatCompletion;
    try {
      completion = await client.complete(
        {
          messages: prompt.messages,
          n: config.samples,
          temperature: sampling.temperature,
          topP: sampling.topP,
          maxTokens: sampling.maxTokens,
          // Iteration -1: evaluation requests never share a seed stream with a training iteration.
          seed: requestSeed({ role: 'code', runSeed: config.seed, iteration: -1, questionId: problem.questionId }),
        },
        signal,
      );
    } catch (err) {
      if (!(err instanceof PromptTooLongError)) throw err;
      completion = failedCompletion(config.samples);
    }
    return completion.choices.map((choice, sampleIndex) => ({
      questionId: problem.questionId,
      dataSource: problem.dataSource,
      sampleIndex,
      response: choice.text,
      finishReason: choice.finishReason,
      completionTokens: choice.completionTokens,
      code: extractCode(choice.text, { entryPoint: problem.entryPoint }),
    }));
  }

  return { sampleSolutions };
}
