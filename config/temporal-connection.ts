import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, TLSConfig } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { loadClientConfigProfile } from '@temporalio/envconfig';
import type { ClientConfigProfile, ConfigDataSource } from '@temporalio/envconfig';
import { z } from 'zod';
import { ConfigError, formatIssues } from './run-config.js';

/**
 * How workers and the CLI reach Temporal: address, namespace, TLS, client certificate, API key.
 * The certificates, key and API key live only inside the two option builders, so printing or
 * serialising this object (or a WorkerEnv holding it) never shows them, and nothing here is ever
 * passed to a workflow.
 */
export interface TemporalConnection {
  address: string;
  namespace: string;
  /** For messages: `plaintext`, `TLS` or `mTLS`, plus `API key`; never the secrets themselves. */
  security: string;
  /** For `Connection.connect` (client: the CLI). */
  clientOptions(): ConnectionOptions;
  /** For `NativeConnection.connect` (workers). */
  nativeOptions(): NativeConnectionOptions;
}

/**
 * The `temporal` CLI's flag variables, read as the SDK's environment configuration reads its own
 * names (`@temporalio/envconfig`, which also reads TEMPORAL_CONFIG_FILE profiles,
 * TEMPORAL_PROFILE and TEMPORAL_GRPC_META_*), so that one environment serves both.
 */
const cliNames = {
  TEMPORAL_TLS_CERT: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
  TEMPORAL_TLS_CERT_DATA: 'TEMPORAL_TLS_CLIENT_CERT_DATA',
  TEMPORAL_TLS_KEY: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
  TEMPORAL_TLS_KEY_DATA: 'TEMPORAL_TLS_CLIENT_KEY_DATA',
  TEMPORAL_TLS_CA: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
  TEMPORAL_TLS_CA_DATA: 'TEMPORAL_TLS_SERVER_CA_CERT_DATA',
} as const;

const scalarsSchema = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^\S+:\d+$/, 'expected host:port').optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  /** The CLI's spelling: true forces TLS without certificates (an API-key cloud namespace), false turns it off. */
  TEMPORAL_TLS: z.enum(['true', 'false', '1', '0'], { error: 'expected true, false, 1 or 0' }).optional(),
});

const defaults = { address: '127.0.0.1:7233', namespace: 'default' };

export function parseTemporalConnection(env: NodeJS.ProcessEnv): TemporalConnection {
  const scalars = scalarsSchema.safeParse(env);
  if (!scalars.success) {
    const issues = formatIssues(scalars.error);
    throw new ConfigError(`invalid Temporal connection environment: ${issues.join('; ')}`, issues);
  }
  const vars = withCliNames(env);
  const profileName = vars.TEMPORAL_PROFILE ?? 'default';
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ overrideEnvVars: vars });
  } catch (err) {
    throw withCause(new ConfigError(`Temporal profile '${profileName}' (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE): ${(err as Error).message}`), err);
  }
  const name = (field: TlsField) => sourceName(field, env, profileName);
  const tls = profile.tls ?? {};
  const certificates = (['clientCert', 'clientKey', 'serverCACert'] as const).filter((f) => tls[f]);
  if (tls.disabled && (certificates.length || tls.serverName)) {
    const set = [...certificates.map(name), ...(tls.serverName ? [name('serverName')] : [])];
    throw new ConfigError(`${name('disabled')} turns TLS off, but ${set.join(', ')} is set`);
  }
  if (!tls.clientCert !== !tls.clientKey) {
    const [given, missing] = tls.clientCert ? (['clientCert', 'clientKey'] as const) : (['clientKey', 'clientCert'] as const);
    throw new ConfigError(`${name(given)} is set but ${envNames[missing][0]} is not: a client certificate needs its private key and the key its certificate`);
  }
  const pem = (field: 'clientCert' | 'clientKey' | 'serverCACert') => readPem(tls[field], name(field));
  const clientCert = pem('clientCert');
  const clientKey = pem('clientKey');
  const serverCA = pem('serverCACert');

  // As the CLI does: any TLS setting or an API key turns TLS on, unless TEMPORAL_TLS says false.
  const apiKey = profile.apiKey || undefined;
  const useTls = tls.disabled === undefined ? Boolean(apiKey || certificates.length || tls.serverName || profile.tls) : !tls.disabled;
  const tlsOption: TLSConfig | boolean =
    useTls && (clientCert || serverCA || tls.serverName)
      ? {
          ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
          ...(serverCA ? { serverRootCACertificate: serverCA } : {}),
          ...(clientCert && clientKey ? { clientCertPair: { crt: clientCert, key: clientKey } } : {}),
        }
      : useTls;
  const address = profile.address ?? defaults.address;
  const namespace = profile.namespace ?? defaults.namespace;
  const shared = {
    address,
    ...(tlsOption ? { tls: tlsOption } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(profile.grpcMeta && Object.keys(profile.grpcMeta).length ? { metadata: { ...profile.grpcMeta } } : {}),
  };
  return {
    address,
    namespace,
    security: [clientCert ? 'mTLS' : tlsOption ? 'TLS' : 'plaintext', ...(apiKey ? ['API key'] : [])].join(' + '),
    clientOptions: () => ({ ...shared }),
    nativeOptions: () => ({ ...shared }),
  };
}

