import { parseArgs } from 'node:util';
import { Client } from '@temporalio/client';
import type { Command } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { UsageError } from '../command.js';
import { parseRunConfig } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { connectTemporal } from '../temporal.js';
import { followRun, startOrAttach } from '../follow-run.js';
import { cleared, runPlan } from '../preflight/index.js';
import { positiveInt } from './exec.js';

/**
 * Starts a training run (or attaches to it when it is already running; a finished or terminated
 * run with the same ID continues after its last completed iteration), shows its progress and ends
 * with a table of the iteration metrics and an HTML report of them (`code-a1 report`).
 */
const run: Command = {
  summary: 'run --config FILE [--detach] [--skip-preflight] [--wait-for-workers SECONDS]: check (as preflight does), start or continue a training run and follow it',
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        detach: { type: 'boolean', default: false },
        'skip-preflight': { type: 'boolean', default: false },
        'wait-for-workers': { type: 'string' },
      },
    });
    if (!values.config) throw new UsageError('--config FILE is required');
    const waitForWorkersMs = positiveInt(values['wait-for-workers'], '--wait-for-workers', 0) * 1000;
    const { raw, config } = await readConfigFile(values.config, parseRunConfig);
    const env = parseWorkerEnv(process.env);
    const connection = await connectTemporal(env.temporal);
    try {
      const client = new Client({ connection, namespace: env.namespace });
      if (!(await cleared('run', runPlan(config), { env, client, waitForWorkersMs, skip: values['skip-preflight'], unlessRunning: config.runId }))) return 1;
      const handle = await startOrAttach(client, config.runId, { config: raw });
      console.log(`run ${config.runId}: workflow ${handle.workflowId} on ${env.temporalAddress} (namespace ${env.namespace})`);
      if (!values.detach) await followRun(client, handle, config, env);
      return 0;
    } finally {
      await connection.close();
    }
  },
};
export default run;
