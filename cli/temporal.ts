import { connect as tlsConnect } from 'node:tls';
import { Connection } from '@temporalio/client';
import type { TemporalConnection } from '../config/temporal-connection.js';

/**
 * The CLI's connection to Temporal. A failure names the address and the security in use (never
 * the secrets) and, over TLS, what the TLS handshake said: the gRPC client itself only reports a
 * missed deadline when, say, the server wants a client certificate.
 */
export async function connectTemporal(temporal: TemporalConnection): Promise<Connection> {
  try {
    return await Connection.connect(temporal.clientOptions());
  } catch (err) {
    const tls = temporal.clientOptions().tls ? await tlsProblem(temporal) : undefined;
    const detail = tls ? `${(err as Error).message}; TLS: ${tls}` : (err as Error).message;
    throw new Error(`cannot connect to Temporal at ${temporal.address} (${temporal.security}, namespace ${temporal.namespace}): ${detail}`, { cause: err });
  }
}

/** A TLS handshake as the gRPC client makes it, plus one read (TLS 1.3 refuses a client certificate after the handshake). */
function tlsProblem(temporal: TemporalConnection): Promise<string | undefined> {
  const options = temporal.clientOptions().tls;
  const config = typeof options === 'object' && options ? options : {};
  const separator = temporal.address.lastIndexOf(':');
  const host = temporal.address.slice(0, separator).replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port: Number(temporal.address.slice(separator + 1)),
      servername: config.serverNameOverride ?? host,
      ALPNProtocols: ['h2'],
      ...(config.serverRootCACertificate ? { ca: Buffer.from(config.serverRootCACertificate) } : {}),
      ...(config.clientCertPair ? { cert: Buffer.from(config.clientCertPair.crt), key: Buffer.from(config.clientCertPair.key) } : {}),
    });
    const done = (problem: string | undefined) => (socket.destroy(), clearTimeout(timer), resolve(problem));
    const timer = setTimeout(() => done(undefined), 3_000);
    socket.once('error', (err) => done(err.message));
    // No alert within a moment after the handshake: TLS is not the problem.
    socket.once('secureConnect', () => setTimeout(() => done(undefined), 500));
  });
}
