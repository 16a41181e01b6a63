import { constants } from 'node:fs';
import { access, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { DatasetError, loadProblems } from '../../activities/dataset/index.js';
import { DEFAULT_GOLDEN_MEMORY_MB, evaluateSolutions, UnknownProblemError, type Solution } from '../../activities/evaluation/index.js';
import { createSandbox } from '../../activities/sandbox/index.js';
import { parseCommandLine, positiveInt, readText, withSandboxErrors } from './exec.js';

const evalSolutions: Command = {
  summary:
    'run given solutions against a dataset\'s golden tests: ' +
    'eval-solutions --dataset FILE.parquet --solutions FILE.jsonl [--concurrency N] [--memory-mb N] [--details FILE.json]',
  async run(argv) {
    const { values } = parseCommandLine(() => parseArgs({
      args: argv,
      options: {
        dataset: { type: 'string' },
        solutions: { type: 'string' },
        concurrency: { type: 'string' },
        'memory-mb': { type: 'string' },
        details: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
    if (!values.dataset) throw new UsageError('--dataset FILE is required');
    const solutions = parseSolutions(await readText(values.solutions, '--solutions'), values.solutions!);
    const concurrency = positiveInt(values.concurrency, '--concurrency', availableParallelism());
    const memoryMb = positiveInt(values['memory-mb'], '--memory-mb', DEFAULT_GOLDEN_MEMORY_MB);

    // Checked before the evaluation, which can take hours, rather than after it.
    if (values.details) await requireWritable(values.details);
    let problems;
    try {
      ({ problems } = await loadProblems(values.dataset));
    } catch (err) {
      if (err instanceof DatasetError) throw new UsageError(err.message);
      throw err;
    }
    return withSandboxErrors(async () => {
      const sandbox = await createSandbox({ concurrency, memoryMb });
      let report;
      try {
        report = await evaluateSolutions(sandbox, problems, solutions, { memoryMb });
      } catch (err) {
        if (err instanceof UnknownProblemError) throw new UsageError(err.message);
        throw err;
      } finally {
        await sandbox.close();
      }
      // The reason a reference fails is what makes a pass rate below 100% explainable.
      for (const ref of report.failedReferences) {
        console.error(`reference of ${ref.questionId} does not pass its golden tests (${ref.outcome}, ${ref.durationMs} ms): ${ref.detail}`);
      }
      console.log(JSON.stringify({
        results: report.results.map(({ questionId, passed, outcome }) => ({ questionId, passed, outcome })),
        passRate: report.passRate,
      }));
      if (values.details) await writeFile(values.details, `${JSON.stringify(report, null, 2)}\n`);
    });
  },
};
export default evalSolutions;

/** The file can be written: its directory exists and takes files, and it is no directory or read-only file itself. */
async function requireWritable(path: string): Promise<void> {
  const existing = await stat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new UsageError(`--details ${path} is a directory`);
  try {
    await access(existing ? path : dirname(resolve(path)), constants.W_OK);
  } catch (err) {
    throw new UsageError(`--details ${path} cannot be written: ${(err as Error).message}`);
  }
}

/** JSONL: one `{"questionId": "...", "code": "..."}` per non-blank line. */
function parseSolutions(text: string, path: string): Solution[] {
  const solutions: Solution[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new UsageError(`${path} line ${i + 1} is not JSON: ${(err as Error).message}`);
    }
    const { questionId, code } = (value ?? {}) as Record<string, unknown>;
    if (typeof value !== 'object' || Array.isArray(value) || typeof questionId !== 'string' || typeof code !== 'string') {
      throw new UsageError(`${path} line ${i + 1} must be an object with string fields questionId and code`);
    }
    solutions.push({ questionId, code });
  }
  if (solutions.length === 0) throw new UsageError(`${path} holds no solutions`);
  return solutions;
}
