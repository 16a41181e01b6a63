import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * What the proxy does with one request. Faults are consumed in order, one per request; once the
 * queue is empty (or for `always`) requests pass through to the upstream server.
 */
export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  /** Drop the connection without an answer, as a crashed or restarted server does. */
  | { kind: 'reset' }
  /** Accept the request and never answer, so that only the client's timeout ends it. */
  | { kind: 'hang' }
  /** Forward, then replace the upstream body with `rewrite(body)` (malformed model output). */
  | { kind: 'rewrite'; rewrite: (body: Buffer) => Buffer | string };

export interface FaultProxy {
  /** Base URL to give clients instead of the upstream one (keeps the upstream path, e.g. /v1). */
  baseUrl: string;
  /** Faults to apply to the next requests, in order. */
  enqueue(...faults: Fault[]): void;
  /** A fault applied to every request until cleared with `always(undefined)`. */
  always(fault: Fault | undefined): void;
  /** Requests received so far, faulted or not. */
  readonly requests: number;
  /** Request bodies that reached the upstream server. */
  readonly forwarded: unknown[];
  /** The same requests with their method and path (e.g. `POST /collective_rpc`). */
  readonly calls: { route: string; body: unknown }[];
  close(): Promise<void>;
}

/** A tiny HTTP proxy in front of a model server that injects 5xx, 429, resets, hangs and rewritten bodies. */
export async function startFaultProxy(upstreamBaseUrl: string): Promise<FaultProxy> {
  const upstream = new URL(upstreamBaseUrl);
  const queue: Fault[] = [];
  let standing: Fault | undefined;
  let requests = 0;
  const forwarded: unknown[] = [];
  const calls: { route: string; body: unknown }[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    requests++;
    const fault = queue.shift() ?? standing;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (fault?.kind === 'reset') return req.socket.destroy();
      if (fault?.kind === 'hang') return;
      if (fault?.kind === 'status') {
        res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
        return res.end(fault.body ?? JSON.stringify({ error: { message: `injected ${fault.status}`, type: 'server_error' } }));
      }
      forward(req, res, body, fault?.kind === 'rewrite' ? fault.rewrite : undefined);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer, rewrite?: (body: Buffer) => Buffer | string) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      parsed = body.toString('utf8');
    }
    forwarded.push(parsed);
    calls.push({ route: `${req.method} ${req.url}`, body: parsed });
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: { ...req.headers, host: upstream.host } },
      (up) => {
        const parts: Buffer[] = [];
        up.on('data', (c: Buffer) => parts.push(c));
        up.on('end', () => {
          const answer = rewrite ? Buffer.from(rewrite(Buffer.concat(parts))) : Buffer.concat(parts);
          res.writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? 'application/json', 'content-length': answer.length });
          res.end(answer);
        });
      },
    );
    out.on('error', () => req.socket.destroy());
    out.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}${upstream.pathname.replace(/\/+$/, '')}`,
    enqueue: (...faults) => void queue.push(...faults),
    always: (fault) => void (standing = fault),
    get requests() {
      return requests;
    },
    forwarded,
    calls,
    async close() {
      // Hanging requests hold their sockets open; close() would wait for them forever.
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
