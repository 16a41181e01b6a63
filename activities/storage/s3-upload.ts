import { createReadStream } from 'node:fs';
import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, S3ServiceException } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const MiB = 1024 * 1024;
/** S3 accepts at most 10,000 parts in one multipart upload. */
const maxParts = 10_000;

export interface UploadOptions {
  /**
   * The smallest part size, in bytes (S3's minimum is 5 MiB). Larger files get larger parts, so
   * that no file needs more than 10,000.
   */
  minPartSize: number;
  /** Parts in flight at once; memory held is about (queueSize + 1) parts. */
  queueSize: number;
}

/** 8 MiB parts (the AWS CLI's default) in a queue of 4: about 40 MiB of memory per upload. */
export const defaultUploadOptions: UploadOptions = { minPartSize: 8 * MiB, queueSize: 4 };

/** The part size for a file of `size` bytes: whole MiB, at least `minPartSize`, at most 10,000 parts. */
export function partSizeFor(size: number, minPartSize: number): number {
  return Math.max(minPartSize, Math.ceil(size / maxParts / MiB) * MiB);
}

/**
 * Streams a local file to `key`: one PutObject when it fits in a part, otherwise a multipart
 * upload whose parts go up in parallel. Nothing is visible at `key` until the upload completes;
 * on failure the upload is aborted (lib-storage's default), and since a killed process cannot
 * abort, stale uploads of the same key are aborted before a new multipart upload starts.
 */
export async function uploadFile(
  client: S3Client,
  target: { bucket: string; key: string; path: string; size: number },
  options: UploadOptions,
): Promise<void> {
  const { bucket, key, path, size } = target;
  const partSize = partSizeFor(size, options.minPartSize);
  if (size > partSize) await abortStaleUploads(client, bucket, key);
  const upload = new Upload({
    client,
    partSize,
    queueSize: options.queueSize,
    // The file is read as uploaders take parts, so memory stays at the parts in flight.
    params: { Bucket: bucket, Key: key, Body: createReadStream(path, { highWaterMark: MiB }), ContentLength: size },
  });
  await upload.done();
}

/** Aborts every incomplete multipart upload of exactly `key` (the listing matches by prefix). */
async function abortStaleUploads(client: S3Client, bucket: string, key: string): Promise<void> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const page = await client.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
    );
    for (const stale of page.Uploads ?? []) {
      if (stale.Key !== key || !stale.UploadId) continue;
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: stale.UploadId }));
      } catch (err) {
        // Completed or aborted meanwhile by its own writer: gone either way.
        if (!(err instanceof S3ServiceException && (err.name === 'NoSuchUpload' || err.$metadata.httpStatusCode === 404))) throw err;
      }
    }
    [keyMarker, uploadIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextUploadIdMarker] : [undefined, undefined];
  } while (keyMarker);
}

