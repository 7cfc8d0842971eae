/**
 * What the training commands add for reports: the `config` event that opens their --log-json
 * output (the run's settings) and `--report FILE.html`, the report of the run written when it ends
 * (also when it is interrupted or fails part way).
 */
import { getBackend } from '../backend/registry.js';
import type { PrecisionReport } from '../amp/diagnostics.js';
import type { Output } from './train.js';

type Event = { event: string } & Record<string, unknown>;

/** The `config` event: the command, its settings, and the backend that runs it. */
export function configEvent(command: string, settings: Record<string, unknown>): Event {
  const backend = getBackend() as { name: string; threads?: number; adapterDescription?: string };
  const defined = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
  return {
    event: 'config',
    command,
    ...defined,
    backend: backend.name,
    ...(typeof backend.threads === 'number' ? { threads: backend.threads } : {}),
    ...(typeof backend.adapterDescription === 'string' ? { adapter: backend.adapterDescription } : {}),
  };
}

/** The events of a run kept for `--report`. */
export class RunReport {
  readonly events: Event[] = [];

  constructor(
    readonly path: string,
    readonly name: string,
  ) {}

  add(event: Event): void {
    this.events.push(event);
  }

  /**
   * Write the report. A failure is told in one line and does not replace the run's own outcome
   * (this runs in the commands' `finally`).
   */
  async write(out: Output, precision?: PrecisionReport): Promise<void> {
    try {
      const { writeRunReport } = await import('../report/index.js');
      await writeRunReport(this.path, { name: this.name, events: this.events }, precision);
      out.log(`wrote the report ${this.path}`);
    } catch (e) {
      out.log(`mixprec: could not write the report ${this.path}: ${String((e as Error)?.message ?? e).split('\n')[0]}`);
    }
  }
}
