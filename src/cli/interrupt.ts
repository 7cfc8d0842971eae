/**
 * Ctrl-C in the training commands: the first asks the loop to stop after the current step (it then
 * writes its checkpoint and exits with 130); the second exits at once with 130. Checkpoints are
 * written atomically, so exiting in the middle of a write leaves the previous complete checkpoint
 * (and a temporary file the next save removes).
 */
export interface Interrupt {
  /** Whether Ctrl-C was pressed once. */
  readonly requested: boolean;
  /** Stop listening (the run is over). */
  dispose(): void;
}

export function onInterrupt(checkpoint: string | undefined): Interrupt {
  let requested = false;
  const handler = (): void => {
    if (requested) {
      const saved = checkpoint ? `; ${checkpoint} holds the last complete checkpoint` : '';
      process.stderr.write(`interrupted again: exiting now${saved}\n`);
      process.exit(130);
    }
    requested = true;
  };
  process.on('SIGINT', handler);
  return {
    get requested() {
      return requested;
    },
    dispose: () => void process.off('SIGINT', handler),
  };
}
