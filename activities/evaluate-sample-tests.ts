import type { StageResult } from '../workflows/contract.js';
import type { SampleTestResponsesInput } from '../workflows/evaluate.js';
import { evaluationKeys } from '../workflows/evaluate.js';
import { chunk } from './generate-code.js';
import type { GoldenProblem } from './evaluation/golden-runner.js';
import { evaluationProblems, type EvaluationSample } from './evaluation/problems.js';
import { ConfigError } from '../config/run-config.js';
import type { ChatCompletion, GenerationDeps } from './llm/index.js';
import {
  PromptTooLongError,
  createLimiter,
  endpointClient,
  failedCompletion,
  renderBlackBoxTestPrompt,
  renderTestPrompt,
  requestSeed,
  runShardedStage,
} from './llm/index.js';
import { readShardedRecords } from './storage/manifest.js';

/** One Test LLM response of the evaluation. */
export interface TestResponseSample {
  questionId: string;
  responseIndex: number;
  promptVersion: string;
  response: string;
  finishReason: string;
  completionTokens: number;
}

const defaultProblemsPerShard = 8;

/**
 * The sampling stage of a Test LLM evaluation: k responses per problem, black-box (the question
 * only) or white-box (the training prompt, attacking the evaluated Code LLM's first sample), one
 * request per problem using the server's `n`. Output: `evals/<evalId>/test-responses/`.
 */
export function createSampleTestResponsesActivity(deps: GenerationDeps) {
  async function sampleTestResponses({ config, samplesKey }: SampleTestResponsesInput): Promise<StageResult> {
    const tests = config.tests;
    if (!tests) throw new ConfigError('the evaluation config has no tests section: there is no Test LLM to sample');
    const store = deps.openStore(config.storageUri);
    const problems = await evaluationProblems(config, deps.openStore);
    const client = endpointClient(deps, tests.model, 'test');
    const limit = createLimiter(tests.model.concurrency);
    const shards = chunk(problems, deps.problemsPerShard?.tests ?? defaultProblemsPerShard);
    const candidates = new Map<string, string>();
    if (tests.mode === 'white-box') {
      // A problem none of whose samples held code is attacked through the first raw response.
      const samples = await readShardedRecords<EvaluationSample>(store, samplesKey);
      for (const s of samples) if (s.code !== null && !candidates.has(s.questionId)) candidates.set(s.questionId, s.code);
      for (const s of samples) if (!candidates.has(s.questionId)) candidates.set(s.questionId, s.response);
    }
    const sample = async (problem: GoldenProblem, signal: AbortSignal): Promise<TestResponseSample[]> => {
      const prompt =
        tests.mode === 'white-box'
          ? renderTestPrompt(problem, candidates.get(problem.questionId) ?? '', tests.testsPerResponse)
          : renderBlackBoxTestPrompt(problem, tests.testsPerResponse);
      let completion: ChatCompletion;
      try {
        completion = await client.complete(
          {
            messages: prompt.messages,
            n: tests.responses,
            temperature: tests.model.sampling.temperature,
            topP: tests.model.sampling.topP,
            maxTokens: tests.model.sampling.maxTokens,
            seed: requestSeed({ role: 'test', runSeed: config.seed, iteration: -1, questionId: problem.questionId }),
          },
          signal,
        );
      } catch (err) {
        if (!(err instanceof PromptTooLongError)) throw err;
        completion = failedCompletion(tests.responses);
      }
      return completion.choices.map((choice, responseIndex) => ({
        questionId: problem.questionId,
        responseIndex,
        promptVersion: prompt.version,
        response: choice.text,
        finishReason: choice.finishReason,
        completionTokens: choice.completionTokens,
      }));
    };
    return await runShardedStage<TestResponseSample>({
      store,
      prefix: evaluationKeys.testResponses(config.evalId),
      shardCount: shards.length,
      heartbeatMs: deps.heartbeatMs,
      fixed: { problems: problems.length },
      generate: async (index, signal) => (await Promise.all(shards[index]!.map((p) => limit(() => sample(p, signal))))).flat(),
      count: (samples) => ({ samples: samples.length, completionTokens: samples.reduce((sum, s) => sum + s.completionTokens, 0) }),
    });
  }
  return { sampleTestResponses };
}
