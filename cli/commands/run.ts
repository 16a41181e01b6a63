import { parseArgs } from 'node:util';
import { Client } from '@temporalio/client';
import type { Command } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { UsageError } from '../command.js';
import { parseRunConfig } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { connectTemporal } from '../temporal.js';
import { followRun, startOrAttach } from '../follow-run.js';

/**
 * Starts a training run (or attaches to it when it is already running; a finished or terminated
 * run with the same ID continues after its last completed iteration), shows its progress and ends
 * with a table of the iteration metrics and an HTML report of them (`code-a1 report`).
 */
const run: Command = {
  summary: 'run --config FILE [--detach]: start or continue a training run and follow it',
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, detach: { type: 'boolean', default: false } } });
    if (!values.config) throw new UsageError('--config FILE is required');
    const { raw, config } = await readConfigFile(values.config, parseRunConfig);
    const env = parseWorkerEnv(process.env);
    const connection = await connectTemporal(env.temporal);
    try {
      const client = new Client({ connection, namespace: env.namespace });
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
