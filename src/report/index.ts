/**
 * `mixprec report` and `--report`: training logs (and precision reports) to one self-contained
 * HTML page of plots, and optionally the same plots as PNG files.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrecisionReport } from '../amp/diagnostics.js';
import { groupRuns, trainingFigures, type Figure } from './figures.js';
import { gradientFigures } from './gradients.js';
import { reportHtml, type RenderedFigure, type ReportSection } from './html.js';
import { figureSvg, svgToPng } from './render.js';
import { parseRunLog, runFromEvents, runNames, RunLogError, type RunData, type RunEvent } from './runs.js';

export { parseRunLog, runFromEvents, runNames, RunLogError, type RunData, type RunEvent } from './runs.js';
export type { Figure } from './figures.js';

export interface NamedPrecisionReport {
  name: string;
  report: PrecisionReport;
}

export interface ReportOptions {
  /** The HTML file to write. */
  out: string;
  /** Also write each plot as DIR/<figure id>.png. */
  png?: string;
  title?: string;
  /** The inputs, for the subtitle. */
  sources?: readonly string[];
}

export interface WrittenReport {
  html: string;
  figures: string[];
  pngs: string[];
}

/** Read one `--log-json` file. */
export async function readRunLog(path: string, name: string): Promise<RunData> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RunLogError(`${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return runFromEvents(parseRunLog(text, path), name, path);
}

/** Read a `--precision-report` JSON, checking it has the fields the figures use. */
export async function readPrecisionReport(path: string): Promise<PrecisionReport> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new RunLogError(`${path}: ${code === 'ENOENT' ? 'no such file' : `not JSON (${(e as Error).message})`}; expected the --precision-report output of mixprec train or train-lm`);
  }
  const r = value as Partial<PrecisionReport>;
  const ok =
    typeof r === 'object' && r !== null && typeof r.scale === 'number' && typeof r.steps === 'number' && typeof r.format === 'string' &&
    typeof r.limits?.max === 'number' && typeof r.limits.smallestNormal === 'number' && typeof r.limits.smallestSubnormal === 'number' &&
    typeof r.parameters === 'object' && r.parameters !== null &&
    Object.values(r.parameters).every((p) => typeof p?.log2Histogram === 'object' && typeof p.numel === 'number' && typeof p.atScale1 === 'object' && typeof p.atCurrentScale === 'object');
  if (!ok) throw new RunLogError(`${path}: not a precision report (expected format, steps, scale, limits and per-parameter log2Histogram / atScale1 / atCurrentScale, as --precision-report writes)`);
  return r as PrecisionReport;
}

async function render(figures: readonly Figure[]): Promise<RenderedFigure[]> {
  const out: RenderedFigure[] = [];
  for (const f of figures) out.push({ id: f.id, title: f.title, caption: f.caption, svg: await figureSvg(f) });
  return out;
}

/** Write the report (atomically) and, with `png`, one PNG per plot. */
export async function writeReport(runs: readonly RunData[], precision: readonly NamedPrecisionReport[], options: ReportOptions): Promise<WrittenReport> {
  const groups = groupRuns(runs);
  const commands = groups.map((g) => g[0]!.command);
  const sections: ReportSection[] = [];
  for (const [i, group] of groups.entries()) {
    const command = commands[i]!;
    const prefix = groups.length === 1 ? '' : commands.indexOf(command) === commands.lastIndexOf(command) ? `${command}-` : `${command}-${i + 1}-`;
    sections.push({
      heading: `${command === 'playground' ? 'playground' : `mixprec ${command}`}: ${group.map((r) => r.name).join(', ')}`,
      runs: group,
      figures: await render(trainingFigures(group, { idPrefix: prefix })),
    });
  }
  const precisionSections = [];
  for (const p of precision) {
    const figures = gradientFigures(p.report, precision.length > 1 ? { idSuffix: `-${p.name}`, name: p.name } : {});
    precisionSections.push({ heading: `Gradients and the ${p.report.format} range: ${p.name}`, figures: await render(figures) });
  }
  const all = [...sections.flatMap((s) => s.figures), ...precisionSections.flatMap((s) => s.figures)];
  const html = reportHtml({
    title: options.title ?? 'mixprec training report',
    subtitle: `${options.sources?.length ? `From ${options.sources.join(', ')}; ` : ''}written ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC by mixprec.`,
    sections,
    precision: precisionSections,
  });
  const tmp = `${options.out}.tmp-${process.pid}`;
  await writeFile(tmp, html);
  await rename(tmp, options.out);
  const pngs: string[] = [];
  if (options.png) {
    await mkdir(options.png, { recursive: true });
    for (const f of all) {
      const path = join(options.png, `${f.id}.png`);
      await writeFile(path, await svgToPng(f.svg));
      pngs.push(path);
    }
  }
  return { html: options.out, figures: all.map((f) => f.id), pngs };
}

/**
 * The report of one run that is still in memory (`mixprec train --report`): its events as the
 * JSON log has them, and the precision report when one is being recorded.
 */
export async function writeRunReport(out: string, run: { name: string; events: readonly RunEvent[] }, precision?: PrecisionReport): Promise<WrittenReport> {
  return writeReport([runFromEvents(run.events, run.name)], precision ? [{ name: run.name, report: precision }] : [], { out });
}
