import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A recording proxy in front of an S3 server: it forwards every request unchanged, the Host header
 * included (SigV4 signs it, and the server checks the signature against the Host it receives, so
 * a client that signed for the proxy's address is still accepted), streams bodies both ways, and
 * counts the writes that landed: a PUT of an object answered 2xx, or a completed multipart upload.
 * A conditional PUT that loses (412/409), an upload part and a bucket creation are not writes of an
 * object. Counting where the writes land is what makes "written once" able to fail: a stage that
 * writes its output twice shows a count of 2, whatever the stage believes it did.
 */
export interface S3PutCounter {
  /** Point S3 clients here instead of at the server. */
  endpoint: string;
  /** Successful writes per `bucket/key`, in order of first write. */
  writes(): Map<string, number>;
  /** The next successful write whose `bucket/key` matches is held: the server has it, the client has no answer yet. */
  holdWrite(match: (object: string) => boolean): HeldWrite;
  close(): Promise<void>;
}

export interface HeldWrite {
  /** Resolves with the object's `bucket/key` once its write has landed and its answer is held. */
  landed: Promise<string>;
  /** Sends the held answer (to a client that may be gone by then). */
  release(): void;
}

interface Hold {
  match: (object: string) => boolean;
  landed: (object: string) => void;
  released: Promise<void>;
}

export async function startS3PutCounter(upstream: string): Promise<S3PutCounter> {
  const target = new URL(upstream);
  const counts = new Map<string, number>();
  const holds: Hold[] = [];

  function forward(req: IncomingMessage, res: ServerResponse): void {
    const upstreamRequest = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      async (upstreamResponse) => {
        const object = writtenObject(req, upstreamResponse.statusCode ?? 0);
        if (object !== undefined) {
          counts.set(object, (counts.get(object) ?? 0) + 1);
          const hold = holds.findIndex((h) => h.match(object));
          if (hold >= 0) {
            const [{ landed, released }] = holds.splice(hold, 1) as [Hold];
            landed(object);
            await released;
          }
        }
        if (res.destroyed) return void upstreamResponse.destroy();
        res.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
        upstreamResponse.pipe(res);
      },
    );
    // A client killed mid-request must not take the proxy down with it.
    upstreamRequest.on('error', () => res.destroy());
    req.on('error', () => upstreamRequest.destroy());
    res.on('error', () => {});
    req.pipe(upstreamRequest);
  }

  const server = createServer(forward);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    writes: () => new Map(counts),
    holdWrite(match) {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      const landed = new Promise<string>((resolve) => holds.push({ match, landed: resolve, released }));
      return { landed, release };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The `bucket/key` a request wrote, or undefined when it wrote no object: path-style requests
 * (the project's S3 clients force them), so the first path segment is the bucket.
 */
function writtenObject(req: IncomingMessage, status: number): string | undefined {
  if (status < 200 || status >= 300) return undefined;
  const url = new URL(req.url ?? '/', 'http://s3');
  const object = decodeURIComponent(url.pathname.slice(1));
  if (!object.includes('/')) return undefined;
  const uploadId = url.searchParams.has('uploadId');
  if (req.method === 'PUT' && !uploadId) return object;
  if (req.method === 'POST' && uploadId) return object;
  return undefined;
}

/**
 * The keys among `expected` not written exactly once, and any other key under `prefix` written
 * more than once, with their counts (`bucket/key` → count); empty when every write happened once.
 */
export function notWrittenOnce(writes: Map<string, number>, prefix: string, expected: string[]): Map<string, number> {
  const offending = new Map<string, number>();
  for (const key of expected) if (writes.get(key) !== 1) offending.set(key, writes.get(key) ?? 0);
  for (const [key, count] of writes) if (key.startsWith(prefix) && count > 1) offending.set(key, count);
  return offending;
}

/** Fails naming every key `notWrittenOnce` finds, with its count. */
export function assertWrittenOnce(writes: Map<string, number>, prefix: string, expected: string[]): void {
  const offending = notWrittenOnce(writes, prefix, expected);
  if (offending.size > 0) assert.fail(`not written exactly once: ${[...offending].map(([key, count]) => `${key} ×${count}`).join(', ')}`);
}
