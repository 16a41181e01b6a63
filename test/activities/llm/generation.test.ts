import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { createGenerateCodeActivity } from '../../../activities/generate-code.js';
import { createGenerateTestsActivity } from '../../../activities/generate-tests.js';
import { withErrorClassification } from '../../../activities/errors.js';
import { renderCodePrompt, renderTestPrompt } from '../../../activities/llm/index.js';
import type { ShardProgress } from '../../../activities/llm/index.js';
import type { CodeRollout, Sample, TestRollout } from '../../../activities/records.js';
import { keys } from '../../../workflows/contract.js';
import type { ModelServer } from '../../../infra/model-server.js';
import { smallModelName, startModelServer } from '../../../infra/model-server.js';
import type { FaultProxy } from '../../support/fault-proxy.js';
import { startFaultProxy } from '../../support/fault-proxy.js';
import type { Run } from './fixtures.js';
import { activityEnv, codeInput, deps, endpoint, inActivity, newRun, problems, readStage, testsInput, writeCodeStage } from './fixtures.js';
import { failure } from '../../support/failure.js';

let server: ModelServer;
let proxy: FaultProxy;
const runs: Run[] = [];

before(async () => {
  server = await startModelServer({ model: smallModelName });
  proxy = await startFaultProxy(server.baseUrl);
});
after(async () => {
  await proxy?.close();
  await server?.stop();
  for (const run of runs) await run.close();
});

async function run(batch = problems): Promise<Run> {
  const r = await newRun(batch);
  runs.push(r);
  return r;
}

/** Every field the trainer relies on, checked against the server's own token accounting. */
function assertSample(s: Sample, messages: Sample['messages'], promptVersion: string, checkpoint: string): void {
  assert.deepEqual(s.messages, messages);
  assert.equal(typeof s.response, 'string');
  assert.ok(['stop', 'length'].includes(s.finishReason), s.finishReason);
  assert.equal(s.truncated, s.finishReason === 'length');
  assert.ok(s.promptTokens > 0);
  assert.equal(s.promptTokenIds?.length, s.promptTokens);
  assert.ok(s.completionTokens > 0 && s.completionTokens <= 16);
  assert.equal(s.responseTokenIds?.length, s.completionTokens);
  assert.equal(s.promptVersion, promptVersion);
  assert.equal(s.checkpoint, checkpoint);
}


