import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { endpoints, localStack, stackDown, stackStatus, stackUp, workerEnvironment } from '../../infra/stack.js';

function describe(): string {
  const e = endpoints();
  return [
    `Temporal   ${e.temporalAddress} (namespace ${e.namespace})`,
    `Temporal UI ${e.temporalUi}`,
    `S3         ${e.s3Endpoint} (storage URI ${e.storageUri})`,
  ].join('\n');
}

const stack: Command = {
  summary: 'up [--with-models] [--with-workers] | down | status | env: the local Temporal dev server, S3 server, model servers and workers',
  async run([verb, ...flags]) {
    switch (verb) {
      case 'up': {
        const unknown = flags.filter((f) => f !== '--with-models' && f !== '--with-workers');
        if (unknown.length) throw new UsageError(`unknown option(s) ${unknown.join(' ')}`);
        await stackUp({ models: flags.includes('--with-models'), workers: flags.includes('--with-workers') });
        console.log(`stack is up\n${describe()}`);
        if (flags.includes('--with-models')) {
          for (const m of localStack.models) console.log(`model ${m.name.padEnd(9)} http://127.0.0.1:${m.port}/v1`);
        }
        if (flags.includes('--with-workers')) console.log(`workers    log in ${localStack.stateDir}/workers.log`);
        return 0;
      }
      case 'down': {
        const stopped = await stackDown();
        console.log(Object.entries(stopped).map(([name, was]) => `${name} ${was ? 'stopped' : 'was not running'}`).join('; '));
        return 0;
      }
      case 'env':
        // For `eval "$(npx code-a1 stack env)"`: points workers and `code-a1 run` at the local stack.
        for (const [name, value] of Object.entries(workerEnvironment())) console.log(`export ${name}=${value}`);
        return 0;
      case 'status': {
        const status = await stackStatus();
        console.log(Object.entries(status).map(([name, pid]) => `${name} ${pid ? `running (pid ${pid})` : 'stopped'}`).join('; '));
        console.log(describe());
        return status.temporal && status.s3 ? 0 : 1;
      }
      default:
        throw new UsageError('expected up, down, status or env');
    }
  },
};
export default stack;
