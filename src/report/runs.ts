/**
 * A training run as the report draws it, read from the JSON lines that `--log-json` writes:
 * - `mixprec train`: `step` (step, loss, loss_scale, skipped) and `epoch` (epoch, train_loss,
 *   test_accuracy, img_per_s, seconds, loss_scale, skipped_steps) events;
 * - `mixprec train-lm`: `step` events and `eval` (step, val_loss, train_loss, loss_scale,
 *   skipped_steps (since the start), seconds (since the start)) events;
 * - `mixprec train-gan`: `iteration` (iteration, loss_d, loss_g, loss_scale, skipped) and `end`
 *   (iterations, seconds, skipped_steps, ...) events;
 * - `mixprec train-gpt`: `eval` (iter, train_loss, val_loss, loss_scale, skipped_steps) events;
 * - the playground: `step` events and `eval` (step, test_accuracy, img_per_s) events;
 * each optionally after a first `config` event with the run's settings. Which series a run has is
 * decided by the fields present, so a log of any of these commands (or a cut-short one) reads.
 * No Node imports: the browser playground draws its live plots from the same structure.
 */

export interface Point {
  x: number;
  y: number;
}

/** A JSON-lines event: `event` names its kind, the rest are its fields. */
export type RunEvent = { event: string } & Record<string, unknown>;

export type Settings = Record<string, string | number | boolean>;

export interface RunData {
  /** The label in legends and tables (unique within a report). */
  name: string;
  /** The command that wrote the log (`train`, `train-lm`, `train-gan`, `train-gpt`, `playground`). */
  command: string;
  /** The `config` event's fields (empty for a log written before config events existed). */
  settings: Settings;
  /** What the loss and loss-scale plots count along: `step`, `iteration` or `iter`. */
  stepAxis: string;
  /** Training loss per step, by series (`loss`; a GAN's `D` and `G`). */
  loss: Record<string, Point[]>;
  /** Test accuracy (a fraction) or validation loss per epoch or evaluation. */
  evaluation: { metric: 'test accuracy' | 'validation loss'; axis: string; points: Point[] } | null;
  /** The loss scale after each step (1 where no scaler runs). */
  lossScale: Point[];
  /** Steps the GradScaler skipped: x the step, y the loss scale logged with it. */
  skipped: Point[];
  /** Training throughput per epoch, per interval between evaluations, or over the whole run. */
  throughput: { unit: string; axis: string; per: 'epoch' | 'interval' | 'run'; points: Point[] } | null;
  /** Final figures for the table (absent: the log does not say). */
  final: {
    steps?: number;
    /** By loss series: the last epoch's or evaluation's training loss, else the mean of the last 10% of steps. */
    trainLoss?: Record<string, number>;
    evaluation?: number;
    lossScale?: number;
    skippedSteps?: number;
    seconds?: number;
  };
}

/** Errors name the log (and line) and what was expected. */
export class RunLogError extends Error {}

const EXPECTED = 'expected the --log-json output of mixprec train, train-lm, train-gan or train-gpt';

/**
 * Parse JSON lines. A last line cut short (a run killed while writing) is dropped; any other line
 * that is not a JSON object with an `event` string is an error naming `source` and the line.
 */