describe('generateCode against the embedded model server', () => {
  it('stores rollouts in shards of whole problems and returns the manifest key with a token summary', async () => {
    const r = await run();
    const { generateCode } = createGenerateCodeActivity(deps({ problemsPerShard: { code: 2 } }));
    const result = await inActivity(generateCode, codeInput(r, endpoint(server.baseUrl, server.model)));

    assert.equal(result.key, keys.stage('run', 2, 'code/manifest.json'));
    const { manifest, rollouts } = await readStage<CodeRollout>(r.store, result.key);
    assert.deepEqual(manifest.shards, [keys.stage('run', 2, 'code/shard-00000.json'), keys.stage('run', 2, 'code/shard-00001.json')]);
    assert.equal(manifest.count, 6);
    assert.deepEqual(
      rollouts.map((x) => `${x.questionId}/${x.candidateIndex}`),
      ['q-add/0', 'q-add/1', 'q-rev/0', 'q-rev/1', 'q-max/0', 'q-max/1'],
    );
    for (const x of rollouts) {
      assertSample(x, renderCodePrompt(problems.find((p) => p.questionId === x.questionId)!).messages, 'code-v1', 'ckpt/code-7');
      assert.ok(x.code === null || typeof x.code === 'string');
    }
    const s = result.summary;
    assert.deepEqual(manifest.summary, s);
    assert.equal(s.samples, 6);
    assert.equal(s.problems, 3);
    assert.equal(s.requests, 3);
    assert.equal(s.shards, 2);
    assert.equal(s.resumedShards, 0);
    assert.equal(s.noCode, rollouts.filter((x) => x.code === null).length);
    assert.equal(s.truncated, rollouts.filter((x) => x.truncated).length);
    assert.equal(s.completionTokens, rollouts.reduce((n, x) => n + x.completionTokens, 0));
    assert.equal(s.promptTokens, rollouts.reduce((n, x) => n + x.promptTokens, 0));
    assert.ok(s.tokensPerSecond! > 0);
  });

  it('asks one request per problem with n = nCode, the run config sampling and a seed per problem', async () => {
    const r = await run();
    const before = proxy.forwarded.length;
    const model = endpoint(proxy.baseUrl, server.model, { sampling: { temperature: 0.7, topP: 0.95, maxTokens: 8 } });
    await inActivity(createGenerateCodeActivity(deps()).generateCode, codeInput(r, model, { nCode: 3 }));
    const sent = proxy.forwarded.slice(before) as Record<string, unknown>[];
    assert.equal(sent.length, 3);
    for (const body of sent) {
      assert.equal(body.n, 3);
      assert.equal(body.temperature, 0.7);
      assert.equal(body.top_p, 0.95);
      assert.equal(body.max_tokens, 8);
      assert.equal(body.return_token_ids, true);
      assert.equal(body.model, server.model);
    }
    assert.equal(new Set(sent.map((b) => b.seed)).size, 3);
  });

  it('returns the stored manifest on a second call without asking the model again', async () => {
    const r = await run(problems.slice(0, 1));
    const { generateCode } = createGenerateCodeActivity(deps());
    const input = codeInput(r, endpoint(proxy.baseUrl, server.model));
    const first = await inActivity(generateCode, input);
    const requests = proxy.requests;
    const second = await inActivity(generateCode, input);
    assert.deepEqual(second, first);
    assert.equal(proxy.requests, requests);
  });

  it('resumes an interrupted attempt from the stored shards: no sample is regenerated, duplicated or missing', async () => {
    const r = await run();
    const activity = createGenerateCodeActivity(deps({ problemsPerShard: { code: 1 } }));
    // One request at a time, so the attempt is cancelled with some shards stored and others not.
    const input = codeInput(r, endpoint(proxy.baseUrl, server.model, { concurrency: 1 }));
    const interrupted = activityEnv();
    interrupted.on('heartbeat', (d: ShardProgress) => {
      if (d.shardsDone >= 1) interrupted.cancel();
    });
    await failure(inActivity(activity.generateCode, input, interrupted));
    const prefix = keys.stage('run', 2, 'code/');
    const storedBefore = (await r.store.list(prefix)).filter((k) => k.includes('shard-'));
    assert.ok(storedBefore.length >= 1 && storedBefore.length < 3, `stored ${storedBefore.length} of 3 shards`);
    const bytesBefore = await Promise.all(storedBefore.map((k) => r.store.get(k)));

    const requests = proxy.requests;
    const result = await inActivity(activity.generateCode, input, activityEnv({ attempt: 2, heartbeatDetails: { shardsDone: storedBefore.length, shards: 3 } }));
    assert.equal(proxy.requests - requests, 3 - storedBefore.length);
    assert.equal(result.summary.resumedShards, storedBefore.length);
    assert.deepEqual(await Promise.all(storedBefore.map((k) => r.store.get(k))), bytesBefore);
    const { manifest, rollouts } = await readStage<CodeRollout>(r.store, result.key);
    assert.equal(manifest.count, 6);
    assert.equal(result.summary.samples, 6);
    assert.deepEqual(
      rollouts.map((x) => `${x.questionId}/${x.candidateIndex}`),
      ['q-add/0', 'q-add/1', 'q-rev/0', 'q-rev/1', 'q-max/0', 'q-max/1'],
    );
  });
});

