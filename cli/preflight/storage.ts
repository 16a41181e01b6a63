import { randomUUID } from 'node:crypto';
import { openStore } from '../../activities/storage/index.js';
import type { WorkerEnv } from '../../config/worker-env.js';
import type { Finding } from './finding.js';
import { describe, fail, pass } from './finding.js';
import type { PreflightPlan } from './plan.js';

/**
 * Writes, reads back and deletes a probe object under the run's own prefix, with the S3 connection
 * the workers are given (the same environment variables). A fresh key each time: two pre-flights
 * of one run never trip over each other's probe.
 */
export async function checkStorage(plan: PreflightPlan, env: WorkerEnv): Promise<Finding> {
  const key = `${plan.probePrefix}/preflight/${randomUUID()}.txt`;
  const subject = `storageUri ${plan.storageUri}`;
  const body = `code-a1 preflight probe of ${plan.subject}`;
  try {
    const store = openStore(plan.storageUri, env.s3);
    await store.put(key, body);
    const back = await store.get(key);
    await store.delete(key);
    if (back === undefined || Buffer.from(back).toString('utf8') !== body) {
      return fail(subject, `the probe object ${key} read back ${back === undefined ? 'as missing' : 'with other bytes'} right after it was written`, 'use an S3 service with read-after-write consistency');
    }
    return pass(subject, `wrote, read back and deleted ${key}`);
  } catch (err) {
    return fail(subject, `cannot write a probe object: ${describe(err)}`, storageFix(err, plan.storageUri));
  }
}

/** What to do about a storage failure, from what the store or the AWS SDK said. */
export function storageFix(err: unknown, uri: string): string {
  const text = `${(err as Error)?.name} ${describe(err)}`;
  const bucket = /^s3:\/\/([^/]+)/.exec(uri)?.[1];
  if (/CredentialsProviderError|Could not load credentials/i.test(text)) {
    return 'give this shell S3 credentials: for the local stack eval "$(npx code-a1 stack env)"; elsewhere set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';
  }
  if (/NoSuchBucket|no such bucket|does not exist/i.test(text)) return `create the bucket (aws s3 mb s3://${bucket}) or point the URI at an existing one`;
  if (/AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|Forbidden|403/i.test(text)) {
    return `give these credentials s3:PutObject, s3:GetObject and s3:DeleteObject on s3://${bucket}, or set the AWS_* variables of an identity that has them`;
  }
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|socket hang up|no answer within/i.test(text)) {
    return 'start the S3 server (local stack: npx code-a1 stack up) or correct CODE_A1_S3_ENDPOINT';
  }
  if (/needs an S3 connection/.test(text)) return 'set CODE_A1_S3_ENDPOINT (local stack: eval "$(npx code-a1 stack env)")';
  if (/EACCES|EROFS|EPERM/.test(text)) return `make ${uri} writable by this user, or choose another storage URI`;
  return `make ${uri} reachable and writable with this environment's credentials`;
}
