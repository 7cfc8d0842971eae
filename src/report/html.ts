/**
 * The report page: one HTML file with its styles and the figures as inline SVG, so it opens
 * offline and needs no script. A section per group of runs (final figures, settings, plots), then
 * the precision reports' figures. No Node imports.
 */
import type { RunData } from './runs.js';

export interface RenderedFigure {
  id: string;
  title: string;
  caption: string;
  svg: string;
}

export interface ReportSection {
  heading: string;
  runs: RunData[];
  figures: RenderedFigure[];
}

export interface ReportPage {
  title: string;
  /** Shown under the title: the inputs and when the page was made. */
  subtitle: string;
  sections: ReportSection[];
  precision: { heading: string; figures: RenderedFigure[] }[];
}

const STYLE = `
body { font-family: 'DejaVu Sans', Verdana, sans-serif; margin: 24px auto; max-width: 1160px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 36px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.subtitle { color: #666; font-size: 13px; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 12px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; } th { background: #f6f6f6; }
td:first-child, th:first-child { text-align: left; }
figure { margin: 16px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 0 28px; }
details summary { font-size: 13px; margin-top: 12px; cursor: pointer; } figcaption { font-size: 13px; color: #444; margin-bottom: 6px; max-width: 520px; }
figcaption b { color: #222; font-size: 14px; }
figure svg { max-width: 100%; height: auto; }
`;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number for a table cell: 4 significant digits, thousands as they are. */
export function formatNumber(v: number | undefined): string {
  if (v === undefined) return '–';
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 1 ? v.toFixed(4).replace(/\.?0+$/, '') : v.toPrecision(4);
}

function finalTable(runs: readonly RunData[]): string {
  const first = runs[0]!;
  const metric = runs.find((r) => r.evaluation)?.evaluation?.metric;
  const unit = runs.find((r) => r.throughput)?.throughput?.unit;
  const head = ['run', first.stepAxis + 's', 'final training loss', ...(metric ? [`final ${metric}`] : []), 'final loss scale', 'skipped steps', ...(unit ? [`mean ${unit}`] : []), 'seconds'];
  const rows = runs.map((r) => {
    const loss = r.final.trainLoss ? Object.entries(r.final.trainLoss).map(([k, v]) => (k === 'loss' ? formatNumber(v) : `${k} ${formatNumber(v)}`)).join(' / ') : '–';
    const evaluation = r.final.evaluation === undefined ? '–' : metric === 'test accuracy' ? `${(r.final.evaluation * 100).toFixed(2)}%` : formatNumber(r.final.evaluation);
    const pts = r.throughput?.points ?? [];
    const mean = pts.length ? pts.reduce((s, p) => s + p.y, 0) / pts.length : undefined;
    const cells = [r.final.steps, loss, ...(metric ? [evaluation] : []), r.final.lossScale, r.final.skippedSteps, ...(unit ? [mean === undefined ? undefined : Math.round(mean)] : []), r.final.seconds === undefined ? undefined : Number(r.final.seconds.toFixed(1))];
    return `<tr data-run="${escapeHtml(r.name)}"><td>${escapeHtml(r.name)}</td>${cells.map((c) => `<td>${typeof c === 'string' ? escapeHtml(c) : formatNumber(c)}</td>`).join('')}</tr>`;
  });
  return `<table class="final"><thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function settingsTable(runs: readonly RunData[]): string {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.settings)))];
  if (keys.length === 0) return '<p class="subtitle">These logs hold no run settings (no config event: written by an older mixprec).</p>';
  const head = `<tr><th>setting</th>${runs.map((r) => `<th>${escapeHtml(r.name)}</th>`).join('')}</tr>`;
  const rows = keys.map((k) => `<tr><td>${escapeHtml(k)}</td>${runs.map((r) => `<td>${r.settings[k] === undefined ? '–' : escapeHtml(String(r.settings[k]))}</td>`).join('')}</tr>`);
  return `<table class="settings"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

function figureHtml(f: RenderedFigure): string {
  return `<figure class="plot" data-plot="${escapeHtml(f.id)}" id="plot-${escapeHtml(f.id)}"><figcaption><b>${escapeHtml(f.title)}.</b> ${escapeHtml(f.caption)}</figcaption>${f.svg}</figure>`;
}

export function reportHtml(page: ReportPage): string {
  const sections = page.sections.map(
    (s) =>
      `<section class="runs"><h2>${escapeHtml(s.heading)}</h2>${finalTable(s.runs)}` +
      `<div class="figures">${s.figures.map(figureHtml).join('\n')}</div><details open><summary>Run settings</summary>${settingsTable(s.runs)}</details></section>`,
  );
  const precision = page.precision.map((p) => `<section class="precision"><h2>${escapeHtml(p.heading)}</h2>${p.figures.map(figureHtml).join('\n')}</section>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(page.title)}</h1><p class="subtitle">${escapeHtml(page.subtitle)}</p>
${sections.join('\n')}
${precision.join('\n')}
</body></html>
`;
}
