/** `mixprec report`: training logs (and precision reports) to one HTML page of plots, and PNGs. */
import { parseFlagsAndArguments } from './args.js';
import { CliError, usage } from './errors.js';
import type { Output } from './train.js';

export const REPORT_HELP = `usage: mixprec report RUN.jsonl [MORE.jsonl ...] [--out report.html] [--png DIR] [--precision-report P.json ...]

Draws the --log-json output of mixprec train, train-lm, train-gan (and train-gpt) as one
self-contained HTML page (no network needed to view it): training loss per step and smoothed, test
accuracy or validation loss, the loss scale (log2 axis) with the skipped steps marked, throughput,
runs of the same command overlaid (fp32 vs fp16 vs bf16), with a table of final figures and run
settings. Each run is labelled with its file name (fp16.jsonl: fp16).

  --out FILE                  the HTML file (default report.html)
  --png DIR                   also write each plot as DIR/<plot>.png
  --precision-report FILE     a --precision-report JSON: the gradients' magnitude histogram against
                              float16's range at scale 1 and at the loss scale (repeatable)
  --title TEXT                the page's title
`;

const FLAGS = {
  out: { type: 'string' },
  png: { type: 'string' },
  'precision-report': { type: 'string', multiple: true },
  title: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runReport(argv: string[], out: Output): Promise<number> {
  const { values, positionals } = parseFlagsAndArguments('report', argv, FLAGS);
  if (values['help']) {
    out.log(REPORT_HELP.trimEnd());
    return 0;
  }
  const precisionPaths = (values['precision-report'] as string[] | undefined) ?? [];
  if (positionals.length === 0 && precisionPaths.length === 0) throw usage('mixprec report: give at least one --log-json file (mixprec report RUN.jsonl ... --out report.html; see mixprec report --help)');
  for (const flag of ['out', 'png', 'title'] as const) {
    if (values[flag] === '') throw usage(`mixprec report: --${flag} needs a value`);
  }
  const html = (values['out'] as string | undefined) ?? 'report.html';
  // Loaded here, not at start-up: the plotting libraries are needed only by this command.
  const report = await import('../report/index.js');
  try {
    const names = report.runNames(positionals);
    const runs = await Promise.all(positionals.map((p, i) => report.readRunLog(p, names[i]!)));
    const precisionNames = report.runNames(precisionPaths);
    const precision = await Promise.all(precisionPaths.map(async (p, i) => ({ name: precisionNames[i]!, report: await report.readPrecisionReport(p) })));
    const written = await report.writeReport(runs, precision, { out: html, png: values['png'] as string | undefined, title: values['title'] as string | undefined, sources: [...positionals, ...precisionPaths] });
    out.log(`wrote ${written.html} (${written.figures.length} plots: ${written.figures.join(', ')})`);
    if (written.pngs.length > 0) out.log(`wrote ${written.pngs.length} PNG files to ${values['png']}`);
    return 0;
  } catch (e) {
    if (e instanceof report.RunLogError) throw new CliError(`mixprec report: ${e.message}`);
    throw e;
  }
}
