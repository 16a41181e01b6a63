import { fileURLToPath } from 'node:url';
import { localS3Connection, s3Binary, startS3, stopS3 } from './s3-server.js';
import { readPid } from './process.js';
import { startTemporal, stopTemporal, temporalBinary } from './temporal-server.js';
import { defaultCheckpoint, defaultModelName, startModelService, stopModelService } from './model-server.js';
import { startDetached, stopService } from './process.js';

/** The local stack: a Temporal dev server and an S3 server, both persistent under `.stack/`. */
export const localStack = {
  repoRoot: fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, ''),
  get stateDir() {
    return `${this.repoRoot}/.stack`;
  },
    // `code-a1-test` keeps the test suite's workflows and task queues apart from real runs.
  temporal: { port: 7233, uiPort: 8233, namespaces: ['default', 'code-a1-test'] },
    // `code-a1-test` is the test suite's bucket, so that tests never touch a local run's artifacts.
  s3: { port: 9100, buckets: ['code-a1', 'code-a1-test'] },
  /**
   * One embedded server for both roles, as configs/local.json expects: with LoRA the Code LLM and
   * the Test LLM are two adapters on one base model (as vLLM serves several adapters), which halves
   * the memory and gives each stage every core (the stages run one after the other). Threads 0 =
   * all cores.
   */
  models: [{ name: defaultModelName, port: 8101, threads: 0 }],
};

/** What workers started by the stack are told about it (the environment of config/worker-env.ts). */
export function workerEnvironment(): Record<string, string> {
  const { stateDir, s3 } = localStack;
  const conn = localS3Connection(s3.port);
  return {
    TEMPORAL_ADDRESS: endpoints().temporalAddress,
    TEMPORAL_NAMESPACE: endpoints().namespace,
    CODE_A1_S3_ENDPOINT: conn.endpoint!,
    AWS_ACCESS_KEY_ID: conn.accessKeyId!,
    AWS_SECRET_ACCESS_KEY: conn.secretAccessKey!,
    AWS_REGION: conn.region,
    CODE_A1_WORK_DIR: `${stateDir}/work`,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

export interface StackEndpoints {
  temporalAddress: string;
  temporalUi: string;
  namespace: string;
  s3Endpoint: string;
  storageUri: string;
}

export function endpoints(): StackEndpoints {
  const { temporal, s3 } = localStack;
  return {
    temporalAddress: `127.0.0.1:${temporal.port}`,
    temporalUi: `http://127.0.0.1:${temporal.uiPort}`,
    namespace: temporal.namespaces[0]!,
    s3Endpoint: localS3Connection(s3.port).endpoint!,
    storageUri: `s3://${s3.buckets[0]}`,
  };
}

/**
 * Idempotent: builds what is missing, starts what is not running, waits until it answers. The
 * model servers and the workers (all task queues in one process) are optional: tests start
 * their own.
 */
export async function stackUp(options: { models?: boolean; workers?: boolean } = {}): Promise<StackEndpoints> {
  const { repoRoot, stateDir, temporal, s3 } = localStack;
  const [temporalBin, s3Bin] = [await temporalBinary(repoRoot), await s3Binary(repoRoot)];
  await Promise.all([
    startTemporal(temporalBin, { stateDir, ...temporal }),
    startS3(s3Bin, { stateDir, ...s3 }),
  ]);
  if (options.models) {
    const checkpoint = await defaultCheckpoint();
    await Promise.all(localStack.models.map((m) => startModelService({ stateDir, checkpoint, ...m })));
  }
  if (options.workers) {
    await startDetached({
      name: 'workers',
      command: process.execPath,
      args: [`${repoRoot}/bin/code-a1.js`, 'worker', 'all'],
      pidFile: `${stateDir}/workers.pid`,
      logFile: `${stateDir}/workers.log`,
      env: { ...process.env, ...workerEnvironment() },
    });
  }
  return endpoints();
}

export async function stackDown(): Promise<Record<string, boolean>> {
  const { stateDir } = localStack;
  // Workers first, so that none is left polling a server that is going away.
  const workers = await stopService(`${stateDir}/workers.pid`, 35_000);
  const models = await Promise.all(localStack.models.map((m) => stopModelService({ stateDir, name: m.name })));
  const [temporal, s3] = await Promise.all([stopTemporal({ stateDir }), stopS3({ stateDir })]);
  return { workers, models: models.some(Boolean), temporal, s3 };
}

export async function stackStatus(): Promise<Record<string, number | undefined>> {
  const { stateDir } = localStack;
  const services = ['temporal', 's3', ...localStack.models.map((m) => m.name), 'workers'];
  return Object.fromEntries(await Promise.all(services.map(async (s) => [s, await readPid(`${stateDir}/${s}.pid`)] as const)));
}
