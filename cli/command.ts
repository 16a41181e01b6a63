/** A CLI command: receives its own arguments (after the command name), returns the exit code. */
export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** Bad command-line usage: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
