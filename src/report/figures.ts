/**
 * The report's training plots as Vega-Lite specs: training loss (per step and smoothed), test
 * accuracy or validation loss, the loss scale on a log2 axis with the skipped steps marked, and
 * throughput, every run of a group overlaid on the same axes. Each mark layer has a name (the SVG
 * group's class is `<name>_marks`) and each drawn item the run as its ARIA label, so the points a
 * plot holds per run can be counted in the page (the report test does).
 * No Node imports: the playground draws its live plots with the same builders.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { RunData } from './runs.js';

export interface Figure {
  /** Unique in a report: the PNG file's name and the figure's `data-plot` attribute. */
  id: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

export interface FigureOptions {
  /** Plot area in pixels (default 440 x 200: two figures side by side on a page). */
  width?: number;
  height?: number;
  /** Prefix of the figure ids (a report with runs of several commands has one group per command). */
  idPrefix?: string;
}

/** Vega-Lite's config shared by every figure: one font for the page and the PNG rasteriser. */
export const FIGURE_CONFIG = {
  font: 'DejaVu Sans, Verdana, sans-serif',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260, orient: 'top', direction: 'horizontal', symbolOpacity: 1 },
} as const;

/**
 * The smoothing of the loss curve: an exponential moving average with span `s` (weight 2/(s+1),
 * bias-corrected at the start like pandas' ewm(adjust=True)), s = n/25 steps clamped to [5, 200].
 */
export function smoothingSpan(n: number): number {
  return Math.min(200, Math.max(5, Math.round(n / 25)));
}

export function smooth(ys: readonly number[], span: number): number[] {
  const alpha = 2 / (span + 1);
  let num = 0;
  let den = 0;
  return ys.map((y) => {
    num = y + (1 - alpha) * num;
    den = 1 + (1 - alpha) * den;
    return num / den;
  });
}

/** Runs that share axes: the same command with the same kinds of series. */
export function groupRuns(runs: readonly RunData[]): RunData[][] {
  const groups = new Map<string, RunData[]>();
  for (const run of runs) {
    const key = [run.command, run.stepAxis, run.evaluation?.metric, run.evaluation?.axis, run.throughput?.unit, run.throughput?.axis, Object.keys(run.loss).join(',')].join('|');
    const list = groups.get(key) ?? [];
    list.push(run);
    groups.set(key, list);
  }
  return [...groups.values()];
}

/** Every loss series name of a GAN is drawn as `<run> <series>` (D, G); a single series as the run. */
export function seriesLabel(run: RunData, series: string): string {
  return Object.keys(run.loss).length > 1 ? `${run.name} ${series}` : run.name;
}

/** The run colours: the same run has the same colour in every figure. */
function colorEncoding(runs: readonly RunData[]) {
  return { field: 'run', type: 'nominal' as const, title: 'run', scale: { domain: runs.map((r) => r.name) } };
}

const POW2_LABEL = "datum.value >= 1 ? '2^' + format(log(datum.value) / LN2, '.0f') : format(datum.value, '.2g')";

