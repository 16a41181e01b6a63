import { parseArgs } from 'node:util';
import { Client } from '@temporalio/client';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { parseRunConfig } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { connectTemporal } from '../temporal.js';
import { nightlySchedule } from '../../infra/schedules.js';
import { cleared, runPlan } from '../preflight/index.js';

/**
 * Nightly training on a Temporal Schedule: each firing continues the named run for N more
 * iterations from its last completed one. A firing while the previous night still runs is
 * skipped. Schedules live in the Temporal server, so they survive its restarts.
 */
const schedule: Command = {
  summary: 'schedule create --cron "0 2 * * *" --config FILE [--iterations N] [--skip-preflight] | list | pause ID | unpause ID | delete ID',
  async run([verb, ...argv]) {
    if (!['create', 'list', 'pause', 'unpause', 'delete'].includes(verb ?? '')) throw new UsageError('expected create, list, pause, unpause or delete');
    // The arguments and the config are checked before anything connects: a typo costs no round trip.
    const create =
      verb === 'create'
        ? parseArgs({
            args: argv,
            options: { cron: { type: 'string' }, config: { type: 'string' }, iterations: { type: 'string' }, 'skip-preflight': { type: 'boolean', default: false } },
          }).values
        : undefined;
    const more = Number(create?.iterations ?? 1);
    if (create && (!create.cron || !create.config)) throw new UsageError('create needs --cron "<expression>" and --config FILE');
    if (!Number.isInteger(more) || more < 1) throw new UsageError('--iterations must be a positive integer');
    const file = create?.config ? await readConfigFile(create.config, parseRunConfig) : undefined;
    const env = parseWorkerEnv(process.env);
    const connection = await connectTemporal(env.temporal);
    const client = new Client({ connection, namespace: env.namespace });
    try {
      switch (verb) {
        case 'create': {
          const values = create as { cron: string; config: string };
          const { raw, config } = file!;
          if (!(await cleared('schedule create', runPlan(config), { env, client, skip: create?.['skip-preflight'] }))) return 1;
          const handle = await client.schedule.create(nightlySchedule({ raw, runId: config.runId, cron: values.cron, moreIterations: more }));
          console.log(`schedule ${handle.scheduleId}: ${values.cron}, ${more} more iteration(s) of run ${config.runId} per firing`);
          return 0;
        }
        case 'list': {
          for await (const s of client.schedule.list()) {
            console.log(`${s.scheduleId}\t${s.state.paused ? 'paused' : 'active'}\tnext ${s.info.nextActionTimes[0]?.toISOString() ?? '-'}`);
          }
          return 0;
        }
        case 'pause':
        case 'unpause':
        case 'delete': {
          const [id] = argv;
          if (!id) throw new UsageError(`${verb} needs a schedule ID (see schedule list)`);
          const handle = client.schedule.getHandle(id);
          if (verb === 'pause') await handle.pause('paused from code-a1 schedule pause');
          else if (verb === 'unpause') await handle.unpause('unpaused from code-a1 schedule unpause');
          else await handle.delete();
          console.log(`schedule ${id}: ${verb}d`);
          return 0;
        }
        default:
          throw new UsageError('expected create, list, pause, unpause or delete');
      }
    } finally {
      await connection.close();
    }
  },
};
export default schedule;

