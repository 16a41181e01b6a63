import type { ObjectStore } from '../../../activities/storage/index.js';
import { putJson } from '../../../activities/storage/index.js';
import type { CodeRollout, Problem, TestRollout } from '../../../activities/records.js';
import { keys } from '../../../workflows/contract.js';

/** Problems per generation shard of the synthetic stages, recorded in their manifests as generation does. */
const generationShard = 8;

/**
 * A synthetic iteration's generation output at the paper's shape: `problems` problems, nCode
 * candidate programs each (every other one wrong for inputs above 3, the kind of bug white-box
 * tests find), nTest test responses per candidate of T asserts each (two wrong claims per
 * response, so validation has something to reject). Written as the generation stages write it.
 */
export async function writeSyntheticIteration(
  store: ObjectStore,
  runId: string,
  shape: { problems: number; nCode: number; nTest: number; asserts: number; candidateSleepMs?: number },
): Promise<{ batchKey: string; codeKey: string; testsKey: string }> {
  const at = (name: string) => keys.stage(runId, 0, name);
  const problems: Problem[] = Array.from({ length: shape.problems }, (_, i) => ({
    questionId: `scale/${i}`,
    description: `Return x times ${(i % 7) + 2} plus ${i % 5}.`,
    entryPoint: 'f',
    gtCode: `def f(x):\n    return x * ${(i % 7) + 2} + ${i % 5}\n`,
    dataSource: 'synthetic',
  }));
  const sample = { messages: [], response: '', finishReason: 'stop', truncated: false, promptTokens: 0, completionTokens: 0, promptVersion: 'bench', checkpoint: 'bench' };
  const batchKey = at('batch.json');
  await putJson(store, batchKey, { problems, dataset: { kept: shape.problems } });

  const write = async <R>(name: string, recordsOf: (p: Problem, i: number) => R[]) => {
    const shards: string[] = [];
    let count = 0;
    for (let start = 0; start < problems.length; start += generationShard) {
      const key = `${at(name)}/shard-${String(shards.length).padStart(5, '0')}.json`;
      const records = problems.slice(start, start + generationShard).flatMap((p, j) => recordsOf(p, start + j));
      await putJson(store, key, records);
      shards.push(key);
      count += records.length;
    }
    const key = `${at(name)}/manifest.json`;
    await putJson(store, key, { shards, count, summary: { samples: count }, problemsPerShard: generationShard });
    return key;
  };
  const codeKey = await write<CodeRollout>('code', (p, i) =>
    Array.from({ length: shape.nCode }, (_, candidateIndex) => ({
      ...sample,
      questionId: p.questionId,
      candidateIndex,
      code:
        (shape.candidateSleepMs ? `import time\ntime.sleep(${shape.candidateSleepMs / 1000})\n` : '') +
        (candidateIndex % 2 === 0
          ? `def f(x):\n    return x * ${(i % 7) + 2} + ${i % 5}\n`
          : `def f(x):\n    if x > 3:\n        return x * ${(i % 7) + 2}\n    return x * ${(i % 7) + 2} + ${i % 5}\n`),
    })),
  );
  const testsKey = await write<TestRollout>('tests', (p, i) =>
    Array.from({ length: shape.nCode }, (_, candidateIndex) =>
      Array.from({ length: shape.nTest }, (_, responseIndex) => ({
        ...sample,
        questionId: p.questionId,
        candidateIndex,
        responseIndex,
        asserts: Array.from({ length: shape.asserts }, (_, a) => {
          const x = a + responseIndex;
          const right = x * ((i % 7) + 2) + (i % 5);
          return `assert f(${x}) == ${a % 4 === 3 ? right + 1 : right}`;
        }),
        nonprintableRatio: 0,
      })),
    ).flat(),
  );
  return { batchKey, codeKey, testsKey };
}
