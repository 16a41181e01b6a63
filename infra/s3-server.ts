import { execa } from 'execa';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../activities/storage/s3-store.js';
import type { S3Connection } from '../activities/storage/s3-store.js';
import { portInUse, startDetached, stopService, waitUntil } from './process.js';

export interface S3ServerOptions {
  stateDir: string;
  port: number;
  /** Created when missing; the first is also gofakes3's initial bucket. */
  buckets: string[];
}

/** gofakes3 accepts any signed request; these fixed credentials keep the SDK off the EC2 metadata probe. */
export function localS3Connection(port: number): S3Connection {
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    accessKeyId: 'code-a1',
    secretAccessKey: 'code-a1-local',
    forcePathStyle: true,
  };
}

export async function s3Binary(repoRoot: string): Promise<string> {
  const { stdout } = await execa(`${repoRoot}/infra/install-s3.sh`, { stderr: 'inherit' });
  return stdout.trim();
}

/** Starts gofakes3 with its bolt backend (objects survive restarts) and ensures the bucket exists. */
export async function startS3(binary: string, opts: S3ServerOptions): Promise<number> {
  // Another server on the port would answer the readiness probe for ours, which dies failing to bind.
  if (await portInUse(opts.port)) throw new Error(`port ${opts.port} is in use: another S3 server (or something else) listens there`);
  const pid = await startDetached({
    name: 's3',
    command: binary,
    args: ['-backend', 'bolt', '-bolt.db', `${opts.stateDir}/s3.bolt`, '-host', `127.0.0.1:${opts.port}`, '-initialbucket', opts.buckets[0]!],
    pidFile: `${opts.stateDir}/s3.pid`,
    logFile: `${opts.stateDir}/s3.log`,
  });
  const client = createS3Client(localS3Connection(opts.port));
  try {
    await waitUntil(`S3 server on port ${opts.port}`, async () => {
      for (const bucket of opts.buckets) {
        try {
          await client.send(new HeadBucketCommand({ Bucket: bucket }));
        } catch (err) {
          if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw err;
          await client.send(new CreateBucketCommand({ Bucket: bucket }));
        }
      }
      return true;
    }, 30_000);
  } finally {
    client.destroy();
  }
  return pid;
}

export function stopS3(opts: Pick<S3ServerOptions, 'stateDir'>): Promise<boolean> {
  return stopService(`${opts.stateDir}/s3.pid`);
}
