import type { Command } from '../command.js';
import { runConfigJsonSchema } from '../../config/run-config.js';

const schema: Command = {
  summary: 'print the JSON Schema of the run config (the input of codeA1Training)',
  async run() {
    console.log(JSON.stringify(runConfigJsonSchema(), null, 2));
    return 0;
  },
};
export default schema;
