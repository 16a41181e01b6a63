import { heartbeat } from '@temporalio/activity';
import type { GenerateTestsInput, StageResult } from '../workflows/contract.js';
import { keys } from '../workflows/contract.js';
import type { CodeRollout, Manifest, Problem, TestRollout } from './records.js';
import type { BatchRecord } from './sample-batch.js';
import { InvalidArtifactError, MissingArtifactError } from './artifact-errors.js';
import { extractAsserts, nonprintableRatio } from './parsing/index.js';
import type { ObjectStore } from './storage/index.js';
import { getJson } from './storage/index.js';
import type { ChatCompletion, GenerationDeps, ReplicaClient } from './llm/index.js';
import {
  PromptTooLongError,
  assertSameWeights,
  createLimiter,
  onReplicas,
  replicaClients,
  failedCompletion,
  renderTestPrompt,
  requestSeed,
  runShardedStage,
  sampleCounts,
  toSample,
} from './llm/index.js';
import { chunk } from './generate-code.js';

/** Problems per shard: with the paper's nCode = nTest = 8, 128 rollouts of up to 4,096 tokens. */
const defaultProblemsPerShard = 2;

interface Candidate {
  questionId: string;
  candidateIndex: number;
  code: string;
}

/**
 * Step 3 of docs/code-a1.md: for every candidate that has code, nTest white-box test responses
 * from the Test LLM, one request per candidate using the server's `n`. A candidate without a
 * code block gets no tests (there is nothing to attack; it scores as invalid code) and is
 * counted in `candidatesWithoutCode`. Output: `tests/manifest.json` listing shards of
 * TestRollout, grouped by problem in batch order, then candidate, then response index.
 */
export function createGenerateTestsActivity(deps: GenerationDeps) {
  async function generateTests(input: GenerateTestsInput): Promise<StageResult> {
    const store = deps.openStore(input.storageUri);
    const batch = await getJson<BatchRecord>(store, input.batchKey);
    if (!batch) throw new MissingArtifactError(`batch ${store.uri}/${input.batchKey} is missing`);
    const { withCode, withoutCode } = await readCandidates(store, input.codeKey);
    const replicas = await replicaClients(deps, input.model, input.checkpoint, 'test');
    const limit = createLimiter(input.model.concurrency);
    const perShard = deps.problemsPerShard?.tests ?? defaultProblemsPerShard;
    const shards = chunk(batch.problems, perShard);
    const requests = [...withCode.values()].reduce((sum, list) => sum + list.length, 0);

    return runShardedStage<TestRollout>({
      store,
      prefix: keys.roundStage(input, 'tests'),
      shardCount: shards.length,
      problemsPerShard: perShard,
      heartbeatMs: deps.heartbeatMs,
      fixed: { problems: batch.problems.length, candidates: requests, candidatesWithoutCode: withoutCode, requests },
      generate: async (index, signal) => {
        const work = shards[index]!.flatMap((problem, i) =>
          (withCode.get(problem.questionId) ?? []).map((candidate) => {
            const start = index * perShard + i + candidate.candidateIndex;
            return limit(() => onReplicas(replicas, start, (replica) => sampleCandidate(replica, input, problem, candidate, signal)));
          }),
        );
        return (await Promise.all(work)).flat();
      },
      count: (rollouts) => ({
        ...sampleCounts(rollouts),
        asserts: rollouts.reduce((sum, r) => sum + r.asserts.length, 0),
        noAsserts: rollouts.filter((r) => r.asserts.length === 0).length,
      }),
    });
  }

  async function sampleCandidate(
    replica: ReplicaClient,
    input: GenerateTestsInput,
    problem: Problem,
    candidate: Candidate,
    signal: AbortSignal,
  ): Promise<TestRollout[]> {
    const { client, served } = replica;
    const prompt = renderTestPrompt(problem, candidate.code, input.testsPerResponse);
    const { sampling } = input.model;
    let completion: ChatCompletion;
    try {
      completion = await client.complete(
        {
          messages: prompt.messages,
          n: input.nTest,
          temperature: sampling.temperature,
          topP: sampling.topP,
          maxTokens: sampling.maxTokens,
          seed: requestSeed({
            role: 'test',
            runSeed: input.seed,
            iteration: input.iteration,
            questionId: problem.questionId,
            candidateIndex: candidate.candidateIndex,
          }),
        },
        signal,
      );
      assertSameWeights(served, completion.label, `${replica.baseUrl}, ${input.checkpoint}`);
    } catch (err) {
      if (!(err instanceof PromptTooLongError)) throw err;
      completion = failedCompletion(input.nTest);
    }
    return completion.choices.map((choice, responseIndex) => ({
      ...toSample(prompt, completion, choice, input.checkpoint, { endpoint: replica.baseUrl, servedModel: client.model }),
      questionId: problem.questionId,
      candidateIndex: candidate.candidateIndex,
      responseIndex,
      asserts: extractAsserts(choice.text),
      nonprintableRatio: nonprintableRatio(choice.text),
    }));
  }

  return { generateTests };
}

/** The code stage's candidates by problem, keeping only what test prompts need. */
async function readCandidates(store: ObjectStore, codeKey: string): Promise<{ withCode: Map<string, Candidate[]>; withoutCode: number }> {
  const manifest = await getJson<Manifest>(store, codeKey);
  if (!manifest) throw new MissingArtifactError(`code manifest ${store.uri}/${codeKey} is missing`);
  if (!Array.isArray(manifest.shards)) throw new InvalidArtifactError(`${store.uri}/${codeKey}: expected { shards: string[], count }`);
  const withCode = new Map<string, Candidate[]>();
  let withoutCode = 0;
  let seen = 0;
  for (const [i, key] of manifest.shards.entries()) {
    const rollouts = await getJson<CodeRollout[]>(store, key);
    if (!rollouts) throw new MissingArtifactError(`code shard ${store.uri}/${key} is missing`);
    if (!Array.isArray(rollouts)) throw new InvalidArtifactError(`${store.uri}/${key}: expected a JSON array of code rollouts`);
    for (const r of rollouts) {
      seen++;
      if (r.code === null) {
        withoutCode++;
        continue;
      }
      const list = withCode.get(r.questionId) ?? [];
      list.push({ questionId: r.questionId, candidateIndex: r.candidateIndex, code: r.code });
      withCode.set(r.questionId, list);
    }
    heartbeat({ codeShardsRead: i + 1 });
  }
  if (seen !== manifest.count) throw new InvalidArtifactError(`${store.uri}/${codeKey}: count is ${manifest.count}, but its shards hold ${seen} rollouts`);
  return { withCode, withoutCode };
}
