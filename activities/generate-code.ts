import type { GenerateCodeInput, StageResult } from '../workflows/contract.js';
import { keys } from '../workflows/contract.js';
import type { CodeRollout, Problem } from './records.js';
import type { BatchRecord } from './sample-batch.js';
import { MissingArtifactError } from './artifact-errors.js';
import { extractCode } from './parsing/index.js';
import { getJson } from './storage/index.js';
import type { ChatCompletion, GenerationDeps, ReplicaClient } from './llm/index.js';
import {
  PromptTooLongError,
  assertSameWeights,
  createLimiter,
  failedCompletion,
  renderCodePrompt,
  onReplicas,
  replicaClients,
  requestSeed,
  runShardedStage,
  sampleCounts,
  toSample,
} from './llm/index.js';

/** Problems per shard: with the paper's nCode = 8, 64 rollouts of up to 4,096 tokens, a few MB. */
const defaultProblemsPerShard = 8;

/**
 * Step 2 of docs/code-a1.md: nCode candidates per problem from the Code LLM, one request per
 * problem using the server's `n`. Output: `code/manifest.json` listing shards of CodeRollout,
 * grouped by problem in batch order, candidates in index order.
 */
export function createGenerateCodeActivity(deps: GenerationDeps) {
  async function generateCode(input: GenerateCodeInput): Promise<StageResult> {
    const store = deps.openStore(input.storageUri);
    const batch = await getJson<BatchRecord>(store, input.batchKey);
    if (!batch) throw new MissingArtifactError(`batch ${store.uri}/${input.batchKey} is missing`);
    const replicas = await replicaClients(deps, input.model, input.checkpoint, 'code');
    const limit = createLimiter(input.model.concurrency);
    const perShard = deps.problemsPerShard?.code ?? defaultProblemsPerShard;
    const shards = chunk(batch.problems, perShard);

    return runShardedStage<CodeRollout>({
      store,
      prefix: keys.roundStage(input, 'code'),
      shardCount: shards.length,
      problemsPerShard: perShard,
      heartbeatMs: deps.heartbeatMs,
      fixed: { problems: batch.problems.length, requests: batch.problems.length },
      generate: async (index, signal) =>
        (
          await Promise.all(
            shards[index]!.map((problem, i) =>
              limit(() => onReplicas(replicas, index * perShard + i, (replica) => sampleProblem(replica, input, problem, signal))),
            ),
          )
        ).flat(),
      count: (rollouts) => ({ ...sampleCounts(rollouts), noCode: rollouts.filter((r) => r.code === null).length }),
    });
  }

  async function sampleProblem(replica: ReplicaClient, input: GenerateCodeInput, problem: Problem, signal: AbortSignal): Promise<CodeRollout[]> {
    const { client, served } = replica;
    const prompt = renderCodePrompt(problem);
    const { sampling } = input.model;
    let completion: ChatCompletion;
    try {
      completion = await client.complete(
        {
          messages: prompt.messages,
          n: input.nCode,
          temperature: sampling.temperature,
          topP: sampling.topP,
          maxTokens: sampling.maxTokens,
          seed: requestSeed({ role: 'code', runSeed: input.seed, iteration: input.iteration, questionId: problem.questionId }),
        },
        signal,
      );
      assertSameWeights(served, completion.label, `${replica.baseUrl}, ${input.checkpoint}`);
    } catch (err) {
      if (!(err instanceof PromptTooLongError)) throw err;
      completion = failedCompletion(input.nCode);
    }
    return completion.choices.map((choice, candidateIndex) => ({
      ...toSample(prompt, completion, choice, input.checkpoint, { endpoint: replica.baseUrl, servedModel: client.model }),
      questionId: problem.questionId,
      candidateIndex,
      code: extractCode(choice.text, { entryPoint: problem.entryPoint }),
    }));
  }

  return { generateCode };
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}
