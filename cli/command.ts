/** A CLI command: receives its own arguments (after the command name), returns the exit code. */
export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
  /** The usage `--help` prints for these arguments, where a subcommand has its own (default: the summary). */
  help?(argv: string[]): Promise<string>;
}

/** Bad command-line usage: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A command that ends in a state the user must act on (a blocked run): its message, no stack trace, its own exit code. */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
