import { randomUUID } from 'node:crypto';
import type { ObjectStore, S3Connection } from '../../activities/storage/index.js';
import { openStore } from '../../activities/storage/index.js';

/** The test suite's bucket on the local S3 server that the test command starts. */
export const testBucket = 'code-a1-test';

/**
 * The S3 connection of the test runner's local server. Its absence is a failure, not a skip:
 * the S3 path is the one production uses, and a skipped case would let it rot unnoticed.
 */
export function testS3Connection(): S3Connection {
  const endpoint = process.env.CODE_A1_TEST_S3_ENDPOINT;
  if (!endpoint) {
    throw new Error(
      'CODE_A1_TEST_S3_ENDPOINT is not set: run the tests through `make test`, or start a local S3 server (infra/install-s3.sh builds gofakes3) with bucket code-a1-test and set it to its URL',
    );
  }
  return { endpoint, region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'testtest', forcePathStyle: true };
}

/** A store under a fresh prefix of the test bucket (or under `prefix` when given). */
export function testS3Store(prefix = `t-${randomUUID()}`): ObjectStore {
  return openStore(`s3://${testBucket}/${prefix}`, testS3Connection());
}
