import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ScheduleNotFoundError, WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { RunConfigInput } from '../../config/run-config.js';
import { createDescribeDevicesActivity } from '../../activities/describe-devices.js';
import { publishTaskQueue } from '../../workflows/contract.js';
import { evaluationWorkflowId } from '../../workflows/evaluate.js';
import { nightlyScheduleId } from '../../infra/schedules.js';
import type { DeviceReport } from '../../workflows/contract.js';
import { rawConfig, tempDir } from '../support/config.js';
import { testBucket, testS3Connection, testS3Store } from '../support/s3.js';
import type { ScriptedModelServer } from '../support/scripted-model-server.js';
import { startScriptedModelServer } from '../support/scripted-model-server.js';
import { connectClient, temporalAddress, testNamespace, withWorker } from '../support/temporal.js';

const bin = fileURLToPath(new URL('../../bin/code-a1.js', import.meta.url));
const configs = fileURLToPath(new URL('../../configs/', import.meta.url));

/** The real CLI binary with the environment the local stack's workers get, pointed at the test namespace and bucket. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const s3 = testS3Connection();
  const env = {
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: testNamespace,
    CODE_A1_S3_ENDPOINT: s3.endpoint!,
    AWS_ACCESS_KEY_ID: s3.accessKeyId!,
    AWS_SECRET_ACCESS_KEY: s3.secretAccessKey!,
    AWS_REGION: s3.region,
  };
  const result = await execa(process.execPath, [bin, ...args], { reject: false, env });
  return { code: result.exitCode ?? -1, out: result.stdout, err: result.stderr };
}

/** A KodCode-style row (the paper's training set), with golden tests so evaluation can use it too. */
const row = (id: string, name: string, body: string, of2and3: number) => ({
  description: `Write ${name}.`,
  GT_code: `def ${name}(a, b):\n    return ${body}\n`,
  test: `def check(candidate):\n    assert candidate(2, 3) == ${of2and3}\n`,
  data_source: 'kodcode',
  extra_info: { question_id: id, function_name: name },
});
const rows = [row('kc-1', 'add', 'a + b', 5), row('kc-2', 'mul', 'a * b', 6)];

/** The gpu worker's machine, stood in for: the paper's node of eight GPUs. */
const eightH100: DeviceReport = {
  host: 'gpu-stand-in',
  cpuCount: 64,
  cuda: Array.from({ length: 8 }, (_, index) => ({ index, name: 'NVIDIA H100 80GB HBM3', freeBytes: 79 * 2 ** 30, totalBytes: 80 * 2 ** 30 })),
};

/**
 * vLLM's and SGLang's routes beyond the OpenAI ones, as the README's launch flags turn them on,
 * in front of a scripted server that answers everything else.
 */
