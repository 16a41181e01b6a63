import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { codeA1Iteration } from '../../workflows/iteration.js';
import { keys, taskQueues } from '../../workflows/contract.js';
import { connectClient, withWorker } from '../support/temporal.js';
import { tempDir, testConfig } from '../support/config.js';
import { readJournal } from '../support/journal.js';
import { recordingStages } from '../support/recording-stages.js';
import type { Client } from '@temporalio/client';

describe('codeA1Iteration', () => {
  let client: Client;
  let close: () => Promise<void>;
  before(async () => ({ client, close } = await connectClient()));
  after(() => close());

  it('runs the stages in the order of the algorithm and records the iteration', async () => {
    const dir = await tempDir();
    const config = testConfig(`${dir}/store`);
    const journal = `${dir}/journal`;
    const record = await withWorker(recordingStages({ journal, gateDir: dir }), () =>
      client.workflow.execute(codeA1Iteration, {
        taskQueue: taskQueues.orchestration,
        workflowId: `${config.runId}/iter-0-${randomUUID()}`,
        args: [{ config, iteration: 0, previous: null }],
      }),
    );
    const calls = (await readJournal(journal)).filter((e) => e.kind === 'call').map((e) => e.stage);
    assert.deepEqual(calls.slice(0, 1), ['sampleBatch']);
    assert.deepEqual(new Set(calls.slice(1, 3)), new Set(['publishPolicy-code', 'publishPolicy-test']));
    assert.deepEqual(calls.slice(3), [
      'generateCode',
      'generateTests',
      'execute',
      'mergeExecution',
      'score',
      'updateMistakeBook',
      'updatePolicy-code',
      'updatePolicy-test',
    ]);
    assert.equal(record.mistakeBookKey, keys.mistakeBook(config.runId, 0));
    assert.deepEqual(record.checkpoints, {
      code: keys.checkpoint(config.runId, 'code', 0),
      test: keys.checkpoint(config.runId, 'test', 0),
    });
    assert.equal(record.metrics['score.codeRewardMean'], 0.5);
    assert.equal(record.metrics['train.code.loss'], 0.1);
  });

  it('carries only storage keys and small summaries through history, whatever the batch size', async () => {
    const sizes: number[] = [];
    // [problems, problems per execute shard]: the same shard count at 4 and 4,096 problems, then four shards.
    for (const [batchSize, problemsPerShard] of [
      [4, 4],
      [4096, 4096],
      [4096, 1024],
    ] as const) {
      const dir = await tempDir();
      const config = testConfig(`${dir}/store`, { algorithm: { batchSize, nCode: 8, nTest: 8 }, sandbox: { problemsPerShard } });
      const workflowId = `${config.runId}/iter-0-${randomUUID()}`;
      await withWorker(recordingStages({ journal: `${dir}/journal`, gateDir: dir }), () =>
        client.workflow.execute(codeA1Iteration, {
          taskQueue: taskQueues.orchestration,
          workflowId,
          args: [{ config, iteration: 0, previous: null }],
        }),
      );
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      const results = history.events!.filter((e) => e.activityTaskCompletedEventAttributes);
      for (const event of results) {
        const payload = event.activityTaskCompletedEventAttributes!.result!.payloads![0]!;
        const text = Buffer.from(payload.data!).toString();
        assert.ok(text.length < 2_000, `activity result of ${text.length} bytes in history`);
      }
      sizes.push(history.events!.length);
    }
    assert.equal(sizes[0], sizes[1], 'history events per iteration must not depend on the batch size, only on the shard count');
    // Each further execute shard costs the same few events (scheduled, started, completed).
    assert.ok(sizes[2]! > sizes[1]! && (sizes[2]! - sizes[1]!) % 3 === 0 && (sizes[2]! - sizes[1]!) / 3 <= 6, `events: ${sizes.join(', ')}`);
  });

  it('starts from the previous iteration: its checkpoints and its Mistake Book', async () => {
    const dir = await tempDir();
    const config = testConfig(`${dir}/store`);
    const previous = {
      runId: config.runId,
      iteration: 0,
      mistakeBookKey: keys.mistakeBook(config.runId, 0),
      checkpoints: { code: 'ckpt/code-0', test: 'ckpt/test-0' },
      metrics: {},
    };
    const stages = recordingStages({ journal: `${dir}/journal`, gateDir: dir });
    const seen: Record<string, unknown> = {};
    await withWorker(
      {
        ...stages,
        generateCode: async (i) => ((seen.code = i.checkpoint), stages.generateCode(i)),
        executeShard: async (i) => ((seen.book = i.mistakeBookKey), stages.executeShard(i)),
        updatePolicy: async (i) => ((seen[`ref-${i.role}`] = [i.baseCheckpoint, i.referenceCheckpoint]), stages.updatePolicy(i)),
      } satisfies typeof stages,
      () =>
        client.workflow.execute(codeA1Iteration, {
          taskQueue: taskQueues.orchestration,
          workflowId: `${config.runId}/iter-1-${randomUUID()}`,
          args: [{ config, iteration: 1, previous }],
        }),
    );
    assert.equal(seen.code, 'ckpt/code-0');
    assert.equal(seen.book, previous.mistakeBookKey);
    assert.deepEqual(seen['ref-code'], ['ckpt/code-0', 'init/code']);
    assert.deepEqual(seen['ref-test'], ['ckpt/test-0', 'init/test']);
  });
});

