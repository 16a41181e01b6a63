import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

/**
 * A gRPC front for the plaintext dev server, as a production Temporal has one: it terminates TLS
 * (requiring a client certificate signed by `ca` when `requireClientCert`) and forwards every
 * HTTP/2 stream to the server, recording each call's path and `authorization` header. It speaks
 * HTTP/2 itself because the SDK's Rust core insists on ALPN `h2`, which stunnel cannot offer.
 */
export interface GrpcProxy {
  address: string;
  calls: { path: string; authorization: string | undefined }[];
  close(): Promise<void>;
}

export interface ProxyTls {
  key: Buffer;
  cert: Buffer;
  ca: Buffer;
  requireClientCert: boolean;
}

const END_STREAM = 0x1;

export async function startGrpcProxy(upstream: string, tls: ProxyTls): Promise<GrpcProxy> {
  const calls: GrpcProxy['calls'] = [];
  const upstreamSession = http2.connect(`http://${upstream}`);
  upstreamSession.on('error', () => undefined);
  const server = http2.createSecureServer({
    key: tls.key,
    cert: tls.cert,
    ca: tls.ca,
    requestCert: tls.requireClientCert,
    rejectUnauthorized: tls.requireClientCert,
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    calls.push({ path, authorization: headers.authorization });
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name === ':scheme' || name === ':authority') continue;
      forwarded[name] = value;
    }
    const up = upstreamSession.request(forwarded);
    let trailers: http2.IncomingHttpHeaders = {};
    up.on('response', (response, flags) => {
      const ended = (flags & END_STREAM) !== 0;
      // A gRPC error can come as headers only ("trailers-only"): pass it on the same way.
      stream.respond(response, ended ? { endStream: true } : { waitForTrailers: true });
      if (!ended) up.pipe(stream);
    });
    up.on('trailers', (t) => (trailers = t));
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    stream.pipe(up);
    stream.on('close', () => up.destroyed || up.close(http2.constants.NGHTTP2_CANCEL));
    up.on('error', () => stream.destroyed || stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => (sessions.add(session), session.on('close', () => sessions.delete(session))));
  server.on('sessionError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    calls,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const session of sessions) session.destroy();
      upstreamSession.destroy();
      await closed;
    },
  };
}
