import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { endpoints, stackDown, stackStatus, stackUp } from '../../infra/stack.js';

function describe(): string {
  const e = endpoints();
  return [
    `Temporal   ${e.temporalAddress} (namespace ${e.namespace})`,
    `Temporal UI ${e.temporalUi}`,
    `S3         ${e.s3Endpoint} (storage URI ${e.storageUri})`,
  ].join('\n');
}

const stack: Command = {
  summary: 'up | down | status: the local Temporal dev server and S3 server',
  async run([verb]) {
    switch (verb) {
      case 'up':
        await stackUp();
        console.log(`stack is up\n${describe()}`);
        return 0;
      case 'down': {
        const stopped = await stackDown();
        console.log(`temporal ${stopped.temporal ? 'stopped' : 'was not running'}; s3 ${stopped.s3 ? 'stopped' : 'was not running'}`);
        return 0;
      }
      case 'status': {
        const status = await stackStatus();
        console.log(`temporal ${status.temporal ? `running (pid ${status.temporal})` : 'stopped'}; s3 ${status.s3 ? `running (pid ${status.s3})` : 'stopped'}\n${describe()}`);
        return status.temporal && status.s3 ? 0 : 1;
      }
      default:
        throw new UsageError('expected up, down or status');
    }
  },
};
export default stack;
