import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSConfig } from '@temporalio/client';
import { parseTemporalConnection } from '../../config/temporal-connection.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { ConfigError } from '../../config/run-config.js';
import { tempDir } from '../support/config.js';
import { makeCertificates } from '../support/certificates.js';
import type { Certificates } from '../support/certificates.js';

/** No profile file of the machine's user may leak into these cases. */
const base = { TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml' };

function configError(env: NodeJS.ProcessEnv): string {
  try {
    parseTemporalConnection({ ...base, ...env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

describe('Temporal connection settings', () => {
  let certs: Certificates;
  before(async () => (certs = await makeCertificates(await tempDir())));

  it('connect in plaintext to the local dev server when nothing is set', () => {
    const c = parseTemporalConnection(base);
    assert.equal(c.address, '127.0.0.1:7233');
    assert.equal(c.namespace, 'default');
    assert.equal(c.security, 'plaintext');
    assert.deepEqual(c.nativeOptions(), { address: '127.0.0.1:7233' });
  });

  it('read the client certificate, its key and the CA from the temporal CLI variables', async () => {
    const c = parseTemporalConnection({
      ...base,
      TEMPORAL_ADDRESS: 'temporal.example:7233',
      TEMPORAL_NAMESPACE: 'prod',
      TEMPORAL_TLS_CERT: certs.clientCert,
      TEMPORAL_TLS_KEY: certs.clientKey,
      TEMPORAL_TLS_CA: certs.ca,
      TEMPORAL_TLS_SERVER_NAME: certs.serverName,
    });
    assert.equal(c.security, 'mTLS');
    assert.equal(c.namespace, 'prod');
    const tls = c.clientOptions().tls as TLSConfig;
    assert.deepEqual(tls.clientCertPair, { crt: await certs.read(certs.clientCert), key: await certs.read(certs.clientKey) });
    assert.deepEqual(tls.serverRootCACertificate, await certs.read(certs.ca));
    assert.equal(tls.serverNameOverride, certs.serverName);
    assert.deepEqual(c.nativeOptions(), c.clientOptions());
  });

  it('accept the SDK environment configuration names and profile files too', async () => {
    const dir = await tempDir();
    const file = join(dir, 'temporal.toml');
    await writeFile(file, `[profile.prod]\naddress = "temporal.example:7233"\nnamespace = "prod"\n[profile.prod.tls]\nclient_cert_path = "${certs.clientCert}"\nclient_key_path = "${certs.clientKey}"\n`);
    const c = parseTemporalConnection({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca });
    assert.equal(c.address, 'temporal.example:7233');
    assert.equal(c.security, 'mTLS');
    assert.deepEqual((c.nativeOptions().tls as TLSConfig).serverRootCACertificate, await certs.read(certs.ca));
  });

  it('turn TLS on for an API key, or for TEMPORAL_TLS alone', () => {
    const keyed = parseTemporalConnection({ ...base, TEMPORAL_API_KEY: 'k-123' });
    assert.deepEqual(keyed.clientOptions(), { address: '127.0.0.1:7233', tls: true, apiKey: 'k-123' });
    assert.equal(keyed.security, 'TLS + API key');
    assert.equal(parseTemporalConnection({ ...base, TEMPORAL_TLS: 'true' }).nativeOptions().tls, true);
    assert.equal(parseTemporalConnection({ ...base, TEMPORAL_TLS: 'false', TEMPORAL_API_KEY: 'k' }).clientOptions().tls, undefined);
  });

  it('name the variable at fault for a certificate without its key, an unreadable file or a file that is not PEM', () => {
    assert.match(configError({ TEMPORAL_TLS_CERT: certs.clientCert }), /TEMPORAL_TLS_CERT is set but TEMPORAL_TLS_KEY is not/);
    assert.match(configError({ TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey }), /TEMPORAL_TLS_CLIENT_KEY_PATH is set but TEMPORAL_TLS_CERT is not/);
    assert.match(configError({ TEMPORAL_TLS_CERT: certs.clientCert, TEMPORAL_TLS_KEY: '/nonexistent/client.key' }), /^TEMPORAL_TLS_KEY: cannot read \/nonexistent\/client.key \(ENOENT\)/);
    assert.match(configError({ TEMPORAL_TLS_CA: join(certs.dir, 'server.ext') }), /^TEMPORAL_TLS_CA: .*server.ext is not PEM/);
    assert.match(configError({ TEMPORAL_TLS: 'yes' }), /TEMPORAL_TLS: expected true, false, 1 or 0/);
    assert.match(configError({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_CA: certs.ca }), /TEMPORAL_TLS turns TLS off, but TEMPORAL_TLS_CA is set/);
    assert.match(configError({ TEMPORAL_TLS_CA: certs.ca, TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.clientCert }), /TEMPORAL_TLS_CA and TEMPORAL_TLS_SERVER_CA_CERT_PATH are both set/);
    assert.match(configError({ TEMPORAL_PROFILE: 'missing' }), /Temporal profile 'missing'/);
  });

  it('keep the key, the certificates and the API key out of what a worker environment prints', async () => {
    const env = parseWorkerEnv({ ...base, TEMPORAL_TLS_CERT: certs.clientCert, TEMPORAL_TLS_KEY: certs.clientKey, TEMPORAL_API_KEY: 'secret-api-key' });
    const { secrets: _raw, ...printable } = env;
    const key = (await certs.read(certs.clientKey)).toString();
    for (const text of [JSON.stringify(printable), inspect(printable, { depth: 10 })]) {
      assert.ok(!text.includes('secret-api-key') && !text.includes('PRIVATE KEY') && !text.includes(key.slice(40, 80)), text);
      assert.match(text, /mTLS \+ API key/);
    }
  });
});