async function launched(scripted: ScriptedModelServer, routes: Record<string, unknown>): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const route = `${req.method} ${req.url}`;
    if (route in routes) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify(routes[route]));
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length ? Buffer.concat(chunks) : undefined;
      void fetch(`${scripted.baseUrl.replace(/\/v1$/, '')}${req.url}`, { method: req.method!, headers: { 'content-type': 'application/json' }, ...(body ? { body } : {}) }).then(async (answer) => {
        res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' });
        res.end(Buffer.from(await answer.arrayBuffer()));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('code-a1 preflight', () => {
  let client: Client;
  let closeClient: () => Promise<void>;
  let dir: string;
  let qwen: ScriptedModelServer;
  let other: ScriptedModelServer;
  const prefix = `preflight-${randomUUID().slice(0, 8)}`;
  const datasetUri = `s3://${testBucket}/${prefix}/kodcode-v1-hard.jsonl`;
  /** What the gpu worker reports; the healthy local set-up asks the machine's own torch. */
  let devices: () => Promise<DeviceReport> = async () => eightH100;
  let stopWorkers: () => void;
  let workers: Promise<void>;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    ({ client, close: closeClient } = await connectClient());
    dir = await tempDir('code-a1-preflight-');
    qwen = await startScriptedModelServer({ model: 'qwen-stand-in', checkpoint: dir, script: () => 'ok' });
    other = await startScriptedModelServer({ model: 'other-model', checkpoint: dir, script: () => 'ok' });
    const store = testS3Store(prefix);
    await store.put('kodcode-v1-hard.jsonl', rows.map((r) => JSON.stringify(r)).join('\n'));
    await store.put('malformed.jsonl', `${JSON.stringify(rows[0])}\n{"description": "cut off`);
    await store.put('empty.jsonl', '\n');
    await store.put('garbage.parquet', 'PAR1 this is not a parquet file');
    // Every queue of the contract, and the publish queues of the presets' hosts, served; the
    // host `gpu-z` that one test configures has no publish worker.
    const activities = { describeDevices: () => devices() };
    let ready: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    workers = withWorker(
      activities,
      () => {
        ready();
        return new Promise<void>((resolve) => (stopWorkers = resolve));
      },
      temporalAddress,
      { [publishTaskQueue('gpu-a')]: activities, [publishTaskQueue('gpu-b')]: activities },
    );
    await started;
  });

  after(async () => {
    stopWorkers();
    await workers;
    await Promise.all([qwen.close(), other.close(), ...closers.map((close) => close())]);
    await closeClient();
  });

  /** A config for the stand-in stack: the scripted server for both roles, the uploaded dataset, the test bucket. */
  function healthy(overrides: Partial<RunConfigInput> = {}): RunConfigInput {
    const model = { baseUrl: qwen.baseUrl, model: 'qwen-stand-in', checkpoint: 'model:qwen-stand-in' };
    return rawConfig(dir, { storageUri: `s3://${testBucket}/${prefix}`, dataset: { uri: datasetUri }, models: { code: model, test: model }, ...overrides });
  }

  async function configFile(config: RunConfigInput | Record<string, unknown>): Promise<string> {
    const path = join(dir, `${randomUUID()}.json`);
    await writeFile(path, JSON.stringify(config, null, 2));
    return path;
  }

  const failures = (out: string) => out.split('\n').filter((line) => line.startsWith('✗'));

  it('passes on a healthy local set-up, every check ✓ and exit status 0, and leaves no probe object behind', async () => {
    devices = () => createDescribeDevicesActivity().describeDevices();
    try {
      const config = healthy();
      const { code, out, err } = await cli('preflight', '--config', await configFile(config));
      assert.equal(code, 0, `${out}\n${err}`);
      assert.deepEqual(failures(out), []);
      assert.match(out, /✓ dataset\.uri s3:\/\/.*kodcode-v1-hard\.jsonl: 2 problems \(jsonl, 2 rows\); the reference of the first problem \(kc-1\) defines add/);
      assert.match(out, /✓ models\.code, models\.test http:\/\/127\.0\.0\.1:\d+\/v1: serves qwen-stand-in; a one-token chat answered/);
      assert.match(out, /✓ storageUri s3:\/\/code-a1-test\/preflight-\w+: wrote, read back and deleted/);
      assert.match(out, /✓ Temporal namespace code-a1-test .*: exists, with the search attributes/);
      assert.match(out, /✓ workers: poll code-a1-orchestration, code-a1-llm, code-a1-sandbox, code-a1-gpu/);
      assert.match(out, /✓ trainer\.devices 1: the gpu worker on \S+ (has no CUDA device|sees \d+ CUDA device)/);
      assert.match(out, /all 6 checks passed/);
      assert.deepEqual(await testS3Store(prefix).list(`runs/${config.runId}/`), []);
    } finally {
      devices = async () => eightH100;
    }
  });

  const refusals: { input: string; config: () => RunConfigInput; found: RegExp; fix: RegExp }[] = [
    {
      input: 'a missing dataset',
      config: () => healthy({ dataset: { uri: `s3://${testBucket}/${prefix}/absent.jsonl` } }),
      found: /✗ dataset\.uri s3:\/\/\S+\/absent\.jsonl: dataset \S+ not found/,
      fix: /fix: upload the dataset to s3:\/\/\S+\/absent\.jsonl, or correct dataset\.uri/,
    },
    {
      input: 'a malformed dataset',
      config: () => healthy({ dataset: { uri: `s3://${testBucket}/${prefix}/malformed.jsonl` } }),
      found: /✗ dataset\.uri \S+: .*1 of 2 rows are invalid .*row 1, line 2: .*not valid JSON/,
      fix: /fix: correct the rows named, or point dataset\.uri at a \.parquet or \.jsonl file/,
    },
    {
      input: 'an empty JSONL dataset',
      config: () => healthy({ dataset: { uri: `s3://${testBucket}/${prefix}/empty.jsonl` } }),
      found: /✗ dataset\.uri \S+: dataset \S+ has no rows/,
      fix: /fix: correct the rows named/,
    },
    {
      input: 'a garbage .parquet dataset',
      config: () => healthy({ dataset: { uri: `s3://${testBucket}/${prefix}/garbage.parquet` } }),
      found: /✗ dataset\.uri \S+garbage\.parquet: .*PAR1/,
      fix: /fix: correct the rows named/,
    },
    {
      input: 'a server that serves another model',
      config: () => healthy({ models: { code: { baseUrl: other.baseUrl, model: 'qwen-stand-in', checkpoint: 'x' }, test: { baseUrl: qwen.baseUrl, model: 'qwen-stand-in', checkpoint: 'x' } } }),
      found: /✗ models\.code http:\S+: serves "other-model", not "qwen-stand-in"/,
      fix: /fix: set models\.code\.model to the served name \("other-model"\), or restart the server with --served-model-name qwen-stand-in/,
    },
    {
      input: 'a baseUrl of ftp://x',
      config: () => healthy({ models: { code: { baseUrl: 'ftp://x/v1', model: 'qwen-stand-in', checkpoint: 'x' }, test: { baseUrl: qwen.baseUrl, model: 'qwen-stand-in', checkpoint: 'x' } } }),
      found: /✗ models\.code ftp:\/\/x\/v1: .*http/,
      fix: /fix: .*models\.code\.baseUrl/,
    },
    {
      input: 'a missing publish worker for a configured host',
      config: () => healthy({ models: { code: { baseUrl: qwen.baseUrl, host: 'gpu-z', model: 'qwen-stand-in', checkpoint: 'x' }, test: { baseUrl: qwen.baseUrl, model: 'qwen-stand-in', checkpoint: 'x' } } }),
      found: /✗ task queue code-a1-publish-gpu-z: no worker polls it for activity tasks in namespace code-a1-test/,
      fix: /fix: start its worker: npx code-a1 worker publish --host gpu-z \(on gpu-z, beside its model server\)/,
    },
    {
      input: 'an unwritable bucket',
      config: () => healthy({ storageUri: `s3://no-such-bucket-${prefix}` }),
      found: /✗ storageUri s3:\/\/no-such-bucket-\S+: cannot write a probe object: .*NoSuchBucket/,
      fix: /fix: create the bucket \(aws s3 mb s3:\/\/no-such-bucket-\S+\) or point the URI at an existing one/,
    },
    {
      input: 'more trainer devices than the gpu worker sees',
      config: () => healthy({ trainer: { devices: 16 } }),
      found: /✗ trainer\.devices 16: the gpu worker on gpu-stand-in sees 8 CUDA device\(s\)/,
      fix: /fix: run the gpu worker where 16 GPUs are visible \(CUDA_VISIBLE_DEVICES\), or set trainer\.devices to 8/,
    },
  ];

  for (const { input, config, found, fix } of refusals) {
    it(`refuses ${input} with the fix, and run starts no workflow for it`, async () => {
      const raw = config();
      const file = await configFile(raw);
      const checked = await cli('preflight', '--config', file);
      assert.equal(checked.code, 1, checked.out);
      assert.equal(failures(checked.out).length, 1, `only the bad input fails:\n${checked.out}`);
      assert.match(checked.out, found);
      assert.match(checked.out, fix);

      const run = await cli('run', '--config', file, '--detach');
      assert.equal(run.code, 1, `${run.out}\n${run.err}`);
      assert.match(run.out, fix);
      assert.match(run.err, /^code-a1 run: nothing started: .*--skip-preflight$/m);
      await assert.rejects(client.workflow.getHandle(raw.runId).describe(), WorkflowNotFoundError);
    });
  }

  it('schedule create and eval refuse a missing dataset the same way, creating no schedule and starting no evaluation', async () => {
    const absent = `s3://${testBucket}/${prefix}/absent.parquet`;
    const run = healthy({ dataset: { uri: absent } });
    const scheduled = await cli('schedule', 'create', '--cron', '0 2 * * *', '--config', await configFile(run));
    assert.equal(scheduled.code, 1, `${scheduled.out}\n${scheduled.err}`);
    assert.match(scheduled.out, /✗ dataset\.uri \S+absent\.parquet: .*not found/);
    assert.match(scheduled.err, /^code-a1 schedule create: nothing started/m);
    await assert.rejects(client.schedule.getHandle(nightlyScheduleId(run.runId)).describe(), ScheduleNotFoundError);

    const evalId = `preflight-${randomUUID().slice(0, 8)}`;
    const evaluation = { evalId, storageUri: `s3://${testBucket}/${prefix}`, dataset: { uri: absent }, model: { baseUrl: qwen.baseUrl, model: 'qwen-stand-in' } };
    const evaluated = await cli('eval', '--config', await configFile(evaluation));
    assert.equal(evaluated.code, 1, evaluated.err);
    assert.equal(evaluated.out, '', 'stdout stays for the report');
    assert.match(evaluated.err, /✗ dataset\.uri \S+absent\.parquet: .*not found[\s\S]*fix: upload the dataset/);
    assert.match(evaluated.err, /^code-a1 eval: nothing started/m);
    await assert.rejects(client.workflow.getHandle(evaluationWorkflowId(evalId)).describe(), WorkflowNotFoundError);
  });

  /**
   * A preset as a GPU user runs it, with stand-ins where this machine has no GPU: a scripted model
   * server behind the routes vLLM or SGLang open with the README's launch flags, a gpu worker
   * reporting eight H100s, the dataset in the test bucket. Everything else is the preset's own.
   */
  async function standIn(preset: string, routes: (server: string, lora: boolean) => Record<string, unknown>) {
    const config = JSON.parse(await readFile(join(configs, `${preset}.json`), 'utf8')) as RunConfigInput;
    const lora = config.trainer?.lora !== undefined;
    const servers = new Map<string, string>();
    for (const model of [config.models.code, config.models.test]) {
      if (!servers.has(model.baseUrl)) {
        const scripted = await startScriptedModelServer({ model: model.model, checkpoint: dir, script: () => 'ok' });
        const front = await launched(scripted, routes(model.server ?? 'embedded', lora));
        closers.push(front.close, scripted.close);
        servers.set(model.baseUrl, front.baseUrl);
      }
      model.baseUrl = servers.get(model.baseUrl)!;
    }
    return { ...config, storageUri: `s3://${testBucket}/${prefix}/${preset}`, dataset: { uri: datasetUri }, evaluation: { ...config.evaluation, datasetUri } };
  }

  const devMode = (server: string, lora: boolean): Record<string, unknown> =>
    server === 'sglang'
      ? lora ? { 'GET /server_info': { enable_lora: true, max_lora_rank: 16 } } : { 'GET /model_info': { model_path: '/models/qwen2.5-coder-1.5b-instruct' } }
      : lora ? {} : { 'GET /is_paused': { is_paused: false } };

  for (const preset of ['paper-qwen2.5-coder-1.5b', 'gpu-lora-qwen2.5-coder-1.5b']) {
    it(`passes the ${preset} preset on stand-ins for its GPU servers and gpu worker`, async () => {
      const { code, out } = await cli('preflight', '--config', await configFile(await standIn(preset, devMode)));
      assert.equal(code, 0, out);
      assert.deepEqual(failures(out), []);
      assert.match(out, /✓ models\.code[^\n]* publishing: vLLM answers its (dev-mode|runtime LoRA) routes/);
      assert.match(out, /✓ workers: poll .*code-a1-publish-gpu-a/);
      assert.match(out, /✓ trainer\.devices \d: the gpu worker on gpu-stand-in sees 8 CUDA device\(s\)/);
      assert.match(out, /✓ evaluation\.datasetUri /);
    });
  }

  it('refuses the paper preset on a vLLM started without dev mode, naming VLLM_SERVER_DEV_MODE', async () => {
    const { code, out } = await cli('preflight', '--config', await configFile(await standIn('paper-qwen2.5-coder-1.5b', () => ({}))));
    assert.equal(code, 1, out);
    assert.match(out, /✗ models\.code http:\S+ publishing: vLLM runs without its dev-mode routes/);
    assert.match(out, /fix: restart vLLM with VLLM_SERVER_DEV_MODE=1/);
  });
});
