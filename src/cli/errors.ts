/** A problem the user can fix: printed as one line (a stack trace only with --verbose), non-zero exit. */
export class CliError extends Error {
  constructor(
    message: string,
    /** 2: bad usage (flags, values); 1: bad input found at run time (files, checkpoints). */
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export function usage(message: string): CliError {
  return new CliError(message, 2);
}