describe('generateCode when the endpoint fails', () => {
  it('retries 500s, 429 with Retry-After, connection resets and bodies that are not JSON, then succeeds', async () => {
    const r = await run(problems.slice(0, 1));
    proxy.enqueue(
      { kind: 'status', status: 500 },
      { kind: 'status', status: 429, headers: { 'retry-after': '0' } },
      { kind: 'reset' },
      { kind: 'status', status: 503, body: '<html>bad gateway</html>' },
      { kind: 'status', status: 200, body: 'not json' },
    );
    const requests = proxy.requests;
    const result = await inActivity(createGenerateCodeActivity(deps()).generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model)));
    assert.equal(proxy.requests - requests, 6);
    assert.equal(result.summary.samples, 2);
  });

  it('retries a request that hangs past the per-request timeout', async () => {
    const r = await run(problems.slice(0, 1));
    proxy.enqueue({ kind: 'hang' });
    const requests = proxy.requests;
    const activity = createGenerateCodeActivity(deps({ client: { timeoutMs: 4_000, initialDelayMs: 10 } }));
    const result = await inActivity(activity.generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model, { sampling: { temperature: 1, topP: 1, maxTokens: 4 } })));
    assert.equal(proxy.requests - requests, 2);
    assert.equal(result.summary.samples, 2);
  });

  it('fails the attempt as retryable once a request has spent its retry budget', async () => {
    const r = await run(problems.slice(0, 1));
    proxy.always({ kind: 'status', status: 502 });
    try {
      const activity = withErrorClassification(createGenerateCodeActivity(deps({ client: { maxAttempts: 3, initialDelayMs: 1 } })));
      const err = await failure(inActivity(activity.generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model))));
      assert.ok(err instanceof Error && err.name === 'ModelUnavailableError', String(err));
      assert.match(err.message, /HTTP 502.*gave up after 3 attempt/);
      assert.ok(!(err instanceof ApplicationFailure && err.nonRetryable));
    } finally {
      proxy.always(undefined);
    }
    assert.equal(await r.store.exists(keys.stage('run', 2, 'code/manifest.json')), false);
  });

  it('hands a long Retry-After to Temporal as the next retry delay', async () => {
    const r = await run(problems.slice(0, 1));
    proxy.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '90' } });
    const activity = withErrorClassification(createGenerateCodeActivity(deps()));
    const err = await failure(inActivity(activity.generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model))));
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'ModelUnavailableError');
    assert.equal(err.nonRetryable, false);
    assert.equal(err.nextRetryDelay, 90_000);
  });

  it('fails the attempt as retryable when a completion comes from other weights than those published', async () => {
    const r = await run(problems.slice(0, 1));
    const { data } = (await (await fetch(`${server.baseUrl}/models`)).json()) as { data: { checkpoint: { path: string; fingerprint: string } }[] };
    const published = data[0]!.checkpoint;
    assert.match(published.fingerprint, /^ckpt-[0-9a-f]{8}-v\d+$/);
    // What a server that restarted between publishPolicy and this request answers with.
    proxy.enqueue({ kind: 'rewrite', rewrite: (body) => body.toString().replace(published.fingerprint, 'ckpt-0000beef-v0') });
    const ensureServed = async () => ({ path: published.path, label: published.fingerprint, model: server.model, base: server.model, endpoint: proxy.baseUrl });
    const activity = withErrorClassification(createGenerateCodeActivity(deps({ ensureServed })));
    const err = await failure(inActivity(activity.generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model))));
    // A plain error, which Temporal retries (the classification only marks the non-retryable).
    assert.ok(err instanceof Error && !(err instanceof ApplicationFailure), String(err));
    assert.equal(err.name, 'ServedCheckpointChangedError');
    assert.match(err.message, /ckpt-0000beef-v0/);
    // The retry, with the weights served again, records its samples under the published checkpoint.
    const result = await inActivity(activity.generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model)));
    assert.equal(result.summary.samples, 2);
  });

  it('fails at once, non-retryable, with the server message for a wrong model name', async () => {
    const r = await run(problems.slice(0, 1));
    const requests = proxy.requests;
    const activity = withErrorClassification(createGenerateCodeActivity(deps()));
    const err = await failure(inActivity(activity.generateCode, codeInput(r, endpoint(proxy.baseUrl, 'no-such-model'))));
    assert.ok(err instanceof ApplicationFailure, String(err));
    assert.equal(err.type, 'ModelConfigError');
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /HTTP 404 .*The model `no-such-model` does not exist/);
    assert.equal(proxy.requests - requests, 1);
  });

  it('fails non-retryable when the API key variable the config names is not set', async () => {
    const r = await run(problems.slice(0, 1));
    const activity = withErrorClassification(createGenerateCodeActivity(deps({ secrets: {} })));
    const err = await failure(inActivity(activity.generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model, { apiKeyEnv: 'CODE_LLM_KEY' }))));
    assert.ok(err instanceof ApplicationFailure && err.nonRetryable && err.type === 'ModelConfigError', String(err));
    assert.match(err.message, /CODE_LLM_KEY/);
  });

  it('records a prompt that cannot fit the context as error samples instead of failing the stage', async () => {
    const r = await run(problems.slice(0, 1));
    const model = endpoint(proxy.baseUrl, server.model, { sampling: { temperature: 1, topP: 1, maxTokens: 1_000_000 } });
    const result = await inActivity(createGenerateCodeActivity(deps()).generateCode, codeInput(r, model));
    const { rollouts } = await readStage<CodeRollout>(r.store, result.key);
    assert.deepEqual(rollouts.map((x) => [x.finishReason, x.response, x.code]), [['error', '', null], ['error', '', null]]);
    assert.equal(result.summary.errors, 2);
  });
});

