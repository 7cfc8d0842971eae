/**
 * What mixed precision is about, from a `--precision-report` JSON (src/amp/diagnostics.ts): the
 * magnitudes of the true gradients (their log2 histogram) against the 16-bit format's range, with
 * the underflow (below the smallest subnormal: rounds to zero), subnormal (fewer significant
 * bits), normal and overflow (above the largest finite value) regions shaded, at scale 1 and
 * multiplied by the loss scale: summed over the parameters and per parameter, the figure
 * Micikevicius et al. (2018) use to motivate loss scaling. A histogram bin k holds the values with
 * 2^k <= |g| < 2^(k+1); multiplying by the scale S moves it to [k + log2 S, k + 1 + log2 S).
 * No Node imports (a type-only import of the report's shape).
 */
import type { TopLevelSpec } from 'vega-lite';
import type { PrecisionReport } from '../amp/diagnostics.js';
import { FIGURE_CONFIG, type Figure } from './figures.js';

export interface Region {
  region: 'underflow' | 'subnormal' | 'normal' | 'overflow';
  from: number;
  to: number;
}

/** Bars of one parameter (or all of them) at one scale: log2 edges and the share of its values. */
export interface GradientBar {
  parameter: string;
  scale: string;
  from: number;
  to: number;
  percent: number;
}

export const ALL_PARAMETERS = 'all parameters';

const REGION_COLORS = { underflow: '#d62728', subnormal: '#ff7f0e', normal: '#2ca02c', overflow: '#9467bd' } as const;

/** The scales drawn: 1, and the report's loss scale when it is not 1. */
export function scaleLabels(report: PrecisionReport): { label: string; log2: number }[] {
  const labels = [{ label: 'scale 1', log2: 0 }];
  if (report.scale !== 1 && report.scale > 0) {
    const log2 = Math.log2(report.scale);
    labels.push({ label: `scale ${report.scale}${Number.isInteger(log2) ? ` (2^${log2})` : ''}`, log2 });
  }
  return labels;
}

/** One bar per nonzero histogram bin, per parameter (and summed) and per scale. */
export function gradientBars(report: PrecisionReport): GradientBar[] {
  const scales = scaleLabels(report);
  const bars: GradientBar[] = [];
  const total = new Map<number, number>();
  let totalCount = 0;
  const push = (parameter: string, hist: Map<number, number>, count: number) => {
    for (const { label, log2 } of scales) {
      for (const [k, n] of [...hist.entries()].sort((a, b) => a[0] - b[0])) {
        bars.push({ parameter, scale: label, from: k + log2, to: k + 1 + log2, percent: (100 * n) / count });
      }
    }
  };
  const perParameter: [string, Map<number, number>, number][] = [];
  // The recorder lists parameters as their gradients first arrived (backward order): reversed, the model's order.
  for (const [name, p] of Object.entries(report.parameters).reverse()) {
    const hist = new Map<number, number>();
    let count = 0;
    for (const [k, n] of Object.entries(p.log2Histogram)) {
      if (n <= 0) continue;
      hist.set(Number(k), n);
      total.set(Number(k), (total.get(Number(k)) ?? 0) + n);
      count += n;
    }
    totalCount += count;
    if (count > 0) perParameter.push([name, hist, count]);
  }
  if (totalCount > 0) push(ALL_PARAMETERS, total, totalCount);
  for (const [name, hist, count] of perParameter) push(name, hist, count);
  return bars;
}

/** The format's regions on the log2 axis, clipped to [lo, hi]. */
export function regions(report: PrecisionReport, lo: number, hi: number): Region[] {
  const sub = Math.log2(report.limits.smallestSubnormal);
  const normal = Math.log2(report.limits.smallestNormal);
  const max = Math.log2(report.limits.max);
  return [
    { region: 'underflow' as const, from: lo, to: sub },
    { region: 'subnormal' as const, from: sub, to: normal },
    { region: 'normal' as const, from: normal, to: max },
    { region: 'overflow' as const, from: max, to: hi },
  ].filter((r) => r.to > r.from);
}

/** Fractions of all observed gradient values, weighted by how many each parameter contributed. */
function overall(report: PrecisionReport, which: 'atScale1' | 'atCurrentScale'): { zero: number; subnormal: number; underflow: number; overflow: number } {
  let n = 0;
  const sum = { zero: 0, subnormal: 0, underflow: 0, overflow: 0 };
  for (const p of Object.values(report.parameters)) {
    const w = p.numel * p.observations;
    n += w;
    for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += p[which][k] * w;
  }
  for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] /= Math.max(n, 1);
  return sum;
}

const pct = (f: number) => `${(100 * f).toFixed(f > 0 && f < 0.001 ? 3 : 1)}%`;

export interface GradientFigureOptions {
  /** Suffix of the figure ids (several precision reports in one report). */
  idSuffix?: string;
  /** Named in the titles (the report file's name). */
  name?: string;
}