describe('codeA1Iteration with dynamic sampling', () => {
  let client: Client;
  let close: () => Promise<void>;
  before(async () => ({ client, close } = await connectClient()));
  after(() => close());

  /** Runs iteration 0 with the rounds in `noSignal` scoring no group with variance. */
  async function run(noSignal: number[], dynamicSampling = { minGroups: 1, maxExtraRounds: 2 }) {
    const dir = await tempDir();
    const config = testConfig(`${dir}/store`, { algorithm: { dynamicSampling } });
    for (const round of noSignal) await writeFile(`${dir}/no-signal.0.${round}`, '');
    const stages = recordingStages({ journal: `${dir}/journal`, gateDir: dir });
    const trainedOn: Record<string, [string, string]> = {};
    let book = '';
    const record = await withWorker(
      {
        ...stages,
        updateMistakeBook: async (i) => ((book = i.scoresKey), stages.updateMistakeBook(i)),
        updatePolicy: async (i) => ((trainedOn[i.role] = [i.rolloutsKey, i.scoresKey]), stages.updatePolicy(i)),
      } satisfies typeof stages,
      () =>
        client.workflow.execute(codeA1Iteration, {
          taskQueue: taskQueues.orchestration,
          workflowId: `${config.runId}/iter-0-${randomUUID()}`,
          args: [{ config, iteration: 0, previous: null }],
        }),
    );
    const calls = (await readJournal(`${dir}/journal`)).filter((e) => e.kind === 'call').map((e) => e.stage);
    const merged = (name: string) => keys.stage(config.runId, 0, `merged/${name}`);
    // The joined scores, where the stand-in mergeRounds writes them.
    const joined = keys.stage(config.runId, 0, 'mergeRounds.json');
    return { record, calls, trainedOn, book, merged, joined };
  }

  const roundStages = (round: number) => ['sampleBatch', 'generateCode', 'generateTests', 'execute', 'mergeExecution', 'score'].map((s) => `${s}@${round}`);

  it('samples no extra round when the batch has groups with variance for both roles', async () => {
    const { calls, trainedOn, book, record } = await run([]);
    assert.deepEqual(calls.filter((c) => c.includes('@') || c === 'mergeRounds'), []);
    assert.equal(book, keys.stage(record.runId, 0, 'score.json'));
    assert.deepEqual(trainedOn.code, [keys.stage(record.runId, 0, 'generateCode.json'), keys.stage(record.runId, 0, 'score.json')]);
    assert.equal(record.metrics['score.rounds'], 1);
  });

  it('draws another batch while a role has no signal, then trains both roles and the Mistake Book on the joined rounds', async () => {
    const { calls, trainedOn, book, merged, joined, record } = await run([0]);
    // One entry per stage (execute runs one activity per shard of problems).
    const extra = calls.slice(calls.indexOf('score') + 1, calls.indexOf('updateMistakeBook')).filter((c, i, all) => c !== all[i - 1]);
    assert.deepEqual(extra, [...roundStages(1), 'mergeRounds']);
    assert.equal(book, joined);
    assert.deepEqual(trainedOn.code, [merged('code'), joined]);
    assert.deepEqual(trainedOn.test, [merged('tests'), joined]);
    // Each round's outputs have keys of their own: nothing of round 0 was overwritten.
    assert.equal(calls.filter((c) => c === 'score').length, 1);
    assert.equal(record.metrics['score.rounds'], 2);
  });

  it('stops after maxExtraRounds even when no round has signal, and trains on what it has', async () => {
    const { calls, trainedOn, merged, joined, record } = await run([0, 1, 2, 3]);
    assert.deepEqual(calls.filter((c) => c.startsWith('sampleBatch')), ['sampleBatch', 'sampleBatch@1', 'sampleBatch@2']);
    assert.deepEqual(trainedOn.test, [merged('tests'), joined]);
    assert.equal(record.metrics['score.rounds'], 3);
  });

  it('is off with maxExtraRounds 0', async () => {
    const { calls } = await run([0], { minGroups: 1, maxExtraRounds: 0 });
    assert.deepEqual(calls.filter((c) => c.includes('@') || c === 'mergeRounds'), []);
  });
});

