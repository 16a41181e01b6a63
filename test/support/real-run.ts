import { createWriteStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { S3Connection } from '../../activities/storage/index.js';
import { keys } from '../../workflows/contract.js';
import type { Script } from './scripted-model-server.js';
import type { Child } from './processes.js';
import { startProcess } from './processes.js';
import { temporalAddress, testNamespace } from './temporal.js';

/**
 * What the tests that run the project's own workers (`code-a1 worker ...`) on S3 share: a one-problem
 * dataset, the script the stand-in model servers answer from, and the worker processes.
 */

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));

export const clampProblem = {
  problem: 'def clamp(x: int, lo: int, hi: int) -> int:\n    """\n    Return x limited to the closed range [lo, hi]; lo <= hi.\n    """\n',
  GT_code: 'def clamp(x: int, lo: int, hi: int) -> int:\n    return max(lo, min(x, hi))\n',
  test: 'def check(candidate):\n    assert candidate(5, 0, 10) == 5\n    assert candidate(-5, 0, 10) == 0\n    assert candidate(50, 0, 10) == 10\n',
  description: 'Return x limited to the closed range [lo, hi]; lo <= hi.',
  data_source: 'whole-run',
  extra_info: { function_declaration: 'def clamp(x: int, lo: int, hi: int) -> int:', function_name: 'clamp', imports: '', question_id: 'whole-run/clamp' },
};

const fence = (body: string) => '```python\n' + body + '\n```';
const candidates = [
  fence('def clamp(x: int, lo: int, hi: int) -> int:\n    return max(lo, min(x, hi))'),
  fence('def clamp(x: int, lo: int, hi: int) -> int:\n    return x if x < hi else hi'),
];
// Each response exposes the buggy candidate or is invalid, so that in every iteration, whatever
// pair of responses a seed picks, both the code group and the test group have reward variance.
const testResponses = [
  fence('assert clamp(-5, 0, 10) == 0\nassert clamp(5, 0, 10) == 5'),
  fence('assert clamp(5, 0, 10) == 6'),
  fence('assert clamp(-1, 0, 10) == 0'),
];
/**
 * One right and one buggy candidate of `clampProblem`, and test responses that are valid and
 * expose the bug, valid and miss it, or invalid. Choice i of a request with seed s is a function
 * of both, as seeded sampling is.
 */
export const clampScript: Script = (messages, seed, index) => {
  const table = messages[0]?.content.includes('test generation') ? testResponses : candidates;
  return table[(seed + index) % table.length]!;
};

/**
 * A problem whose groups never carry signal under `flatScript`: every candidate is the same right
 * answer and every test response the same valid assert, so all rewards are equal.
 */
export const flatProblem = {
  problem: 'def twice(x: int) -> int:\n    """\n    Return 2 * x.\n    """\n',
  GT_code: 'def twice(x: int) -> int:\n    return 2 * x\n',
  test: 'def check(candidate):\n    assert candidate(3) == 6\n    assert candidate(-1) == -2\n',
  description: 'Return 2 * x.',
  data_source: 'whole-run',
  extra_info: { function_declaration: 'def twice(x: int) -> int:', function_name: 'twice', imports: '', question_id: 'whole-run/twice' },
};

/** `clampScript` for clampProblem; for flatProblem always the same candidate and the same test. */
export const flatScript: Script = (messages, seed, index) => {
  if (!messages.some((m) => m.content.includes('def twice'))) return clampScript(messages, seed, index);
  return messages[0]?.content.includes('test generation') ? fence('assert twice(3) == 6') : fence('def twice(x: int) -> int:\n    return 2 * x');
};

export type WorkerKind = 'orchestration' | 'llm' | 'sandbox' | 'gpu';

/**
 * Starts `code-a1 worker <queues>` as a process of its own, as a user runs it, against the test
 * namespace and the S3 endpoint `s3` (e.g. a PUT counter in front of the server). Its output is
 * appended to `log`, for when a run does not complete.
 */
export async function startWorkers(
  queues: WorkerKind[] | ['all'],
  s3: S3Connection,
  workDir: string,
  log: string,
  temporal = temporalAddress,
  env: Record<string, string> = {},
): Promise<Child> {
  const child = await startProcess(process.execPath, [bin, 'worker', ...queues], 'workers running', {
    TEMPORAL_ADDRESS: temporal,
    TEMPORAL_NAMESPACE: testNamespace,
    CODE_A1_S3_ENDPOINT: s3.endpoint!,
    AWS_ACCESS_KEY_ID: s3.accessKeyId!,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey!,
    AWS_REGION: s3.region,
    // Kept across a worker's kill: a GPU retry on the same machine reuses the finished trainer output.
    CODE_A1_WORK_DIR: workDir,
    ...env,
  });
  child.process.all?.pipe(createWriteStream(log, { flags: 'a' }));
  return child;
}

/**
 * The output keys each stage of iteration `iteration` writes, as `workflows/contract.ts` `keys`
 * derives them (relative to the run's storage root): the objects whose presence says the stage is
 * done. Shards and checkpoint files are named by these and are checked as "no key twice".
 */
export function stageOutputKeys(runId: string, iteration: number): Record<string, string> {
  const stage = (name: string) => keys.stage(runId, iteration, name);
  return {
    sampleBatch: stage('batch.json'),
    generateCode: stage('code/manifest.json'),
    generateTests: stage('tests/manifest.json'),
    execute: stage('execution/shard-00000.json'),
    mergeExecution: stage('execution/manifest.json'),
    'mergeExecution summary': stage('execution/summary.json'),
    score: stage('scores.json'),
    updateMistakeBook: keys.mistakeBook(runId, iteration),
    'updatePolicy-code': `${keys.checkpoint(runId, 'code', iteration)}/manifest.json`,
    'updatePolicy-test': `${keys.checkpoint(runId, 'test', iteration)}/manifest.json`,
    recordIteration: keys.iterationRecord(runId, iteration),
  };
}
