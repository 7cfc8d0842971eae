/** The per-epoch progress bar on a terminal (the shared ProgressBar), with running loss and images/s. */
import { ProgressBar } from '../util/progress_bar.js';

export class Progress {
  private readonly bar: ProgressBar;

  constructor(label: string, total: number) {
    this.bar = new ProgressBar(label, {
      total,
      itemName: 'batches',
      suffix: '  loss {loss}  {imgPerS} img/s',
      payload: { loss: '-', imgPerS: '-' },
    });
    this.bar.update(0);
  }

  update(values: { loss: number; imgPerS: number }): void {
    this.bar.increment({ loss: values.loss.toFixed(4), imgPerS: values.imgPerS.toFixed(0) });
  }

  done(): void {
    this.bar.stop();
  }
}