describe('codeA1Iteration with evaluation every K iterations', () => {
  let client: Client;
  let close: () => Promise<void>;
  before(async () => ({ client, close } = await connectClient()));
  after(() => close());

  async function run(every: number, iteration: number) {
    const dir = await tempDir();
    const config = testConfig(`${dir}/store`, { evaluation: { every, samples: 4, ks: [1] } });
    const calls: string[] = [];
    const stages = recordingStages({ journal: `${dir}/journal`, gateDir: dir });
    const benchmarks = [{ dataSource: 'builtin', problems: 2, samples: 4, avgAtN: 0.25, passAtK: { '1': 0.25 } }];
    const record = await withWorker(
      {
        ...stages,
        publishPolicy: async (i: Parameters<typeof stages.publishPolicy>[0]) => (calls.push(`publish ${i.role} ${i.checkpoint}`), stages.publishPolicy(i)),
        sampleSolutions: async (i: { config: { model: { checkpoint: string } } }) => (calls.push(`sample ${i.config.model.checkpoint}`), { key: 'samples', summary: {} }),
        runGoldenTests: async () => ({ evalId: 'e', reportKey: 'evals/e/report.json', samplesKey: 'samples', benchmarks, failedReferences: [] }),
      },
      () =>
        client.workflow.execute(codeA1Iteration, {
          taskQueue: taskQueues.orchestration,
          workflowId: `${config.runId}/iter-${iteration}-${randomUUID()}`,
          args: [{ config, iteration, previous: null }],
        }),
    );
    return { record, calls, trained: keys.checkpoint(config.runId, 'code', iteration) };
  }

  it('serves the newly trained Code LLM, evaluates it and records pass@k with the iteration', async () => {
    const { record, calls, trained } = await run(2, 1);
    assert.deepEqual(calls.slice(-2), [`publish code ${trained}`, `sample ${trained}`]);
    assert.equal(record.metrics['evaluate.builtin.passAt1'], 0.25);
    assert.equal(record.metrics['evaluate.builtin.avgAtN'], 0.25);
  });

  it('does not evaluate between the K-th iterations', async () => {
    const { record, calls } = await run(2, 0);
    assert.ok(!calls.some((c) => c.startsWith('sample')));
    assert.ok(!Object.keys(record.metrics).some((k) => k.startsWith('evaluate.')));
  });
});
