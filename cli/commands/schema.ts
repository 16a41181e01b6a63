import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { runConfigJsonSchema } from '../../config/run-config.js';
import { evaluationConfigJsonSchema } from '../../activities/evaluation/config.js';

const schemas: Record<string, () => unknown> = {
  run: runConfigJsonSchema,
  eval: evaluationConfigJsonSchema,
};

const schema: Command = {
  summary: 'schema [run|eval]: print the JSON Schema of a config (run: the input of codeA1Training, the default; eval: of codeA1Evaluate)',
  async run([which = 'run']) {
    const build = schemas[which];
    if (!build) throw new UsageError(`expected one of ${Object.keys(schemas).join(', ')}`);
    console.log(JSON.stringify(build(), null, 2));
    return 0;
  },
};
export default schema;