export function parseRunLog(text: string, source: string): RunEvent[] {
  const lines = text.split('\n');
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  const events: RunEvent[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1 && events.length > 0) return; // a final line cut short
      throw new RunLogError(`${source} line ${i + 1}: not JSON (${(e as Error).message}); ${EXPECTED}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value) || typeof (value as { event?: unknown }).event !== 'string') {
      throw new RunLogError(`${source} line ${i + 1}: not an object with an "event" field; ${EXPECTED}`);
    }
    events.push(value as RunEvent);
  });
  return events;
}

/** A finite number, else undefined (JSON writes NaN and Infinity as null). */
function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function points(events: readonly RunEvent[], xKey: string, yKey: string): Point[] {
  const out: Point[] = [];
  for (const e of events) {
    const x = num(e[xKey]);
    const y = num(e[yKey]);
    if (x !== undefined && y !== undefined) out.push({ x, y });
  }
  return out;
}

function settingsOf(config: RunEvent | undefined): Settings {
  const settings: Settings = {};
  for (const [k, v] of Object.entries(config ?? {})) {
    if (k !== 'event' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) settings[k] = v;
  }
  return settings;
}

function guessCommand(byKind: Map<string, RunEvent[]>): string {
  if (byKind.has('iteration') || byKind.has('end')) return 'train-gan';
  if (byKind.has('epoch')) return 'train';
  const evals = byKind.get('eval') ?? [];
  if (evals.some((e) => 'iter' in e)) return 'train-gpt';
  if (evals.some((e) => 'test_accuracy' in e)) return 'playground';
  return 'train-lm';
}

/** The run a log describes; `name` labels it. Throws when the log has nothing to draw. */
export function runFromEvents(events: readonly RunEvent[], name: string, source = name): RunData {
  const byKind = new Map<string, RunEvent[]>();
  for (const e of events) {
    const list = byKind.get(e.event) ?? [];
    list.push(e);
    byKind.set(e.event, list);
  }
  const of = (kind: string) => byKind.get(kind) ?? [];
  const config = of('config')[0];
  const settings = settingsOf(config);
  const command = typeof settings['command'] === 'string' ? settings['command'] : guessCommand(byKind);
  const steps = of('step');
  const iterations = of('iteration');
  const evals = of('eval');
  const epochs = of('epoch');
  const end = of('end').at(-1);
  if (steps.length + iterations.length + evals.length + epochs.length === 0) {
    throw new RunLogError(`${source}: no step, iteration, epoch or eval events; ${EXPECTED}`);
  }

  const run: RunData = { name, command, settings, stepAxis: 'step', loss: {}, evaluation: null, lossScale: [], skipped: [], throughput: null, final: {} };
  // The per-step series: step events, a GAN's iteration events, else the evaluations (train-gpt).
  const perStep = steps.length > 0 ? steps : iterations.length > 0 ? iterations : evals;
  run.stepAxis = steps.length > 0 ? (steps.some((e) => 'step' in e) ? 'step' : 'iter') : iterations.length > 0 ? 'iteration' : evals.some((e) => 'iter' in e) ? 'iter' : 'step';
  const x = run.stepAxis;
  if (steps.length > 0) run.loss['loss'] = points(steps, x, 'loss');
  else if (iterations.length > 0) {
    run.loss['D'] = points(iterations, x, 'loss_d');
    run.loss['G'] = points(iterations, x, 'loss_g');
  } else run.loss['loss'] = points(evals, x, 'train_loss');
  run.lossScale = points(perStep, x, 'loss_scale');
  if (perStep === evals) {
    // Evaluations carry skipped_steps since the start: mark the evaluations after which it grew.
    let before = 0;
    for (const e of evals) {
      const count = num(e['skipped_steps']);
      const at = num(e[x]);
      const scale = num(e['loss_scale']);
      if (count !== undefined && count > before && at !== undefined && scale !== undefined) run.skipped.push({ x: at, y: scale });
      if (count !== undefined) before = count;
    }
  } else {
    for (const e of perStep) {
      const at = num(e[x]);
      const scale = num(e['loss_scale']);
      if (e['skipped'] === true && at !== undefined && scale !== undefined) run.skipped.push({ x: at, y: scale });
    }
  }

  if (epochs.length > 0) {
    run.evaluation = { metric: 'test accuracy', axis: 'epoch', points: points(epochs, 'epoch', 'test_accuracy') };
    run.throughput = { unit: 'images/s', axis: 'epoch', per: 'epoch', points: points(epochs, 'epoch', 'img_per_s') };
  } else if (evals.some((e) => 'test_accuracy' in e)) {
    run.evaluation = { metric: 'test accuracy', axis: x, points: points(evals, x, 'test_accuracy') };
  } else if (evals.some((e) => 'val_loss' in e)) {
    run.evaluation = { metric: 'validation loss', axis: x, points: points(evals, x, 'val_loss') };
  }
  if (!run.throughput && evals.some((e) => 'img_per_s' in e)) run.throughput = { unit: 'images/s', axis: x, per: 'interval', points: points(evals, x, 'img_per_s') };
  if (!run.throughput && evals.some((e) => 'seconds' in e)) run.throughput = intervalThroughput(evals, x, settings);
  if (!run.throughput && end) {
    const n = num(end['iterations']);
    const seconds = num(end['seconds']);
    if (n !== undefined && seconds !== undefined && seconds > 0) run.throughput = { unit: 'iterations/s', axis: 'iteration', per: 'run', points: [{ x: n, y: n / seconds }] };
  }
  if (run.throughput && run.throughput.points.length === 0) run.throughput = null;
  if (run.evaluation && run.evaluation.points.length === 0) run.evaluation = null;

  const lastStep = perStep.length > 0 ? num(perStep[perStep.length - 1]![x]) : undefined;
  run.final = {
    steps: num(end?.['iterations']) ?? lastStep,
    trainLoss: single(num(epochs.at(-1)?.['train_loss']) ?? num(evals.at(-1)?.['train_loss'])) ?? tailMeans(run.loss),
    evaluation: run.evaluation?.points.at(-1)?.y,
    lossScale: run.lossScale.at(-1)?.y,
    skippedSteps:
      epochs.length > 0
        ? epochs.reduce((s, e) => s + (num(e['skipped_steps']) ?? 0), 0) + skippedAfterLastEpoch(steps, epochs)
        : (num(end?.['skipped_steps']) ?? (perStep === evals ? num(evals.at(-1)?.['skipped_steps']) : run.skipped.length)),
    seconds: epochs.length > 0 ? epochs.reduce((s, e) => s + (num(e['seconds']) ?? 0), 0) : (num(end?.['seconds']) ?? num(evals.at(-1)?.['seconds'])),
  };
  return run;
}

/** Skips of an epoch that did not finish (a run interrupted mid-epoch has its steps, not its epoch event). */
function skippedAfterLastEpoch(steps: readonly RunEvent[], epochs: readonly RunEvent[]): number {
  const done = num(epochs.at(-1)?.['epoch']) ?? 0;
  return steps.filter((e) => e['skipped'] === true && (num(e['epoch']) ?? 0) > done).length;
}

const single = (value: number | undefined): Record<string, number> | undefined => (value === undefined ? undefined : { loss: value });

/** Each loss series' mean over its last 10% of steps (at least one). */
function tailMeans(loss: Record<string, Point[]>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const [series, pts] of Object.entries(loss)) {
    if (pts.length === 0) continue;
    const tail = pts.slice(-Math.max(1, Math.floor(pts.length / 10)));
    out[series] = tail.reduce((s, p) => s + p.y, 0) / tail.length;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Throughput between evaluations that log seconds since the start (train-lm): characters per
 * second when the settings give batch_size and seq_len, else steps per second. The interval
 * includes the evaluation itself: wall-clock throughput.
 */
function intervalThroughput(evals: readonly RunEvent[], x: string, settings: Settings): RunData['throughput'] {
  const batch = typeof settings['batch_size'] === 'number' ? settings['batch_size'] : undefined;
  const seq = typeof settings['seq_len'] === 'number' ? settings['seq_len'] : undefined;
  const perStep = batch !== undefined && seq !== undefined ? batch * seq : 1;
  const pts: Point[] = [];
  let prev = { step: 0, seconds: 0 };
  for (const e of evals) {
    const step = num(e[x]);
    const seconds = num(e['seconds']);
    if (step === undefined || seconds === undefined || seconds <= prev.seconds || step <= prev.step) continue;
    pts.push({ x: step, y: ((step - prev.step) * perStep) / (seconds - prev.seconds) });
    prev = { step, seconds };
  }
  return { unit: perStep > 1 ? 'characters/s' : 'steps/s', axis: x, per: 'interval', points: pts };
}

/** Labels from file names: `fp16.jsonl` -> `fp16`; repeated names get the folder or a number. */
export function runNames(paths: readonly string[]): string[] {
  const base = (p: string) => p.split(/[\\/]/).pop()!.replace(/\.(jsonl|json|ndjson|log)$/i, '');
  const names = paths.map(base);
  return names.map((n, i) => {
    if (names.indexOf(n) === names.lastIndexOf(n)) return n;
    const parts = paths[i]!.split(/[\\/]/);
    const folder = parts.length > 1 ? parts[parts.length - 2] : undefined;
    const withFolder = folder ? `${folder}/${n}` : undefined;
    const clash = withFolder === undefined || paths.some((p, j) => j !== i && p.split(/[\\/]/).slice(-2).join('/').replace(/\.(jsonl|json|ndjson|log)$/i, '') === withFolder);
    return clash ? `${n} (${i + 1})` : withFolder;
  });
}
