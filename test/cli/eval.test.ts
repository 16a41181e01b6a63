import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createSampleSolutionsActivity } from '../../activities/evaluate-sample-solutions.js';
import { createRunGoldenTestsActivity } from '../../activities/evaluate-golden-tests.js';
import type { EvaluationReport } from '../../workflows/evaluate.js';
import { createSandbox, type Sandbox } from '../../activities/sandbox/index.js';
import { openStore } from '../../activities/storage/index.js';
import { smallModelName, startModelServer, type ModelServer } from '../../infra/model-server.js';
import { tempDir } from '../support/config.js';
import { temporalAddress, testNamespace, withWorker } from '../support/temporal.js';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const dataset = fileURLToPath(new URL('../../../shared/datasets/humaneval-mbpp-plus.parquet', import.meta.url));

/** Runs `code-a1 eval --config <file>` against the test namespace; never throws. */
async function evaluate(config: unknown): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(await tempDir(), 'eval.json');
  await writeFile(file, JSON.stringify(config));
  const env = { ...process.env, TEMPORAL_ADDRESS: temporalAddress, TEMPORAL_NAMESPACE: testNamespace };
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [bin, 'eval', '--config', file], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('code-a1 eval', () => {
  let server: ModelServer;
  let sandbox: Sandbox;
  before(async () => {
    server = await startModelServer({ model: smallModelName });
    sandbox = await createSandbox({ concurrency: 2 });
  });
  after(async () => {
    await sandbox?.close();
    await server?.stop();
  });

  it('runs the evaluation workflow and prints its report, with a score table on stderr', async () => {
    const evalId = `cli-${randomUUID()}`;
    const activities = {
      ...createSampleSolutionsActivity({ openStore: (uri) => openStore(uri) }),
      ...createRunGoldenTestsActivity({ openStore: (uri) => openStore(uri), sandbox }),
    };
    const storageUri = pathToFileURL(`${await tempDir()}/store`).href;
    const { code, stdout, stderr } = await withWorker(activities, () =>
      evaluate({
        evalId,
        storageUri,
        dataset: { uri: dataset, sources: ['mbppplus'], maxProblems: 1 },
        model: { baseUrl: server.baseUrl, model: server.model, sampling: { temperature: 0.7, topP: 0.95, maxTokens: 64 } },
        samples: 2,
      }),
    );
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout) as EvaluationReport;
    assert.equal(report.evalId, evalId);
    assert.deepEqual(report.benchmarks.map((b) => [b.dataSource, b.problems, b.samples, Object.keys(b.passAtK)]), [['mbppplus', 1, 2, ['1']]]);
    assert.match(stderr, /benchmark\s+problems\s+n\s+avg@n\s+pass@1\n\s*mbppplus\s+1\s+2\s/);
  });

  it('exits 2 naming the invalid fields of a config, before contacting Temporal', async () => {
    const { code, stderr } = await evaluate({ evalId: 'x', storageUri: 'not-a-uri', dataset: { uri: dataset }, model: {} });
    assert.equal(code, 2);
    assert.match(stderr, /storageUri/);
    assert.match(stderr, /model\.baseUrl/);
  });
});