/** The summed histogram and the per-parameter small multiples. */
export function gradientFigures(report: PrecisionReport, options: GradientFigureOptions = {}): Figure[] {
  const bars = gradientBars(report);
  if (bars.length === 0) return [];
  const scales = scaleLabels(report);
  const edges = bars.flatMap((b) => [b.from, b.to]);
  const limits = [Math.log2(report.limits.smallestSubnormal), Math.log2(report.limits.max)];
  const lo = Math.floor(Math.min(...edges, ...limits)) - 3;
  const hi = Math.ceil(Math.max(...edges, ...limits)) + 5;
  const shaded = regions(report, lo, hi);
  const suffix = options.idSuffix ?? '';
  const of = options.name ? ` (${options.name})` : '';
  const x = { field: 'from', type: 'quantitative', title: 'log2 |gradient|', scale: { domain: [lo, hi], nice: false, zero: false } } as const;
  const regionColor = { field: 'region', type: 'nominal', title: `${report.format} range`, scale: { domain: Object.keys(REGION_COLORS), range: Object.values(REGION_COLORS) } } as const;
  const barColor = { field: 'scale', type: 'nominal', title: 'gradients at', scale: { domain: scales.map((s) => s.label), range: ['#1f77b4', '#e377c2'] } } as const;
  const layers = (withLabels: boolean) => [
    { name: 'regions', transform: [{ filter: "datum.kind === 'region'" }], mark: { type: 'rect', opacity: 0.13 }, encoding: { x, x2: { field: 'to' }, fill: regionColor } },
    ...(withLabels
      ? [{ name: 'region_labels', transform: [{ filter: "datum.kind === 'region'" }, { calculate: '(datum.from + datum.to) / 2', as: 'middle' }], mark: { type: 'text', baseline: 'top', dy: 4, fontSize: 11, fill: '#555' }, encoding: { x: { field: 'middle', type: 'quantitative' }, y: { value: 0 }, text: { field: 'region' } } }]
      : []),
    {
      name: 'gradients',
      transform: [{ filter: "datum.kind === 'bar'" }, { calculate: "datum.parameter + ' · ' + datum.scale", as: 'label' }],
      mark: { type: 'rect', opacity: 0.75, stroke: 'white', strokeWidth: 0.5 },
      encoding: { x, x2: { field: 'to' }, y: { field: 'percent', type: 'quantitative', title: '% of nonzero values' }, color: barColor, description: { field: 'label' } },
    },
  ];
  const at1 = overall(report, 'atScale1');
  const atS = overall(report, 'atCurrentScale');
  const limitsText = `${report.format}: subnormals below 2^${Math.log2(report.limits.smallestNormal)}, zero below 2^${Math.log2(report.limits.smallestSubnormal)}, overflow above ${report.limits.max}`;
  const scaledText = scales.length > 1 ? `; multiplied by the loss scale ${report.scale}: ${pct(atS.underflow)} underflow, ${pct(atS.subnormal)} subnormal, ${pct(atS.overflow)} overflow` : '';
  const caption =
    `Magnitudes of the true (unscaled) gradients over ${report.steps} steps (${limitsText}). At scale 1, ${pct(at1.underflow)} of the values would underflow to zero, ` +
    `${pct(at1.subnormal)} would be subnormal and ${pct(at1.overflow)} would overflow${scaledText}. Exact zeros (${pct(at1.zero)}) are not drawn.`;
  const summed = bars.filter((b) => b.parameter === ALL_PARAMETERS);
  const regionRows = (parameter: string) => shaded.map((r) => ({ kind: 'region', parameter, ...r }));
  const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: FIGURE_CONFIG } as const;
  const figures: Figure[] = [
    {
      id: `gradient_histogram${suffix}`,
      title: `Gradient magnitudes against the ${report.format} range, all parameters${of}`,
      caption,
      spec: {
        ...base,
        width: 640,
        height: 260,
        data: { values: [...regionRows(ALL_PARAMETERS), ...summed.map((b) => ({ kind: 'bar', ...b }))] },
        layer: layers(true),
      } as TopLevelSpec,
    },
  ];
  const params = [...new Set(bars.map((b) => b.parameter))].filter((p) => p !== ALL_PARAMETERS);
  if (params.length > 0) {
    figures.push({
      id: `gradient_histogram_per_parameter${suffix}`,
      title: `Gradient magnitudes per parameter${of}`,
      caption: `The same histogram for each parameter tensor (shares of that tensor's nonzero gradient values).`,
      spec: {
        ...base,
        data: { values: [...params.flatMap(regionRows), ...bars.filter((b) => b.parameter !== ALL_PARAMETERS).map((b) => ({ kind: 'bar', ...b }))] },
        facet: { field: 'parameter', type: 'nominal', title: null, sort: params, header: { labelFontSize: 12 } },
        columns: 2,
        spec: { width: 300, height: 110, layer: layers(false) },
      } as TopLevelSpec,
    });
  }
  return figures;
}
