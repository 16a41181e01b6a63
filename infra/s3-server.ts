import { execa } from 'execa';
import { access, mkdir } from 'node:fs/promises';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../activities/storage/s3-store.js';
import type { S3Connection } from '../activities/storage/s3-store.js';
import type { ServiceSpec } from './process.js';
import { ensureService, logTail, stopService } from './process.js';

export interface S3ServerOptions {
  stateDir: string;
  port: number;
  /** Created when missing. */
  buckets: string[];
}

/** The root credentials the local server is started with; passing them keeps the SDK off the EC2 metadata probe. */
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

function spec(binary: string, opts: S3ServerOptions, sidecar: boolean): ServiceSpec {
  const { accessKeyId, secretAccessKey } = localS3Connection(opts.port);
  return {
    name: 's3',
    command: binary,
    args: [
      '--port', `127.0.0.1:${opts.port}`,
      // Without it every request is a line of the log, which would grow without bound over a run.
      '--quiet',
      'posix',
      ...(sidecar ? ['--sidecar', metaDir(opts)] : []),
      dataDir(opts),
    ],
    pidFile: `${opts.stateDir}/s3.pid`,
    logFile: `${opts.stateDir}/s3.log`,
    env: { ...process.env, ROOT_ACCESS_KEY: accessKeyId, ROOT_SECRET_KEY: secretAccessKey },
  };
}

/** Buckets are directories and objects plain files under it, so objects of any size survive restarts. */
const dataDir = (opts: S3ServerOptions) => `${opts.stateDir}/s3-data`;
/**
 * Object metadata as files, on filesystems without user extended attributes (versitygw's default
 * store). Not named with the data directory's name as a prefix: versitygw takes such a sibling for
 * a directory inside the data directory and refuses it.
 */
const metaDir = (opts: S3ServerOptions) => `${opts.stateDir}/s3-meta`;

/**
 * Starts versitygw over `stateDir` (or finds the one already running there), and returns its pid
 * once every bucket exists. Metadata goes to extended attributes; where the filesystem has none
 * the server refuses to start, and it is started again with a sidecar directory, kept from then on.
 */
export async function startS3(binary: string, opts: S3ServerOptions): Promise<number> {
  await mkdir(dataDir(opts), { recursive: true });
  const sidecar = await access(metaDir(opts)).then(() => true, () => false);
  try {
    return await ensureService(spec(binary, opts, sidecar), opts.port, () => ensureBuckets(opts), 30_000);
  } catch (err) {
    if (sidecar || !(await logTail(`${opts.stateDir}/s3.log`)).includes('xattr check failed')) throw err;
    await mkdir(metaDir(opts), { recursive: true });
    return ensureService(spec(binary, opts, true), opts.port, () => ensureBuckets(opts), 30_000);
  }
}

async function ensureBuckets(opts: S3ServerOptions): Promise<boolean> {
  const client = createS3Client(localS3Connection(opts.port));
  try {
    for (const bucket of opts.buckets) {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 404) throw err;
        try {
          await client.send(new CreateBucketCommand({ Bucket: bucket }));
        } catch (createErr) {
          // A second `stack up` starting at the same moment created it first.
          if ((createErr as Error).name !== 'BucketAlreadyOwnedByYou') throw createErr;
        }
      }
    }
    return true;
  } finally {
    client.destroy();
  }
}

export function stopS3(opts: Pick<S3ServerOptions, 'stateDir'>): Promise<boolean> {
  return stopService(`${opts.stateDir}/s3.pid`);
}
