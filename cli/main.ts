import type { Command } from './command.js';
import { UsageError } from './command.js';

// Each command lives in its own module and is loaded only when invoked, so `code-a1 schema`
// does not pay for the Temporal worker or the S3 client.
const commands: Record<string, () => Promise<{ default: Command }>> = {
  bench: () => import('./commands/bench.js'),
  check: () => import('./commands/check.js'),
  eval: () => import('./commands/eval.js'),
  'eval-solutions': () => import('./commands/eval-solutions.js'),
  exec: () => import('./commands/exec.js'),
  report: () => import('./commands/report.js'),
  resume: () => import('./commands/resume.js'),
  run: () => import('./commands/run.js'),
  schedule: () => import('./commands/schedule.js'),
  schema: () => import('./commands/schema.js'),
  score: () => import('./commands/score.js'),
  stack: () => import('./commands/stack.js'),
  tensorboard: () => import('./commands/tensorboard.js'),
  worker: () => import('./commands/worker.js'),
};

function usage(): string {
  return ['usage: code-a1 <command> [options]', '', 'commands:', ...Object.keys(commands).map((c) => `  ${c}`)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
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
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`code-a1 ${name}: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
