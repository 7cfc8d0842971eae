/**
 * The project's one progress bar: a line redrawn in place (at most 10 times a second) by cli-progress,
 * for downloads (bytes, shown as MB and MB/s, the total possibly unknown) and training epochs (items,
 * with extra fields such as the running loss). By default it draws only when the stream is a TTY and
 * is silent elsewhere (logs, pipes, CI).
 *
 *   const bar = new ProgressBar('downloading x.tar.gz', { unit: 'bytes' });
 *   bar.update(received, { total }); // total: a byte count, or null while unknown
 *   bar.stop();
 *
 *   const bar = new ProgressBar('epoch 1/10', { total: 390, itemName: 'batches', suffix: '  loss {loss}', payload: { loss: '-' } });
 *   bar.increment({ loss: '0.6931' });
 *   bar.stop();
 *
 * The bar starts drawing on its first update, so creating one before the total is known draws nothing.
 * stop() must be called once the work ends (also on errors): while running, cli-progress keeps a timer.
 */
import cliProgress from 'cli-progress';

export type ProgressUnit = 'items' | 'bytes';
/** Values for `{name}` placeholders in the suffix. */
export type ProgressPayload = Record<string, string | number>;

export interface ProgressBarOptions {
  /** 'items' (default): `value/total itemName`; 'bytes': percentage, MB received / total and MB/s. */
  unit?: ProgressUnit;
  /** The total, or null (default) while unknown: then the bar, percentage and eta are left out. */
  total?: number | null;
  /** Word after an item count, e.g. 'batches' (default none). */
  itemName?: string;
  /** Text after the counts, with `{name}` placeholders filled from the payload, e.g. '  loss {loss}'. */
  suffix?: string;
  /** Initial payload values (shown until update() brings new ones). */
  payload?: ProgressPayload;
  /** Where to draw (default process.stderr). */
  stream?: NodeJS.WriteStream;
  /** Draw only when `stream` is a TTY (default true); false prints a line every 2 s elsewhere. */
  ttyOnly?: boolean;
}

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

export class ProgressBar {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly unit: ProgressUnit;
  private total: number | null;
  private value = 0;
  private payload: ProgressPayload;
  private state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(readonly label: string, options: ProgressBarOptions = {}) {
    const stream = options.stream ?? process.stderr;
    this.unit = options.unit ?? 'items';
    this.total = options.total ?? null;
    this.payload = { ...options.payload };
    const ttyOnly = options.ttyOnly ?? true;
    if (ttyOnly && !stream.isTTY) {
      this.bar = null;
      return;
    }
    const item = options.itemName ? ` ${options.itemName}` : '';
    const suffix = options.suffix ?? '';
    const format: cliProgress.GenericFormatter = (opts, params, payload) => {
      const known = this.total !== null;
      let counts: string;
      if (this.unit === 'bytes') {
        const secs = Math.max(((params.stopTime ?? Date.now()) - params.startTime) / 1000, 1e-3);
        counts = `${known ? `{percentage}% ${mb(params.value)}/${mb(params.total)}` : mb(params.value)} MB  ${mb(params.value / secs)} MB/s`;
      } else {
        counts = `${known ? '{value}/{total}' : '{value}'}${item}`;
      }
      const template = `${known ? '|{bar}| ' : ''}${counts}${suffix}${known ? '  eta {eta_formatted}' : ''}`;
      // The label goes in front afterwards, so braces in it are never taken for placeholders.
      return `${this.label} ${cliProgress.Format.Formatter({ ...opts, format: template }, params, payload)}`;
    };
    this.bar = new cliProgress.SingleBar(
      { format, stream, hideCursor: true, clearOnComplete: false, noTTYOutput: !ttyOnly },
      cliProgress.Presets.shades_classic,
    );
  }

  /** Whether the bar draws anything (false off a TTY unless ttyOnly is false). */
  get visible(): boolean {
    return this.bar !== null;
  }

  /**
   * Set the current count; `total` (a number, or null for unknown) when given replaces the total, and
   * `payload` values replace those of the same name.
   */
  update(value: number, options: { total?: number | null; payload?: ProgressPayload } = {}): void {
    this.value = value;
    if (options.payload) Object.assign(this.payload, options.payload);
    const totalChanged = options.total !== undefined && options.total !== this.total;
    if (options.total !== undefined) this.total = options.total;
    if (!this.bar || this.state === 'stopped') return;
    if (this.state === 'idle') {
      this.state = 'running';
      this.bar.start(this.total ?? 0, value, this.payload);
      return;
    }
    if (totalChanged) this.bar.setTotal(this.total ?? 0);
    this.bar.update(value, this.payload);
  }

  /** Add `delta` (default 1) to the count, with new payload values. */
  increment(payload?: ProgressPayload, delta = 1): void {
    this.update(this.value + delta, { payload });
  }

  /** Draw the final state and end the line. Idempotent; later updates are ignored. */
  stop(): void {
    if (this.state === 'running') this.bar!.stop();
    this.state = 'stopped';
  }
}