describe('malformed model output', () => {
  /** Rewrites the real server's answer: a control character and invalid UTF-8 bytes, a refusal without content, a missing choice. */
  function mangle(body: Buffer): Buffer {
    const parsed = JSON.parse(body.toString('utf8')) as { choices: { message: { content: string | null; refusal?: string } }[] };
    parsed.choices[0]!.message.content = '\u0007MARK';
    parsed.choices[1]!.message = { content: null, refusal: 'I cannot help with that.' };
    parsed.choices.length = 2;
    const [head, tail] = JSON.stringify(parsed).split('MARK') as [string, string];
    return Buffer.concat([Buffer.from(head), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(tail)]);
  }

  it('records invalid UTF-8, refusals and missing choices as rollouts without code, never a crash', async () => {
    const r = await run(problems.slice(0, 1));
    proxy.enqueue({ kind: 'rewrite', rewrite: mangle });
    const result = await inActivity(createGenerateCodeActivity(deps()).generateCode, codeInput(r, endpoint(proxy.baseUrl, server.model), { nCode: 3 }));
    const { rollouts } = await readStage<CodeRollout>(r.store, result.key);
    assert.deepEqual(
      rollouts.map((x) => [x.response, x.finishReason, x.code]),
      [
        ['\u0007\ufffd\ufffd\ufffd', rollouts[0]!.finishReason, null],
        ['I cannot help with that.', rollouts[1]!.finishReason, null],
        ['', 'error', null],
      ],
    );
    assert.equal(result.summary.noCode, 3);
    assert.equal(result.summary.samples, 3);
  });

  it('gives a test response without asserts an empty list and counts its non-printable characters', async () => {
    const r = await run(problems.slice(0, 1));
    const codeKey = await writeCodeStage(r, [[{ questionId: 'q-add', code: 'def add(a, b):\n    return a - b\n' }]]);
    proxy.enqueue({ kind: 'rewrite', rewrite: mangle });
    const model = endpoint(proxy.baseUrl, server.model);
    const result = await inActivity(createGenerateTestsActivity(deps()).generateTests, testsInput(r, model, codeKey, { nTest: 3 }));
    const { rollouts } = await readStage<TestRollout>(r.store, result.key);
    assert.deepEqual(rollouts.map((x) => x.asserts), [[], [], []]);
    assert.ok(rollouts[0]!.nonprintableRatio > 0);
    assert.equal(rollouts[2]!.finishReason, 'error');
    assert.equal(result.summary.noAsserts, 3);
  });
});

