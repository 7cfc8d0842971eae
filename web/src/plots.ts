/**
 * The live plots: the report's figure builders (src/report/figures.ts) over the runs so far,
 * rendered by Vega as SVG into the page, redrawn as events arrive.
 */
import { View, parse } from 'vega';
import { compile } from 'vega-lite';
import { trainingFigures } from '../../src/report/figures.js';
import type { RunData } from '../../src/report/runs.js';

export class LivePlots {
  private readonly views = new Map<string, View>();

  constructor(private readonly container: HTMLElement) {}

  /** Draw (or redraw) every figure for `runs`. */
  async render(runs: readonly RunData[]): Promise<void> {
    if (runs.length === 0) return;
    for (const figure of trainingFigures(runs, { width: 380, height: 170 })) {
      let slot = this.container.querySelector<HTMLElement>(`figure[data-plot="${figure.id}"]`);
      if (!slot) {
        slot = document.createElement('figure');
        slot.className = 'plot';
        slot.dataset['plot'] = figure.id;
        slot.innerHTML = `<figcaption><b></b> <span></span></figcaption><div class="chart"></div>`;
      }
      this.container.append(slot); // (again: keeps the figures in the builders' order)
      slot.querySelector('b')!.textContent = `${figure.title}.`;
      slot.querySelector('span')!.textContent = figure.caption;
      const chart = slot.querySelector<HTMLElement>('.chart')!;
      this.views.get(figure.id)?.finalize();
      chart.textContent = '';
      const view = new View(parse(compile(figure.spec).spec), { renderer: 'svg', container: chart, hover: false });
      this.views.set(figure.id, view);
      await view.runAsync();
    }
  }
}
