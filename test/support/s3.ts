import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ObjectStore, S3Connection } from '../../activities/storage/index.js';
import { openStore } from '../../activities/storage/index.js';
import { localS3Connection, s3Binary, startS3, stopS3 } from '../../infra/s3-server.js';
import type { S3ServerOptions } from '../../infra/s3-server.js';
import { freePort } from '../../infra/process.js';
import { tempDir } from './config.js';

/** Where infra/install-s3.sh lives; not through infra/stack.ts, which brings in every service of the stack. */
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The test suite's bucket on the local S3 server that the test command starts. */
export const testBucket = 'code-a1-test';

/**
 * The S3 connection of the test runner's local server (versitygw, started by `stack up` with the
 * local credentials). Its absence is a failure, not a skip: the S3 path is the one production
 * uses, and a skipped case would let it rot unnoticed.
 */
export function testS3Connection(): S3Connection {
  const endpoint = process.env.CODE_A1_TEST_S3_ENDPOINT;
  if (!endpoint) {
    throw new Error(
      'CODE_A1_TEST_S3_ENDPOINT is not set: run the tests through `make test`, or start the local stack (`npx code-a1 stack up`) and set it to http://127.0.0.1:9100',
    );
  }
  return { ...localS3Connection(Number(new URL(endpoint).port)), endpoint };
}

/** A store under a fresh prefix of the test bucket (or under `prefix` when given). */
export function testS3Store(prefix = `t-${randomUUID()}`): ObjectStore {
  return openStore(`s3://${testBucket}/${prefix}`, testS3Connection());
}

export interface PrivateS3 {
  connection: S3Connection;
  server: S3ServerOptions;
  binary: string;
  pid: number;
  /** Stops the server and removes its data. Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * A versitygw server of a test's own, on a free port with its data in a temporary directory, so
 * that a test can stop, restart or fill it without touching the stack's server on 9100.
 */
export async function privateS3(buckets = [testBucket]): Promise<PrivateS3> {
  const server = { stateDir: await tempDir('code-a1-s3-'), port: await freePort(), buckets };
  const binary = await s3Binary(repoRoot);
  const pid = await startS3(binary, server);
  return {
    connection: localS3Connection(server.port),
    server,
    binary,
    pid,
    async stop() {
      await stopS3(server);
      await rm(server.stateDir, { recursive: true, force: true });
    },
  };
}
