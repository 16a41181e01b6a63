import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { readConfigFile } from '../config-file.js';
import { parseEvaluationConfig } from '../../activities/evaluation/config.js';
import { parseRunConfig } from '../../config/run-config.js';
import { parseWorkerEnv } from '../../config/worker-env.js';
import { evaluationPlan, preflight as check, runPlan } from '../preflight/index.js';
import type { PreflightPlan } from '../preflight/index.js';
import { parseCommandLine, positiveInt } from './exec.js';

/**
 * Checks a run or evaluation config against everything it will use, without starting it: the
 * dataset, the model servers, storage, Temporal and its workers, the gpu worker's devices. `run`,
 * `schedule create` and `eval` run the same checks first. Exit status 0 only when every check passes.
 */
const preflight: Command = {
  summary: 'preflight --config FILE [--wait-for-workers SECONDS]: check that a run (or an evaluation: a config with evalId) can start, with the fix for each problem',
  async run(argv) {
    const { values } = parseCommandLine(() =>
      parseArgs({ args: argv, options: { config: { type: 'string' }, 'wait-for-workers': { type: 'string' } }, strict: true, allowPositionals: false }),
    );
    if (!values.config) throw new UsageError('--config FILE is required');
    const waitForWorkersMs = values['wait-for-workers'] === undefined ? 0 : positiveInt(values['wait-for-workers'], '--wait-for-workers', 0) * 1000;
    const env = parseWorkerEnv(process.env);
    let plan: PreflightPlan;
    try {
      plan = await configPlan(values.config);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      console.log(`✗ config ${values.config}: ${err.message.replace(/:?\s*\n\s*/g, '; ')}\n    fix: correct those fields (npx code-a1 schema prints every field with its meaning)`);
      return 1;
    }
    console.log(`✓ config ${values.config}: ${plan.subject}`);
    return (await check(plan, { env, waitForWorkersMs })) ? 0 : 1;
  },
};
export default preflight;

/** A config with an `evalId` is an evaluation's, any other a run's. */
async function configPlan(path: string): Promise<PreflightPlan> {
  const { raw } = await readConfigFile(path, (json) => json);
  const evaluation = typeof raw === 'object' && raw !== null && 'evalId' in raw;
  return evaluation ? evaluationPlan((await readConfigFile(path, parseEvaluationConfig)).config) : runPlan((await readConfigFile(path, parseRunConfig)).config);
}
