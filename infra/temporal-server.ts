import { execa } from 'execa';
import { Connection } from '@temporalio/client';
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
      // Search attributes that make runs findable in the UI and CLI.
      '--search-attribute', 'CodeA1RunId=Keyword',
      '--search-attribute', 'CodeA1Iteration=Int',
      '--dynamic-config-value', 'frontend.enableServerVersionCheck=false',
      '--log-level', 'warn',
    ],
    pidFile: `${opts.stateDir}/temporal.pid`,
    logFile: `${opts.stateDir}/temporal.log`,
    env: { ...process.env, TEMPORAL_VERSION_CHECK_DISABLED: '1' },
  };
}

/** Starts the dev server (or finds it running) and returns once its namespace answers. */
export function startTemporal(binary: string, opts: TemporalServerOptions): Promise<number> {
  const address = temporalAddress(opts);
  const namespace = opts.namespaces[0] ?? 'default';
  return ensureService(spec(binary, opts), opts.port, () => namespaceAnswers(address, namespace), 60_000);
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
