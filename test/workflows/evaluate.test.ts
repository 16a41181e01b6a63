import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { codeA1Evaluate, evaluationKeys, evaluationWorkflowId } from '../../workflows/evaluate.js';
import { taskQueues } from '../../workflows/contract.js';
import type { EvaluationConfigInput } from '../../activities/evaluation/config.js';
import { createSampleSolutionsActivity } from '../../activities/evaluate-sample-solutions.js';
import { createRunGoldenTestsActivity, type StoredEvaluationReport } from '../../activities/evaluate-golden-tests.js';
import { createSampleTestResponsesActivity } from '../../activities/evaluate-sample-tests.js';
import { createRunMutationTestsActivity } from '../../activities/evaluate-mutation-tests.js';
import type { MutantSet } from '../../activities/evaluation/index.js';
import { createSandbox, type Sandbox } from '../../activities/sandbox/index.js';
import { getJson, openStore } from '../../activities/storage/index.js';
import { smallModelName, startModelServer, type ModelServer } from '../../infra/model-server.js';
import { connectClient, withWorker } from '../support/temporal.js';
import { tempDir } from '../support/config.js';

const dataset = fileURLToPath(new URL('../../../shared/datasets/humaneval-mbpp-plus.parquet', import.meta.url));

describe('codeA1Evaluate against the embedded model server', () => {
  let client: Client;
  let close: () => Promise<void>;
  let server: ModelServer;
  let sandbox: Sandbox;
  before(async () => {
    ({ client, close } = await connectClient());
    server = await startModelServer({ model: smallModelName });
    sandbox = await createSandbox({ concurrency: 2 });
  });
  after(async () => {
    await sandbox?.close();
    await server?.stop();
    await close?.();
  });

  const activities = () => ({
    ...createSampleSolutionsActivity({ openStore: (uri) => openStore(uri) }),
    ...createRunGoldenTestsActivity({ openStore: (uri) => openStore(uri), sandbox }),
    ...createSampleTestResponsesActivity({ openStore: (uri) => openStore(uri) }),
    ...createRunMutationTestsActivity({ openStore: (uri) => openStore(uri), sandbox }),
  });

  async function evaluationConfig(): Promise<EvaluationConfigInput> {
    return {
      evalId: `eval-${randomUUID()}`,
      storageUri: pathToFileURL(`${await tempDir()}/store`).href,
      // One problem (HumanEval/0) keeps the test to seconds of CPU generation.
      dataset: { uri: dataset, maxProblems: 1, sources: ['humanevalplus'] },
      model: { baseUrl: server.baseUrl, model: server.model, sampling: { temperature: 0.7, topP: 0.95, maxTokens: 96 }, concurrency: 2 },
      samples: 4,
      ks: [1, 2, 4, 8],
    };
  }

  it('samples n solutions per problem, runs them against the golden tests and reports avg@n and pass@k', async () => {
    const config = await evaluationConfig();
    const start = () =>
      client.workflow.execute(codeA1Evaluate, {
        taskQueue: taskQueues.orchestration,
        workflowId: `${evaluationWorkflowId(config.evalId)}-${randomUUID()}`,
        args: [{ config }],
      });
    const report = await withWorker(activities(), start);

    assert.equal(report.evalId, config.evalId);
    assert.equal(report.reportKey, evaluationKeys.report(config.evalId));
    assert.deepEqual(report.failedReferences, []);
    assert.equal(report.benchmarks.length, 1);
    const [bench] = report.benchmarks;
    assert.equal(bench!.dataSource, 'humanevalplus');
    assert.equal(bench!.problems, 1);
    assert.equal(bench!.samples, 4);
    // k = 8 exceeds n = 4 and is left out; pass@1 is avg@n by definition.
    assert.deepEqual(Object.keys(bench!.passAtK), ['1', '2', '4']);
    assert.ok(Math.abs(bench!.passAtK['1']! - bench!.avgAtN) < 1e-12);
    for (const value of Object.values(bench!.passAtK)) assert.ok(value >= 0 && value <= 1);

    const store = openStore(config.storageUri);
    const stored = await getJson<StoredEvaluationReport>(store, report.reportKey);
    assert.deepEqual(stored!.problems, [
      { questionId: 'HumanEval/0', dataSource: 'humanevalplus', samples: 4, passed: Math.round(bench!.avgAtN * 4) },
    ]);
    const shard = await getJson<{ results: { outcome: string }[] }>(store, `${evaluationKeys.golden(config.evalId)}/shard-00000.json`);
    assert.equal(shard!.results.length, 4);
    for (const { outcome } of shard!.results) assert.ok(['pass', 'fail', 'error', 'timeout', 'no_code'].includes(outcome), outcome);

    // Started again, the evaluation finds its stored outputs and returns the same report.
    assert.deepEqual(await withWorker(activities(), start), report);
  });

  it('with a tests section, also scores the Test LLM: validity pass@k, mut@k against stored mutants, and Mul', async () => {
    const base = await evaluationConfig();
    const config = {
      ...base,
      samples: 1,
      tests: {
        model: { ...base.model, sampling: { temperature: 0.7, topP: 0.95, maxTokens: 96 } },
        // White-box reads the Code LLM's samples for its candidate: the longer path of the two.
        mode: 'white-box' as const,
        responses: 2,
        testsPerResponse: 4,
        mutantLimit: 8,
      },
    };
    const report = await withWorker(activities(), () =>
      client.workflow.execute(codeA1Evaluate, {
        taskQueue: taskQueues.orchestration,
        workflowId: `${evaluationWorkflowId(config.evalId)}-${randomUUID()}`,
        args: [{ config }],
      }),
    );
    const generation = report.testGeneration!;
    assert.equal(generation.reportKey, evaluationKeys.testReport(config.evalId));
    assert.equal(generation.responsesPerProblem, 2);
    assert.equal(generation.overall.problems, 1);
    assert.ok([0, 100].includes(generation.overall.passAtK));
    assert.ok(generation.overall.mutAtK >= 0 && generation.overall.mutAtK <= 100);
    assert.ok(Math.abs(generation.overall.mul - (generation.overall.passAtK * generation.overall.mutAtK) / 100) < 1e-9);
    assert.deepEqual(generation.benchmarks.map((b) => b.dataSource), ['humanevalplus']);
    const [response] = (await getJson<{ promptVersion: string }[]>(openStore(config.storageUri), `${evaluationKeys.testResponses(config.evalId)}/shard-00000.json`))!;
    assert.equal(response!.promptVersion, 'test-whitebox-v1');

    // HumanEval/0's mutants are stored, and every one kept fails the golden tests.
    const [set] = (await getJson<MutantSet[]>(openStore(config.storageUri), `${evaluationKeys.mutants(config.evalId)}/shard-00000.json`))!;
    assert.equal(set!.questionId, 'HumanEval/0');
    assert.ok(set!.mutants.length > 0 && set!.mutants.length + set!.equivalent === set!.generated);
  });

  it('fails at once, naming the field, on an invalid config', async () => {
    const config = { ...(await evaluationConfig()), samples: 0 };
    await assert.rejects(
      withWorker(activities(), () =>
        client.workflow.execute(codeA1Evaluate, {
          taskQueue: taskQueues.orchestration,
          workflowId: `${evaluationWorkflowId(config.evalId)}-${randomUUID()}`,
          args: [{ config }],
        }),
      ),
      (err: unknown) => err instanceof WorkflowFailedError && /samples/.test(String(err.cause?.message)),
    );
  });
});
