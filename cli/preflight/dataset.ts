import { DatasetError, loadProblems } from '../../activities/dataset/index.js';
import { openStore } from '../../activities/storage/index.js';
import type { WorkerEnv } from '../../config/worker-env.js';
import { definition } from './entry-point.js';
import type { Finding } from './finding.js';
import { describe, fail, pass } from './finding.js';
import type { PreflightPlan } from './plan.js';
import { storageFix } from './storage.js';

/** Rows of a bad dataset shown; the loader's message counts them all. */
const shownIssues = 3;

/**
 * The dataset loads end to end through the loader sampleBatch uses (every row validated), and the
 * first problem's reference compiles and defines its entry point: a column mapped wrongly shows there.
 */
export async function checkDataset(dataset: PreflightPlan['datasets'][number], env: WorkerEnv): Promise<Finding> {
  const subject = `${dataset.field} ${dataset.uri}`;
  const fix = `correct the rows named, or point ${dataset.field} at a .parquet or .jsonl file of problems (builtin, a local path, file:// or s3://bucket/key)`;
  let loaded;
  try {
    loaded = await loadProblems(dataset.uri, { openStore: (root) => openStore(root, env.s3), ...(dataset.sources ? { sources: dataset.sources } : {}) });
  } catch (err) {
    if (!(err instanceof DatasetError)) return fail(subject, `cannot be read: ${describe(err)}`, storageFix(err, dataset.uri));
    const [first, ...rows] = err.message.split('\n');
    const detail = [first, ...rows.slice(0, shownIssues).map((r) => r.trim()), ...(rows.length > shownIssues ? [`… ${rows.length - shownIssues} more`] : [])].join('; ');
    const missing = /not found$/.test(first ?? '');
    return fail(subject, detail, missing ? `upload the dataset to ${dataset.uri}, or correct ${dataset.field}` : fix);
  }
  const { problems, report } = loaded;
  const problem = problems[0]!;
  const named = `the first problem (${problem.questionId})`;
  const reference = await definition(problem.gtCode, problem.entryPoint);
  if (!reference.compiles) return fail(subject, `the reference of ${named} does not compile: ${reference.error}`, fix);
  if (!reference.defines) return fail(subject, `the reference of ${named} does not define its entry point ${problem.entryPoint}`, fix);
  if (dataset.goldenTests && !problem.test) return fail(subject, `${named} has no golden tests (a \`test\` column with check(candidate))`, `point ${dataset.field} at a dataset with golden tests`);
  const filtered = report.filteredBySource ? `, ${report.filteredBySource} left out by sources` : '';
  return pass(subject, `${report.kept} problems (${report.format}, ${report.rowsRead} rows${filtered}); the reference of ${named} defines ${problem.entryPoint}`);
}
