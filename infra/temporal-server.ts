import { execa } from 'execa';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import type { ServiceSpec } from './process.js';
import { ensureService, stopService } from './process.js';

export interface TemporalServerOptions {
  /** Directory holding the SQLite database, pid file and log. */
  stateDir: string;
  port: number;
  uiPort: number;
  /** Namespaces created at start-up; the first is the one health checks use. */
  namespaces: string[];
  ip?: string;
}

export async function temporalBinary(repoRoot: string): Promise<string> {
  const { stdout } = await execa(`${repoRoot}/infra/install-temporal.sh`, { stderr: 'inherit' });
  return stdout.trim();
}

export function temporalAddress(opts: TemporalServerOptions): string {
  return `${opts.ip ?? '127.0.0.1'}:${opts.port}`;
}

function spec(binary: string, opts: TemporalServerOptions): ServiceSpec {
  return {
    name: 'temporal',
    command: binary,
    args: [
      'server', 'start-dev',
      '--db-filename', `${opts.stateDir}/temporal.db`,
      '--ip', opts.ip ?? '127.0.0.1',
      '--port', String(opts.port),
      '--ui-port', String(opts.uiPort),
      ...opts.namespaces.flatMap((n) => ['--namespace', n]),
      ...Object.entries(searchAttributes).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
      '--dynamic-config-value', 'frontend.enableServerVersionCheck=false',
      '--log-level', 'warn',
    ],
    pidFile: `${opts.stateDir}/temporal.pid`,
    logFile: `${opts.stateDir}/temporal.log`,
    env: { ...process.env, TEMPORAL_VERSION_CHECK_DISABLED: '1' },
  };
}

/**
 * Search attributes that make runs findable in the UI and CLI (workflows/search-attributes.ts).
 * A workflow that upserts one the namespace lacks has its workflow tasks rejected until it
 * exists, so they are registered at every start, also on a server started by an older version.
 */
const searchAttributes = { CodeA1RunId: 'Keyword', CodeA1Iteration: 'Int', CodeA1Stage: 'Keyword', CodeA1Blocked: 'Bool' } as const;

/** Starts the dev server (or finds it running) and returns once its namespace answers and has the search attributes. */
export async function startTemporal(binary: string, opts: TemporalServerOptions): Promise<number> {
  const address = temporalAddress(opts);
  const namespace = opts.namespaces[0] ?? 'default';
  const pid = await ensureService(spec(binary, opts), opts.port, () => namespaceAnswers(address, namespace), 60_000);
  await ensureSearchAttributes(address, opts.namespaces);
  return pid;
}

// A CommonJS package: its namespaces come through the default export under ESM.
const indexedType = proto.temporal.api.enums.v1.IndexedValueType;
const typeOf = { Keyword: indexedType.INDEXED_VALUE_TYPE_KEYWORD, Int: indexedType.INDEXED_VALUE_TYPE_INT, Bool: indexedType.INDEXED_VALUE_TYPE_BOOL };

/** Adds the project's search attributes each namespace lacks (the operator API; idempotent). */
export async function ensureSearchAttributes(address: string, namespaces: string[]): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    for (const namespace of namespaces) {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
      const missing = Object.entries(searchAttributes).filter(([name]) => !(name in (customAttributes ?? {})));
      if (missing.length === 0) continue;
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, typeOf[type]])),
      });
    }
  } finally {
    await connection.close();
  }
}

async function namespaceAnswers(address: string, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1_000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } finally {
    await connection.close();
  }
}

export function stopTemporal(opts: Pick<TemporalServerOptions, 'stateDir'>): Promise<boolean> {
  return stopService(`${opts.stateDir}/temporal.pid`);
}
