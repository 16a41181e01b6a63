import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { RunConfig } from '../../config/run-config.js';
import { freePort } from '../../infra/process.js';
import { codeA1Iteration } from '../../workflows/iteration.js';
import { taskQueues } from '../../workflows/contract.js';
import { connectClient, temporalAddress, testNamespace } from '../support/temporal.js';
import { tempDir, testConfig } from '../support/config.js';
import { startScript, until } from '../support/processes.js';
import type { Child } from '../support/processes.js';
import { reported } from '../support/telemetry-stages.js';
import { readJournal } from '../support/journal.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
}

/**
 * A worker process with metrics and tracing on runs one iteration (the recording stages,
 * reporting what real stages report); the test scrapes its Prometheus endpoint and receives its
 * spans as an OTLP/HTTP collector would.
 */
describe('a worker with CODE_A1_METRICS_ADDRESS and OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
  let client: Client;
  let close: () => Promise<void>;
  let worker: Child;
  let metricsAddress: string;
  let dir: string;
  const spans: OtlpSpan[] = [];
  const servers: Server[] = [];
  let config: RunConfig;

  before(async () => {
    const collector = await listen(async (req, body) => {
      if (req.url === '/v1/traces') spans.push(...spansOf(JSON.parse(body)));
      return '{}';
    });
    const model = await listen(async () => '{"ok":true}');
    servers.push(collector, model);
    metricsAddress = `127.0.0.1:${await freePort()}`;
    dir = await tempDir();
    worker = await startScript('test/support/telemetry-worker.ts', [dir, `${url(model)}/v1/models`], {
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: testNamespace,
      CODE_A1_METRICS_ADDRESS: metricsAddress,
      OTEL_EXPORTER_OTLP_ENDPOINT: url(collector),
      OTEL_SERVICE_NAME: 'code-a1-test-worker',
    });
    ({ client, close } = await connectClient());
    config = testConfig(`${dir}/store`);
    await client.workflow.execute(codeA1Iteration, {
      taskQueue: taskQueues.orchestration,
      workflowId: `${config.runId}/iter-0-${randomUUID()}`,
      args: [{ config, iteration: 0, previous: null }],
    });
  });

  after(async () => {
    worker?.process.kill('SIGTERM');
    await worker?.process;
    await close?.();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  it("serves the SDK's metrics and the project's stage metrics on one Prometheus endpoint", async () => {
    const samples = parsePrometheus(await (await fetch(`http://${metricsAddress}/metrics`)).text());
    const value = (name: string, labels: Record<string, string> = {}) => {
      const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      assert.equal(found.length, 1, `one ${name} ${JSON.stringify(labels)} among ${JSON.stringify(samples.filter((s) => s.name === name))}`);
      return found[0]!.value;
    };
    const run = { run_id: config.runId };
    // The SDK's own: activities and workflow tasks this worker completed.
    assert.ok(value('temporal_activity_execution_latency_count', { activity_type: 'executeShard' }) >= 1);
    assert.ok(samples.some((s) => s.name.startsWith('temporal_workflow_task') && s.value > 0));

    // Counters add up every attempt that returned: on a slow machine a stage can time out and run again.
    const calls = async (stage: string) => (await readJournal(`${dir}/journal`)).filter((c) => c.kind === 'call' && c.runId === config.runId && c.stage === stage).length;
    const shards = await calls('execute');
    const e = reported.execute;
    assert.ok(shards >= 1);
    assert.equal(value('code_a1_sandbox_executions', { ...run, check: 'candidate', outcome: 'valid' }), shards * e.validCandidates);
    assert.equal(value('code_a1_sandbox_executions', { ...run, check: 'candidate', outcome: 'invalid' }), shards * (e.candidates - e.validCandidates));
    assert.equal(value('code_a1_sandbox_executions', { ...run, check: 'assert', outcome: 'invalid' }), shards * (e.asserts - e.validAsserts));
    assert.equal(value('code_a1_sandbox_executions', { ...run, check: 'test', outcome: 'failed' }), shards * (e.testsRun - e.testsPassed));
    assert.ok(value('code_a1_sandbox_executions_per_second', run) > 0);
    const endpoint = { ...run, role: 'code', endpoint: config.models.code.baseUrl };
    assert.equal(value('code_a1_generation_tokens_per_second', endpoint), reported.generation.tokensPerSecond);
    const generated = reported.generation.tokensPerSecond * reported.generation.generationSeconds;
    assert.equal(value('code_a1_generation_tokens', endpoint), (await calls('generateCode')) * generated);
    assert.equal(value('code_a1_trainer_tokens_per_second', { ...run, role: 'test' }), reported.trainer.tokens_per_s);
    assert.equal(value('code_a1_mistake_book_tests', run), reported.book.bookTests);
    assert.equal(value('code_a1_mistake_book_problems', { ...run, taskQueue: taskQueues.orchestration, activityType: 'updateMistakeBook' }), reported.book.bookProblems);
  });

  it('exports the spans of the workflow, its activities and their HTTP calls, linked into one trace', async () => {
    const named = (name: string) => spans.find((s) => s.name === name);
    await until('the spans of generateCode and its HTTP call', async () => Boolean(named('RunActivity:generateCode') && spans.some((s) => s.name === 'GET')), 30_000);
    const activity = named('RunActivity:generateCode')!;
    const http = spans.find((s) => s.name === 'GET' && s.parentSpanId === activity.spanId);
    assert.ok(http, 'the HTTP call is a child of the activity span');
    const start = spans.find((s) => s.spanId === activity.parentSpanId);
    assert.equal(start?.name, 'StartActivity:generateCode');
    const workflow = spans.find((s) => s.spanId === start.parentSpanId);
    assert.equal(workflow?.name, 'RunWorkflow:codeA1Iteration');
    assert.ok([http, start, workflow].every((s) => s.traceId === activity.traceId));
  });
});

async function listen(respond: (req: IncomingMessage, body: string) => Promise<string>): Promise<Server> {
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    res.setHeader('content-type', 'application/json');
    res.end(await respond(req, body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function url(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** OTLP/JSON: resourceSpans[].scopeSpans[].spans[]. */
function spansOf(body: { resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[] }): OtlpSpan[] {
  return (body.resourceSpans ?? []).flatMap((r) => (r.scopeSpans ?? []).flatMap((s) => s.spans ?? []));
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format's sample lines: `name{label="value",...} number`. */
function parsePrometheus(text: string): Sample[] {
  return text.split('\n').flatMap((line) => {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m) return [];
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    return [{ name: m[1]!, labels, value: Number(m[3]) }];
  });
}
