/** The per-epoch progress bar on a terminal (cli-progress), with running loss and images/s. */
import cliProgress from 'cli-progress';

export class Progress {
  private readonly bar: cliProgress.SingleBar;
  private count = 0;

  constructor(label: string, total: number) {
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label} |{bar}| {value}/{total} batches  loss {loss}  {imgPerS} img/s  eta {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, 0, { loss: '-', imgPerS: '-' });
  }

  update(values: { loss: number; imgPerS: number }): void {
    this.count++;
    this.bar.update(this.count, { loss: values.loss.toFixed(4), imgPerS: values.imgPerS.toFixed(0) });
  }

  done(): void {
    this.bar.stop();
  }
}
