import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export interface Certificates {
  dir: string;
  /** Paths of the PEM files. */
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** The name in the server certificate (TEMPORAL_TLS_SERVER_NAME); the proxy listens on an IP. */
  serverName: string;
  read(path: string): Promise<Buffer>;
}

/**
 * A throwaway CA with a server and a client certificate, made with openssl in `dir`. X.509 v3 with
 * the usual extensions: the SDK's Rust core (rustls) rejects v1 certificates.
 */
export async function makeCertificates(dir: string): Promise<Certificates> {
  const serverName = 'temporal.code-a1.test';
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execa('openssl', args, { cwd: dir });
  await openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=code-a1 test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
  const sign = async (name: string, subject: string, extensions: string) => {
    await writeFile(file(`${name}.ext`), extensions);
    await openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  };
  await sign('server', `/CN=${serverName}`, `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:${serverName}\n`);
  await sign('client', '/CN=code-a1-worker', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: file('ca.pem'),
    serverCert: file('server.pem'),
    serverKey: file('server.key'),
    clientCert: file('client.pem'),
    clientKey: file('client.key'),
    serverName,
    read: (path) => readFile(path),
  };
}
