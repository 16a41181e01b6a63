import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Command } from '../../command.js';
import { parseCommandLine, positiveInt } from '../exec.js';
import { parseRunConfig } from '../../../config/run-config.js';
import { createMergeExecutionActivity } from '../../../activities/execute.js';
import { createRunStateActivities } from '../../../activities/run-state.js';
import { openStore } from '../../../activities/storage/index.js';
import { workflowsPath } from '../../../workers/connect.js';
import { keys, taskQueues } from '../../../workflows/contract.js';
import type { IterationRef, StageResult } from '../../../workflows/contract.js';
import { codeA1Iteration } from '../../../workflows/iteration.js';
import { withPrivateTemporal } from './private-temporal.js';
import { binaryBytes } from './orchestration-runs.js';
import { writeSyntheticIteration } from './scale-data.js';
import { defaultMistakeBookBench, measureMistakeBook } from './mistake-book.js';

const namespace = 'code-a1-scale';
const cli = fileURLToPath(new URL('../../../bin/code-a1.js', import.meta.url));

/**
 * The execute stage fanned out over K sandbox worker processes, inside the real iteration
 * workflow, at the paper's shape and at 10x its batch. Generation, scoring and training are
 * stand-ins that return the synthetic stages' keys (scale-data.ts); every executeShard runs the
 * real sandbox in one of the K `code-a1 worker sandbox` processes. Reports wall time of the stage,
 * candidates and asserts per second, the shards each worker took, and the iteration's history.
 */
const bench: Command = {
  summary: 'bench scale [--workers 2] [--problems 256,2560] [--problems-per-shard 16]: the execute stage fanned out over K sandbox worker processes',
  async run(argv) {
    const { values } = parseCommandLine(() =>
      parseArgs({ args: argv, options: { workers: { type: 'string' }, problems: { type: 'string' }, 'problems-per-shard': { type: 'string' } }, strict: true, allowPositionals: false }),
    );
    const workers = positiveInt(values.workers, '--workers', 2);
    const sizes = (values.problems ?? '256,2560').split(',').map((s) => positiveInt(s, '--problems', 0));
    const problemsPerShard = positiveInt(values['problems-per-shard'], '--problems-per-shard', 16);

    Runtime.install({ logger: new DefaultLogger('ERROR'), shutdownSignals: [] });
    return withPrivateTemporal(namespace, async (address, dir) => {
      const sandboxes = await Promise.all(Array.from({ length: workers }, () => startSandboxWorker(address, namespace)));
      const connection = await Connection.connect({ address });
      const client = new Client({ connection, namespace });
      try {
        const results = [];
        for (const problems of sizes) {
          const figures = await runSyntheticIteration(client, address, namespace, `${dir}/store-${problems}`, { problems, problemsPerShard });
          // The Mistake Book update of an iteration of this batch, on a 10,000-problem book at the cap of 64 tests.
          const book = await measureMistakeBook({
            ...defaultMistakeBookBench,
            touched: Math.min(problems, defaultMistakeBookBench.problems),
            shardCounts: [defaultMistakeBookBench.shardCounts[0]!],
            rounds: 1,
          });
          results.push({
            ...figures,
            mistakeBook: { bookProblems: book.problems, touched: book.touched, singleObjectWriteMs: book.singleObject.writeMs, shardedUpdateMs: book.sharded[0]!.updateMs, ratio: book.ratio },
          });
        }
        console.log(JSON.stringify({ benchmark: 'scale', workers, problemsPerShard, results }));
        return results.every((r) => r.workersThatTookShards === workers) ? 0 : 1;
      } finally {
        await connection.close();
        for (const w of sandboxes) w.kill('SIGTERM');
        await Promise.all(sandboxes.map((w) => (w.exitCode === null ? once(w, 'exit') : undefined)));
      }
    });
  },
};
export default bench;

/** A `code-a1 worker sandbox` process on `address`; resolves once it polls. */
export async function startSandboxWorker(address: string, namespace: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'worker', 'sandbox'], {
    env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('workers running')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`sandbox worker exited with ${code}: ${out}`)));
  });
  child.stdout!.resume();
  return child;
}

/**
 * One iteration of the real workflow on a synthetic batch whose execute stage runs on whatever
 * sandbox workers poll `namespace`; the other stages are stand-ins. `during` runs beside it (a
 * test kills a worker there). Returns the execute stage's figures from the history.
 */
