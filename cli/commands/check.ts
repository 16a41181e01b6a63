import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { createSandbox } from '../../activities/sandbox/index.js';
import { parseCommandLine, positiveInt, readText, withSandboxErrors } from './exec.js';
import { definition } from '../preflight/entry-point.js';

const check: Command = {
  summary:
    'run assert tests against code, validated against a reference when given: ' +
    'check --code FILE.py --entry-point NAME --tests TESTS.json [--reference REF.py] [--timeout-ms N]',
  async run(argv) {
    const { values } = parseCommandLine(() => parseArgs({
      args: argv,
      options: {
        code: { type: 'string' },
        'entry-point': { type: 'string' },
        tests: { type: 'string' },
        reference: { type: 'string' },
        'timeout-ms': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
    const code = await readText(values.code, '--code');
    const entryPoint = values['entry-point'];
    if (!entryPoint || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(entryPoint)) throw new UsageError('--entry-point NAME (a Python identifier) is required');
    const testsText = await readText(values.tests, '--tests');
    const asserts: unknown = parseCommandLine(() => JSON.parse(testsText));
    if (!Array.isArray(asserts) || !asserts.every((a) => typeof a === 'string')) {
      throw new UsageError(`${values.tests} must hold a JSON array of assert strings`);
    }
    const reference = values.reference === undefined ? undefined : await readText(values.reference, '--reference');
    const perTestTimeoutMs = positiveInt(values['timeout-ms'], '--timeout-ms', 3_000);
    // Without these every test comes back "invalid" and nothing says why.
    if (reference !== undefined) await requireDefinition(reference, entryPoint, `--reference ${values.reference}`, true);
    await requireDefinition(code, entryPoint, `--code ${values.code}`, false);
    return withSandboxErrors(async () => {
      const sandbox = await createSandbox({ concurrency: 1 });
      try {
        console.log(JSON.stringify(await sandbox.checkTests({ code, entryPoint, asserts, reference, perTestTimeoutMs })));
      } finally {
        await sandbox.close();
      }
    });
  },
};
export default check;

/**
 * The reference must compile and define the entry point; the code must define it when it compiles
 * (code that does not compile is a result, `codeValid: false`, as for a candidate in training).
 */
async function requireDefinition(source: string, entryPoint: string, flag: string, mustCompile: boolean): Promise<void> {
  const found = await definition(source, entryPoint);
  if (!found.compiles && mustCompile) throw new UsageError(`${flag} does not compile: ${found.error}`);
  if (found.compiles && !found.defines) throw new UsageError(`${flag} does not define --entry-point ${entryPoint} at module level`);
}
