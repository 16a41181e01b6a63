import type { Command } from './command.js';
import { ExitError, UsageError } from './command.js';

// Each command lives in its own module and is loaded only when invoked, so `code-a1 schema`
// does not pay for the Temporal worker or the S3 client.
const commands: Record<string, () => Promise<{ default: Command }>> = {
  bench: () => import('./commands/bench.js'),
  check: () => import('./commands/check.js'),
  eval: () => import('./commands/eval.js'),
  'eval-solutions': () => import('./commands/eval-solutions.js'),
  exec: () => import('./commands/exec.js'),
  pause: () => import('./commands/pause.js'),
  preflight: () => import('./commands/preflight.js'),
  report: () => import('./commands/report.js'),
  resume: () => import('./commands/resume.js'),
  retry: () => import('./commands/retry.js'),
  run: () => import('./commands/run.js'),
  schedule: () => import('./commands/schedule.js'),
  schema: () => import('./commands/schema.js'),
  score: () => import('./commands/score.js'),
  stack: () => import('./commands/stack.js'),
  stop: () => import('./commands/stop.js'),
  tensorboard: () => import('./commands/tensorboard.js'),
  worker: () => import('./commands/worker.js'),
};

function usage(): string {
  return ['usage: code-a1 <command> [options]', '', 'commands:', ...Object.keys(commands).map((c) => `  ${c}`)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...given] = argv;
  if (!name || name === '--help' || name === '-h') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`code-a1: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const command = (await load()).default;
  const verbose = given.includes('--verbose');
  const rest = given.filter((a) => a !== '--verbose');
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`usage: code-a1 ${name}: ${command.help ? await command.help(rest) : command.summary}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof ExitError) {
      console.error(`code-a1 ${name}: ${err.message}`);
      return err.exitCode;
    }
    if (err instanceof UsageError || isParseArgsError(err)) {
      console.error(`code-a1 ${name}: ${(err as Error).message.replace(/\s*\n\s*/g, ' ')} (code-a1 ${name} --help shows the usage)`);
      return 2;
    }
    // Storage, credentials, connections, configs: one line that says what failed; the trace is for bug reports.
    console.error(`code-a1 ${name}: ${describeFailure(err)}`);
    console.error(verbose ? ((err as Error)?.stack ?? String(err)) : `(--verbose shows the stack trace)`);
    return 1;
  }
}

/** node:util parseArgs's errors (unknown option, missing or ambiguous value, stray argument) are usage errors. */
function isParseArgsError(err: unknown): boolean {
  return err instanceof TypeError && /^ERR_PARSE_ARGS_/.test((err as { code?: string }).code ?? '');
}

function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'CredentialsProviderError') {
    return 'no S3 credentials in this environment: for the local stack run eval "$(npx code-a1 stack env)"; elsewhere set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';
  }
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}${cause}`;
}