/** The four training figures of one group of runs (those it has data for). */
export function trainingFigures(runs: readonly RunData[], options: FigureOptions = {}): Figure[] {
  const width = options.width ?? 440;
  const height = options.height ?? 200;
  const prefix = options.idPrefix ?? '';
  const first = runs[0]!;
  const x = first.stepAxis;
  const color = colorEncoding(runs);
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width, height, config: FIGURE_CONFIG } as const;
  const figures: Figure[] = [];

  // Training loss: per step (faint) and smoothed.
  const multi = Object.keys(first.loss).length > 1;
  const lossRows: Record<string, unknown>[] = [];
  let spans: number[] = [];
  for (const run of runs) {
    for (const [series, pts] of Object.entries(run.loss)) {
      const span = smoothingSpan(pts.length);
      spans.push(span);
      const smoothed = smooth(pts.map((p) => p.y), span);
      pts.forEach((p, i) => lossRows.push({ run: run.name, series, label: seriesLabel(run, series), x: p.x, loss: p.y, smoothed: smoothed[i] }));
    }
  }
  spans = [...new Set(spans)];
  const lossEncoding = {
    x: { field: 'x', type: 'quantitative' as const, title: x },
    color,
    description: { field: 'label' },
    ...(multi ? { strokeDash: { field: 'series', type: 'nominal' as const, title: 'loss' } } : {}),
  };
  figures.push({
    id: `${prefix}loss`,
    title: multi ? `Training losses (${Object.keys(first.loss).join(', ')})` : 'Training loss',
    caption: `Per ${x} (faint) and smoothed (exponential moving average, span ${spans.join('/')} ${x}s).`,
    spec: {
      ...base,
      data: { values: lossRows },
      encoding: lossEncoding,
      layer: [
        { name: 'loss', mark: { type: 'line', opacity: 0.3, strokeWidth: 1 }, encoding: { y: { field: 'loss', type: 'quantitative', title: 'training loss', scale: { zero: false } } } },
        { name: 'smoothed', mark: { type: 'line', strokeWidth: 2 }, encoding: { y: { field: 'smoothed', type: 'quantitative' } } },
      ],
    } as TopLevelSpec,
  });

  // Test accuracy or validation loss.
  const evaluated = runs.filter((r) => r.evaluation);
  if (evaluated.length > 0) {
    const ev = evaluated[0]!.evaluation!;
    const accuracy = ev.metric === 'test accuracy';
    const rows = evaluated.flatMap((r) => r.evaluation!.points.map((p) => ({ run: r.name, x: p.x, value: accuracy ? p.y * 100 : p.y })));
    figures.push({
      id: `${prefix}${accuracy ? 'accuracy' : 'val_loss'}`,
      title: accuracy ? 'Test accuracy' : 'Validation loss',
      caption: ev.axis === 'epoch' ? `After each epoch, on the ${accuracy ? 'test' : 'held-out'} split.` : `At each evaluation (every so many ${ev.axis}s), on the ${accuracy ? 'test images' : 'held-out split'}.`,
      spec: lineWithPoints(base, rows, { x: ev.axis, y: accuracy ? 'test accuracy (%)' : 'validation loss', color, name: 'evaluation' }),
    });
  }

  // Loss scale (log2) with the skipped steps.
  const scaleRows = runs.flatMap((r) => r.lossScale.map((p) => ({ run: r.name, x: p.x, scale: p.y })));
  if (scaleRows.length > 0) {
    const skippedRows = runs.flatMap((r) => r.skipped.map((p) => ({ run: r.name, x: p.x, scale: p.y })));
    const skippedTotal = skippedRows.length;
    figures.push({
      id: `${prefix}loss_scale`,
      title: 'Loss scale',
      caption:
        `The GradScaler's scale after each ${x} (1: no scaling, as in fp32 and bf16), log2 axis; ` +
        `triangles mark the ${x}s it skipped because the gradients overflowed (${skippedTotal} in all).`,
      spec: {
        ...base,
        encoding: { x: { field: 'x', type: 'quantitative', title: x }, color, description: { field: 'run' } },
        layer: [
          {
            name: 'scale',
            data: { values: scaleRows },
            mark: { type: 'line', strokeWidth: 1.5 },
            encoding: { y: { field: 'scale', type: 'quantitative', title: 'loss scale', scale: { type: 'log', base: 2 }, axis: { values: powersOfTwo(scaleRows.map((r) => r.scale)), labelExpr: POW2_LABEL } } },
          },
          {
            name: 'skipped',
            data: { values: skippedRows },
            mark: { type: 'point', shape: 'triangle-down', filled: true, size: 70, opacity: 0.9 },
            encoding: { y: { field: 'scale', type: 'quantitative' } },
          },
        ],
      } as TopLevelSpec,
    });
  }

  // Throughput.
  const timed = runs.filter((r) => r.throughput);
  if (timed.length > 0) {
    const t = timed[0]!.throughput!;
    const rows = timed.flatMap((r) => r.throughput!.points.map((p) => ({ run: r.name, x: p.x, value: p.y })));
    figures.push({
      id: `${prefix}throughput`,
      title: 'Throughput',
      caption: `Training ${t.unit} ${t.per === 'epoch' ? 'per epoch' : t.per === 'run' ? 'over the whole run (its last iteration on the x axis)' : 'between evaluations'}, wall clock.`,
      spec: lineWithPoints(base, rows, { x: t.axis, y: t.unit, color, name: 'throughput' }),
    });
  }
  return figures;
}

/** Tick values for a log2 axis: powers of two over the values' range, at most about 9 of them. */
export function powersOfTwo(values: readonly number[]): number[] {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return [1];
  const lo = Math.floor(Math.log2(Math.min(...positive)));
  const hi = Math.ceil(Math.log2(Math.max(...positive)));
  const step = Math.max(1, Math.ceil((hi - lo) / 8));
  const out: number[] = [];
  for (let k = lo; k <= hi; k += step) out.push(2 ** k);
  return out;
}

/** A line through the points and a point mark named `name` (`<name>_marks`) on each. */
function lineWithPoints(
  base: object,
  rows: Record<string, unknown>[],
  o: { x: string; y: string; color: ReturnType<typeof colorEncoding>; name: string },
): TopLevelSpec {
  return {
    ...base,
    data: { values: rows },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: o.x, axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: o.y, scale: { zero: false } },
      color: o.color,
      description: { field: 'run' },
    },
    layer: [
      { name: `${o.name}_line`, mark: { type: 'line', strokeWidth: 1.5 } },
      { name: o.name, mark: { type: 'point', filled: true, size: 40 } },
    ],
  } as TopLevelSpec;
}