describe('generateTests against the embedded model server', () => {
  it('samples nTest responses for every candidate with code, and none for a candidate without', async () => {
    const r = await run(problems.slice(0, 2));
    const codeKey = await writeCodeStage(r, [
      [
        { questionId: 'q-add', code: 'def add(a, b):\n    return a - b\n' },
        { questionId: 'q-add', code: null },
      ],
      [{ questionId: 'q-rev', code: 'def rev(s):\n    return s\n' }],
    ]);
    const before = proxy.forwarded.length;
    const model = { ...endpoint(proxy.baseUrl, server.model), checkpoint: 'init/test' };
    const { generateTests } = createGenerateTestsActivity(deps({ problemsPerShard: { tests: 1 } }));
    const result = await inActivity(generateTests, testsInput(r, model, codeKey));

    assert.equal(result.key, keys.stage('run', 2, 'tests/manifest.json'));
    const sent = proxy.forwarded.slice(before) as { n: number; messages: unknown }[];
    assert.equal(sent.length, 2);
    assert.ok(sent.every((b) => b.n === 2));
    const { manifest, rollouts } = await readStage<TestRollout>(r.store, result.key);
    assert.equal(manifest.shards.length, 2);
    assert.equal(manifest.count, 4);
    assert.deepEqual(
      rollouts.map((x) => `${x.questionId}/${x.candidateIndex}/${x.responseIndex}`),
      ['q-add/0/0', 'q-add/0/1', 'q-rev/0/0', 'q-rev/0/1'],
    );
    const add = renderTestPrompt(problems[0]!, 'def add(a, b):\n    return a - b\n', 4);
    for (const x of rollouts.slice(0, 2)) assertSample(x, add.messages, 'test-whitebox-v1', 'ckpt/test-7');
    for (const x of rollouts) {
      assert.ok(Array.isArray(x.asserts) && x.asserts.every((a) => a.startsWith('assert')));
      assert.ok(x.nonprintableRatio >= 0 && x.nonprintableRatio <= 1);
    }
    assert.equal(result.summary.candidates, 2);
    assert.equal(result.summary.candidatesWithoutCode, 1);
    assert.equal(result.summary.samples, 4);
    assert.equal(result.summary.asserts, rollouts.reduce((n, x) => n + x.asserts.length, 0));
  });

  it('spreads requests over the replicas and moves those of a failing replica to the others', async () => {
    const r = await run(problems);
    const broken = await startFaultProxy(server.baseUrl);
    broken.always({ kind: 'status', status: 503 });
    try {
      const { generateCode } = createGenerateCodeActivity(deps({ problemsPerShard: { code: 2 }, client: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 2 } }));
      const model = endpoint(proxy.baseUrl, server.model, { replicas: [{ baseUrl: broken.baseUrl }] });
      const result = await inActivity(generateCode, codeInput(r, model));
      const { rollouts } = await readStage<CodeRollout>(r.store, result.key);
      assert.equal(rollouts.length, problems.length * 2);
      // Every other problem started on the broken replica; every rollout came from the good one.
      assert.ok(broken.requests >= 1, 'the broken replica was tried');
      assert.deepEqual([...new Set(rollouts.map((x) => x.endpoint))], [proxy.baseUrl]);
      assert.deepEqual([...new Set(rollouts.map((x) => x.servedModel))], [server.model]);
    } finally {
      await broken.close();
    }
  });

  it('finishes the stage when a replica dies mid-stage, with every problem sampled once', async () => {
    const r = await run(problems);
    const dying = await startFaultProxy(server.baseUrl);
    // Its first answer goes through; then it is gone: every later connection is reset.
    dying.enqueue({ kind: 'rewrite', rewrite: (body) => body });
    dying.always({ kind: 'reset' });
    try {
      const { generateCode } = createGenerateCodeActivity(deps({ problemsPerShard: { code: 1 }, client: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 2 } }));
      const model = endpoint(dying.baseUrl, server.model, { replicas: [{ baseUrl: proxy.baseUrl }] });
      const result = await inActivity(generateCode, codeInput(r, model));
      const { rollouts } = await readStage<CodeRollout>(r.store, result.key);
      const perProblem = new Map<string, number>();
      for (const x of rollouts) perProblem.set(x.questionId, (perProblem.get(x.questionId) ?? 0) + 1);
      assert.deepEqual([...perProblem.values()], problems.map(() => 2), 'each problem has its two candidates, none twice');
      assert.equal(result.summary.samples, problems.length * 2);
      assert.ok(rollouts.some((x) => x.endpoint === dying.baseUrl), 'the dying replica answered before it died');
      assert.ok(rollouts.some((x) => x.endpoint === proxy.baseUrl));
    } finally {
      await dying.close();
    }
  });
});
