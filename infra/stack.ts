import { fileURLToPath } from 'node:url';
import { localS3Connection, s3Binary, startS3, stopS3 } from './s3-server.js';
import { readPid } from './process.js';
import { startTemporal, stopTemporal, temporalBinary } from './temporal-server.js';

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
};

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

/** Idempotent: builds what is missing, starts what is not running, waits until both answer. */
export async function stackUp(): Promise<StackEndpoints> {
  const { repoRoot, stateDir, temporal, s3 } = localStack;
  const [temporalBin, s3Bin] = [await temporalBinary(repoRoot), await s3Binary(repoRoot)];
  await Promise.all([
    startTemporal(temporalBin, { stateDir, ...temporal }),
    startS3(s3Bin, { stateDir, ...s3 }),
  ]);
  return endpoints();
}

export async function stackDown(): Promise<{ temporal: boolean; s3: boolean }> {
  const { stateDir } = localStack;
  const [temporal, s3] = await Promise.all([stopTemporal({ stateDir }), stopS3({ stateDir })]);
  return { temporal, s3 };
}

export async function stackStatus(): Promise<{ temporal: number | undefined; s3: number | undefined }> {
  const { stateDir } = localStack;
  return { temporal: await readPid(`${stateDir}/temporal.pid`), s3: await readPid(`${stateDir}/s3.pid`) };
}
