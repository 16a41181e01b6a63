import { createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import type { ObjectStore } from './object-store.js';
import { StorageConfigError, assertKey, toBytes } from './object-store.js';
import type { UploadOptions } from './s3-upload.js';
import { defaultUploadOptions, uploadFile } from './s3-upload.js';

/** How workers reach an S3-protocol endpoint. Read from the worker's environment, never from run config. */
export interface S3Connection {
  endpoint?: string | undefined;
  region: string;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
}

export function createS3Client(conn: S3Connection): S3Client {
  return new S3Client({
    region: conn.region,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
    ...(conn.accessKeyId && conn.secretAccessKey
      ? { credentials: { accessKeyId: conn.accessKeyId, secretAccessKey: conn.secretAccessKey } }
      : {}),
    forcePathStyle: conn.forcePathStyle,
    // Temporal owns retrying: a failed call fails the activity attempt, which is retried whole.
    maxAttempts: 1,
    // Plain payload signing; aws-chunked uploads are mis-stored by simple S3 servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function statusOf(err: unknown): number | undefined {
  return err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
}

/** Why retrying cannot fix `err`, or undefined when it might. */
function permanentReason(err: unknown): string | undefined {
  const status = statusOf(err);
  const name = (err as Error | undefined)?.name;
  if (name === 'EntityTooLarge' || status === 413 || /too large/i.test((err as Error | undefined)?.message ?? '')) {
    return `${name ?? status}: the server refuses an object this large`;
  }
  if (name === 'NoSuchBucket') return 'NoSuchBucket: the bucket does not exist';
  // versitygw answers an unknown access key with 404 XAdminUserNotFound rather than 403.
  if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'XAdminUserNotFound') {
    return `${name ?? status}: access denied, check the S3 credentials`;
  }
  return undefined;
}

/** Errors retrying cannot fix become StorageConfigError (non-retryable); the rest stay as they are. */
function classify(err: unknown, what: string): unknown {
  const reason = permanentReason(err);
  return reason ? new StorageConfigError(`${what}: ${reason}`, { cause: err }) : err;
}

export interface S3StoreOptions {
  upload: UploadOptions;
}

export class S3Store implements ObjectStore {
  readonly uri: string;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly options: S3StoreOptions = { upload: defaultUploadOptions },
  ) {
    this.uri = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
  }

  private key(key: string): string {
    assertKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private async send<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw classify(err, `${what} in ${this.uri}`);
    }
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
    } catch (err) {
      // Only NoSuchKey means "no object": other 404s (no bucket, unknown access key) are failures.
      if ((err as Error).name === 'NoSuchKey') return undefined;
      throw classify(err, `get ${key} in ${this.uri}`);
    }
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    await this.send(`put ${key}`, () =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: toBytes(body) })),
    );
  }

  async putIfAbsent(key: string, body: Uint8Array | string): Promise<boolean> {
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: toBytes(body), IfNoneMatch: '*' }),
      );
      return true;
    } catch (err) {
      // 412: the object exists. 409: a concurrent conditional write of the same key won.
      if (statusOf(err) === 412 || statusOf(err) === 409) return false;
      throw classify(err, `put-if-absent ${key} in ${this.uri}`);
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return true;
    } catch (err) {
      if (statusOf(err) === 404 || (err as Error).name === 'NotFound') return false;
      throw classify(err, `head ${key} in ${this.uri}`);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    let token: string | undefined;
    do {
      const page = await this.send(`list ${prefix}`, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix ? `${this.prefix}/${prefix}` : prefix,
            ContinuationToken: token,
          }),
        ),
      );
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key.slice(strip));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async delete(key: string): Promise<void> {
    await this.send(`delete ${key}`, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) })),
    );
  }

  async putFile(key: string, path: string): Promise<void> {
    const { size } = await stat(path);
    await this.send(`upload of ${key} (${size} bytes)`, () =>
      uploadFile(this.client, { bucket: this.bucket, key: this.key(key), path, size }, this.options.upload),
    );
  }

  async getFile(key: string, path: string): Promise<boolean> {
    let body: Readable;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      body = out.Body as Readable;
    } catch (err) {
      if ((err as Error).name === 'NoSuchKey') return false;
      throw classify(err, `get ${key} in ${this.uri}`);
    }
    await mkdir(dirname(path), { recursive: true });
    await pipeline(body, createWriteStream(path));
    return true;
  }
}