export async function runSyntheticIteration(
  client: Client,
  address: string,
  namespace: string,
  storeDir: string,
  o: { problems: number; problemsPerShard: number; nCode?: number; nTest?: number; asserts?: number; candidateSleepMs?: number; heartbeatSeconds?: number },
  during?: (workflowId: string) => Promise<void>,
) {
  const shape = { problems: o.problems, nCode: o.nCode ?? 8, nTest: o.nTest ?? 8, asserts: o.asserts ?? 8, candidateSleepMs: o.candidateSleepMs ?? 0 };
  const config = parseRunConfig({
    runId: `scale-${o.problems}-${Date.now().toString(36)}`,
    storageUri: `file://${storeDir}`,
    models: {
      code: { baseUrl: 'http://127.0.0.1:1/v1', model: 'code', checkpoint: 'bench/code' },
      test: { baseUrl: 'http://127.0.0.1:1/v1', model: 'test', checkpoint: 'bench/test' },
    },
    algorithm: { batchSize: o.problems, nCode: shape.nCode, nTest: shape.nTest, testsPerResponse: shape.asserts },
    sandbox: { problemsPerShard: o.problemsPerShard },
    timeouts: { heartbeatSeconds: o.heartbeatSeconds ?? 120 },
    iterations: 1,
  });
  const store = openStore(config.storageUri);
  const written = await writeSyntheticIteration(store, config.runId, shape);

  const stage = async (ref: IterationRef, key: string, summary: Record<string, number> = {}): Promise<StageResult> => ({ key, summary });
  const deps = { openStore: (uri: string) => openStore(uri) };
  const activities = {
    ...createRunStateActivities(deps),
    ...createMergeExecutionActivity(deps),
    sampleBatch: (i: IterationRef) => stage(i, written.batchKey, { problems: o.problems }),
    generateCode: (i: IterationRef) => stage(i, written.codeKey),
    generateTests: (i: IterationRef) => stage(i, written.testsKey),
    publishPolicy: async () => undefined,
    score: (i: IterationRef) => stage(i, keys.stage(i.runId, i.iteration, 'scores.json')),
    updateMistakeBook: (i: IterationRef) => stage(i, keys.mistakeBook(i.runId, i.iteration)),
    updatePolicy: async (i: IterationRef & { role: 'code' | 'test' }) => ({ role: i.role, checkpoint: `bench/${i.role}`, metrics: {} }),
  };
  const connection = await NativeConnection.connect({ address });
  const inProcess = await Promise.all(
    [taskQueues.orchestration, taskQueues.llm, taskQueues.gpu].map((taskQueue) =>
      Worker.create({ connection, namespace, taskQueue, activities, ...(taskQueue === taskQueues.orchestration ? { workflowsPath } : {}) }),
    ),
  );
  const running = Promise.all(inProcess.map((w) => w.run()));
  const workflowId = `${config.runId}/iter-0`;
  try {
    const handle = await client.workflow.start(codeA1Iteration, { taskQueue: taskQueues.orchestration, workflowId, args: [{ config, iteration: 0, previous: null }] });
    await Promise.all([handle.result(), during?.(workflowId)]);
  } finally {
    for (const w of inProcess) w.shutdown();
    await running;
    await connection.close();
  }
  return { problems: o.problems, workflowId, storageUri: config.storageUri, ...(await executeFigures(client, workflowId)) };
}

/** The execute stage as the iteration's history records it. */
async function executeFigures(client: Client, workflowId: string) {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const byWorker = new Map<string, number>();
  let first = Infinity;
  let last = 0;
  let summary: Record<string, number> = {};
  const ms = (t: unknown) => {
    const ts = t as { seconds?: { toNumber(): number } | number; nanos?: number };
    const seconds = typeof ts.seconds === 'number' ? ts.seconds : (ts.seconds?.toNumber() ?? 0);
    return seconds * 1000 + (ts.nanos ?? 0) / 1e6;
  };
  for (const e of events) {
    const id = String(e.eventId);
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      scheduled.set(id, { type: s.activityType?.name ?? '', at: ms(e.eventTime) });
      if (s.activityType?.name === 'executeShard') first = Math.min(first, ms(e.eventTime));
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started && scheduled.get(String(started.scheduledEventId))?.type === 'executeShard') {
      byWorker.set(started.identity ?? '?', (byWorker.get(started.identity ?? '?') ?? 0) + 1);
    }
    const done = e.activityTaskCompletedEventAttributes;
    if (done && scheduled.get(String(done.scheduledEventId))?.type === 'mergeExecution') {
      last = ms(e.eventTime);
      const payload = done.result?.payloads?.[0]?.data;
      if (payload) summary = (JSON.parse(Buffer.from(payload).toString()) as StageResult).summary;
    }
  }
  const seconds = (last - first) / 1000;
  return {
    executeSeconds: round(seconds, 1),
    candidatesPerSecond: round((summary.candidates ?? 0) / seconds, 1),
    assertsPerSecond: round((summary.asserts ?? 0) / seconds, 1),
    candidates: summary.candidates,
    asserts: summary.asserts,
    validAssertRatio: summary.validAssertRatio,
    shards: [...byWorker.values()].reduce((a, b) => a + b, 0),
    shardsPerWorker: [...byWorker.values()].sort((a, b) => b - a),
    workersThatTookShards: byWorker.size,
    historyEvents: events.length,
    historyPayloadBytes: binaryBytes(history),
  };
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