/** The environment as envconfig reads it, with the CLI's names copied to envconfig's. */
function withCliNames(env: NodeJS.ProcessEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v;
  for (const [cli, sdk] of Object.entries(cliNames)) {
    const value = env[cli];
    if (value === undefined) continue;
    if (env[sdk] !== undefined && env[sdk] !== value) throw new ConfigError(`${cli} and ${sdk} are both set, to different values: set one`);
    vars[sdk] = value;
  }
  return vars;
}

type TlsField = 'clientCert' | 'clientKey' | 'serverCACert' | 'serverName' | 'disabled';

const envNames: Record<TlsField, readonly string[]> = {
  clientCert: ['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'TEMPORAL_TLS_CERT_DATA', 'TEMPORAL_TLS_CLIENT_CERT_DATA'],
  clientKey: ['TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'TEMPORAL_TLS_KEY_DATA', 'TEMPORAL_TLS_CLIENT_KEY_DATA'],
  serverCACert: ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'TEMPORAL_TLS_CA_DATA', 'TEMPORAL_TLS_SERVER_CA_CERT_DATA'],
  serverName: ['TEMPORAL_TLS_SERVER_NAME'],
  disabled: ['TEMPORAL_TLS'],
};

const tomlNames: Record<TlsField, string> = {
  clientCert: 'client_cert_path',
  clientKey: 'client_key_path',
  serverCACert: 'server_ca_cert_path',
  serverName: 'server_name',
  disabled: 'disabled',
};

/** The variable a setting came from, or its place in the profile file when no variable set it. */
function sourceName(field: TlsField, env: NodeJS.ProcessEnv, profile: string): string {
  return envNames[field].find((n) => env[n] !== undefined) ?? `tls.${tomlNames[field]} of Temporal profile '${profile}'`;
}

function readPem(source: ConfigDataSource | undefined, name: string): Buffer | undefined {
  if (!source) return undefined;
  let bytes: Buffer;
  if ('path' in source) {
    try {
      bytes = readFileSync(source.path);
    } catch (err) {
      throw withCause(new ConfigError(`${name}: cannot read ${source.path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`), err);
    }
  } else {
    bytes = Buffer.from(source.data);
  }
  // Caught here rather than as an opaque TLS error at the first connection attempt.
  if (!bytes.includes('-----BEGIN ')) {
    throw new ConfigError(`${name}: ${'path' in source ? source.path : 'the value'} is not PEM (no -----BEGIN line)`);
  }
  return bytes;
}

/**
 * The error for a failed first connection: the address, the security and the namespace (never the
 * secrets) and, over TLS, what a TLS handshake made with the same settings says. Neither SDK
 * client says it reliably: the gRPC client reports a missed deadline, the workers' client often a
 * closed connection, when the server refuses the client certificate.
 */
export async function connectionError(temporal: TemporalConnection, err: unknown): Promise<Error> {
  const message = err instanceof Error ? err.message : String(err);
  const tls = temporal.nativeOptions().tls;
  const problem = tls ? await tlsProblem(temporal.address, typeof tls === 'object' ? tls : {}) : undefined;
  return new Error(`cannot connect to Temporal at ${temporal.address} (${temporal.security}, namespace ${temporal.namespace}): ${message}${problem ? `; TLS: ${problem}` : ''}`, { cause: err });
}

/**
 * TLS 1.3 refuses a client certificate only after the handshake, with an alert; a server that
 * accepts it answers with its HTTP/2 settings. Nothing is written, so the alert cannot be lost to
 * a reset caused by the write.
 */
function tlsProblem(address: string, config: TLSConfig): Promise<string | undefined> {
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator).replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port: Number(address.slice(separator + 1)),
      servername: config.serverNameOverride ?? host,
      ALPNProtocols: ['h2'],
      ...(config.serverRootCACertificate ? { ca: Buffer.from(config.serverRootCACertificate) } : {}),
      ...(config.clientCertPair ? { cert: Buffer.from(config.clientCertPair.crt), key: Buffer.from(config.clientCertPair.key) } : {}),
    });
    const done = (problem: string | undefined) => (socket.destroy(), clearTimeout(timer), resolve(problem));
    const timer = setTimeout(() => done(undefined), 5_000);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      // OpenSSL's "…:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:…" -> the reason.
      const reason = /SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1] ?? err.message.trim();
      done(err.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' ? `${reason}: the server wants a client certificate (TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY)` : reason);
    });
    socket.once('data', () => done(undefined));
    socket.once('end', () => done('the server closed the connection after the TLS handshake'));
  });
}

function withCause(error: ConfigError, cause: unknown): ConfigError {
  return Object.assign(error, { cause });
}
