/**
 * Restoring a run from a checkpoint's training state (`mixprec train`, and `train-lm` / `train-gpt` through text_run.ts). The state comes
 * from a file, so a value of the wrong kind in it is bad input: a CliError naming the file, instead
 * of a TypeError from inside loadStateDict or a counter that is not a number (an epoch of "x" ended a
 * resumed run at once, as if finished).
 */
import { CliError } from './errors.js';

/** Run `restore`, turning what it throws into one line naming the checkpoint. */
export function restoreFrom(file: string, restore: () => void): void {
  try {
    restore();
  } catch (e) {
    if (e instanceof CliError) throw e;
    const why = String((e as Error)?.message ?? e).split('\n')[0];
    throw new CliError(`--resume ${file}: its training state does not fit this run (${why})`);
  }
}

/** A counter of the training state (epoch, step, skipped steps): a non-negative integer. */
export function stateCounter(file: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new CliError(`--resume ${file}: ${name} is ${JSON.stringify(value) ?? String(value)} in its training state; expected a non-negative integer`);
  }
  return value;
}
