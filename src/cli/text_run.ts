/**
 * What `mixprec train-lm` and `mixprec train-gpt` share: the backend from --backend, the text
 * corpus split 90/10, resuming a checkpoint of the same command and vocabulary, the weights,
 * optimizer, GradScaler and generators restored or saved bitwise (atomically, at evaluations and on
 * Ctrl-C), skipped steps counted across resumes, JSON lines for --log-json, and the progress bar.
 * Started by a launcher (`mixprec run`, WORLD_SIZE > 1), a command that opens the run with
 * `dataParallel` joins the job: only rank 0 prints, logs, evaluates and checkpoints.
 *
 *   const run = await TextTrainingRun.open<Meta>('mixprec.train-gpt', args, out);
 *   ... build the model from run.config(...) ...
 *   run.attach({ model, optimizer, scaler, generators: { rng: defaultGenerator, dataRng } });
 *   while (run.step < steps) { ...; run.step++; if (await run.interruptedAfter(...)) return 130; }
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { initDefaultBackend, setBackend } from '../backend/registry.js';
import { CharCorpus, type CharSequence } from '../data/text.js';
import { saveCheckpoint, loadCheckpoint } from '../io/checkpoint.js';
import { onInterrupt, type Interrupt } from './interrupt.js';
import { restoreFrom, stateCounter } from './resume.js';
import { checkpointFaults } from './faults.js';
import type { Module } from '../nn/module.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { GradScaler } from '../amp/grad_scaler.js';
import type { Generator } from '../random/generator.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Precision } from '../train/classifier.js';
import { ProgressBar, type ProgressPayload } from '../util/progress_bar.js';
import { CliError } from './errors.js';
import type { Output } from './train.js';
import { RunReport } from './run_report.js';
import type { PrecisionReport } from '../amp/diagnostics.js';
import { DataParallel } from '../train/data_parallel.js';
import { manualSeed } from '../random/generator.js';

/** The flags every text-training command parses (parseFlags' table), the sample's included. */
export const TEXT_RUN_FLAGS = {
  data: { type: 'string' },
  backend: { type: 'string' },
  precision: { type: 'string' },
  'sample-len': { type: 'string' },
  prompt: { type: 'string' },
  temperature: { type: 'string' },
  seed: { type: 'string' },
  checkpoint: { type: 'string' },
  resume: { type: 'string' },
  'log-json': { type: 'string' },
  report: { type: 'string' },
  quiet: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags every text-training run reads. */
export interface TextRunArgs {
  data?: string;
  backend?: string;
  precision: Precision;
  seed: number;
  checkpoint?: string;
  resume?: string;
  logJson?: string;
  /** --report: the HTML report of the run, written when it ends. */
  report?: string;
  quiet: boolean;
}

/** TEXT_RUN_FLAGS parsed: the run's flags, the sample's and the command's own. */
export interface TextCommandArgs extends TextRunArgs {
  sampleLen: number;
  prompt: string;
  temperature: number;
  verbose: boolean;
  help: boolean;
}

/** What every text-training checkpoint's metadata holds; commands add their own fields. */
export interface TextRunMeta<Kind extends string = string, Config extends { vocab: string[] } = { vocab: string[] }> {
  kind: Kind;
  config: Config;
  precision: Precision;
  step: number;
  skippedSteps: number;
  /** Generator states by name (mx.defaultGenerator's as 'rng'). */
  generators: Record<string, number[]>;
  optimizer: ReturnType<Optimizer<object>['stateDict']>;
  scaler: ReturnType<GradScaler['stateDict']>;
  /** Ranks of a data-parallel run (absent: one process); --resume needs the same number. */
  worldSize?: number;
}

export interface Attached {
  model: Module;
  optimizer: Optimizer<object>;
  scaler: GradScaler;
  /**
   * Every generator the run draws from, by name: restored from and saved into checkpoints. In a
   * data-parallel run the other ranks reseed mx.defaultGenerator (their own dropout stream).
   */
  generators: Record<string, Generator>;
}

export interface TextRunOptions {
  /** The command trains data-parallel when a launcher started it (otherwise it refuses to run under one). */
  dataParallel?: boolean;
}

export class TextTrainingRun<M extends TextRunMeta> {
  /** Completed steps (optimizer updates). */
  step = 0;
  private attached: Attached | null = null;
  private skippedBefore = 0;
  private skippedAtStart = 0;
  private logFile: WriteStream | null;
  private report: RunReport | null;
  // Ctrl-C: stop after this step and save; a second Ctrl-C exits at once (./interrupt.ts)
  private readonly interrupt: Interrupt;
  private readonly writeOptions = checkpointFaults();

  private constructor(
    readonly kind: M['kind'],
    readonly args: TextRunArgs,
    readonly out: Output,
    readonly corpus: CharCorpus,
    /** The checkpoint given to --resume, checked to be of this command and this text's vocabulary. */
    readonly resumed: { tensors: Map<string, Tensor>; meta: M } | null,
    /** The model's name in the report ('lstm', 'gpt'). */
    label: string,
    /** The data-parallel job this process is a rank of (null: it runs alone). */
    readonly dp: DataParallel | null,
  ) {
    const main = !dp || dp.isMain;
    this.logFile = args.logJson && main ? createWriteStream(args.logJson, { flags: 'w' }) : null;
    this.report = args.report && main ? new RunReport(args.report, `${label} ${args.precision}`) : null;
    this.interrupt = onInterrupt(args.checkpoint);
  }

  /**
   * A text-training command from its parsed flags: the help text, or the run opened, given to
   * `train` (which returns the exit status), and closed whatever happens.
   */
  static async command<M extends TextRunMeta>(
    kind: M['kind'],
    label: string,
    args: TextRunArgs & { help: boolean },
    out: Output,
    help: string,
    train: (run: TextTrainingRun<M>) => Promise<number>,
    options: TextRunOptions = {},
  ): Promise<number> {
    if (args.help) {
      out.log(help.trimEnd());
      return 0;
    }
    const run = await TextTrainingRun.open<M>(kind, label, args, out, options);
    try {
      return await train(run);
    } finally {
      await run.close();
    }
  }

  /**
   * Select the backend, join the data-parallel job if a launcher started this process, read the
   * corpus and the checkpoint to resume (same command, same vocabulary, same number of ranks).
   */
  static async open<M extends TextRunMeta>(kind: M['kind'], label: string, args: TextRunArgs, out: Output, options: TextRunOptions = {}): Promise<TextTrainingRun<M>> {
    const world = Number(process.env['WORLD_SIZE'] ?? '1');
    if (!options.dataParallel && world > 1) {
      throw new CliError(`${kind.replace('.', ' ')}: does not train data-parallel (started by a launcher with WORLD_SIZE ${world}); run it as one process`);
    }
    await (args.backend ? setBackend(args.backend) : initDefaultBackend());
    const dp = options.dataParallel ? await DataParallel.fromEnvironment() : null;
    if (dp && !dp.isMain) out = { log: () => undefined, isTTY: false };
    const corpus = await CharCorpus.fromFile(args.data!);
    let resumed: { tensors: Map<string, Tensor>; meta: M } | null = null;
    if (args.resume) {
      const loaded = await loadCheckpoint<M>(args.resume);
      const meta = loaded.meta;
      if (!meta || meta.kind !== kind) throw new CliError(`--resume ${args.resume}: not a ${kind.replace('.', ' ')} checkpoint (its metadata is ${meta ? `of '${String(meta.kind)}'` : 'missing'})`);
      if (!Array.isArray(meta.config?.vocab)) throw new CliError(`--resume ${args.resume}: its training state has no model configuration (config.vocab)`);
      const vocab = meta.config.vocab;
      if (vocab.join('') !== corpus.vocab.chars.join('')) {
        throw new CliError(`--resume ${args.resume}: written for a vocabulary of ${vocab.length} characters, not this text's ${corpus.vocab.size}`);
      }
      if ((meta.worldSize ?? 1) !== (dp?.worldSize ?? 1)) {
        throw new CliError(`--resume ${args.resume}: written by a run of ${meta.worldSize ?? 1} rank(s), this one has ${dp?.worldSize ?? 1} (the data order would differ)`);
      }
      resumed = { tensors: loaded.tensors, meta };
    }
    return new TextTrainingRun<M>(kind, args, out, corpus, resumed, label, dp);
  }

  /** Rank 0 of a data-parallel run, or the only process: the one that prints, evaluates and checkpoints. */
  get isMain(): boolean {
    return !this.dp || this.dp.isMain;
  }

  /** A usage error unless every character of the sample's prompt is in the text's vocabulary. */
  checkPrompt(prompt: string, sampleLen: number): void {
    const unknown = [...prompt].find((c) => !this.corpus.vocab.has(c));
    if (sampleLen > 0 && unknown !== undefined) throw new CliError(`${this.kind.replace('.', ' ')}: --prompt character ${JSON.stringify(unknown)} is not in the text's vocabulary`);
  }

  /** The first 90% of the characters for training, the rest for validation. */
  split(): { train: CharSequence; validation: CharSequence } {
    return this.corpus.split(0.9);
  }

  /** The model's shape: the checkpoint's when resuming (a run resumes into the same model), else `fresh`. */
  config(fresh: Omit<M['config'], 'vocab'>): M['config'] {
    return this.resumed ? this.resumed.meta.config : ({ ...fresh, vocab: [...this.corpus.vocab.chars] } as M['config']);
  }

  say(line: string): void {
    if (!this.args.quiet) this.out.log(line);
  }

  /** A --log-json line (and an event of the --report). */
  logJson(event: { event: string } & Record<string, unknown>): void {
    this.report?.add(event);
    this.logFile?.write(`${JSON.stringify(event)}\n`);
  }

  /** Whether events are kept (--log-json or --report): per-step values are read only then. */
  get logging(): boolean {
    return this.logFile !== null || this.report !== null;
  }

  /** Write the --report (once; close() writes it otherwise), with the gradients' precision statistics if any. */
  async writeReport(precision?: PrecisionReport): Promise<void> {
    const report = this.report;
    this.report = null;
    await report?.write(this.out, precision);
  }

  /**
   * The training state: restored from the checkpoint when resuming (the GradScaler's only when both
   * runs are fp16). Returns the resumed checkpoint's metadata, or null.
   */
  async attach(state: Attached): Promise<M | null> {
    this.attached = state;
    this.skippedAtStart = await state.scaler.getSkippedStepsAsync();
    // each rank its own dropout stream (the weights are rank 0's: DistributedDataParallel copies them)
    if (this.dp && !this.resumed) manualSeed(this.dp.rankSeed(this.args.seed));
    if (!this.resumed) return null;
    const meta = this.resumed.meta;
    const file = this.args.resume!;
    const tensors = this.resumed.tensors;
    // the state comes from a file: a value of the wrong kind is one line naming it (./resume.ts)
    restoreFrom(file, () => {
      state.model.loadStateDict(tensors);
      state.optimizer.loadStateDict(meta.optimizer);
      if (meta.precision === 'fp16' && this.args.precision === 'fp16') state.scaler.loadStateDict(meta.scaler);
      for (const [name, g] of Object.entries(state.generators)) {
        const saved = meta.generators?.[name];
        if (!saved) throw new CliError(`--resume ${file}: the checkpoint has no state of the '${name}' generator`);
        g.setState(saved);
      }
      this.step = stateCounter(file, 'step', meta.step);
      this.skippedBefore = stateCounter(file, 'skippedSteps', meta.skippedSteps);
      if (this.dp && !this.dp.isMain) manualSeed(this.dp.rankSeed(this.args.seed + this.step)); // the checkpoint holds rank 0's dropout stream
    });
    return meta;
  }

  /** Skipped steps of earlier runs (the resumed checkpoint's) and of this one, as the scaler counts them. */
  async skippedSteps(): Promise<number> {
    const scaler = this.state().scaler;
    return this.skippedBefore + (await scaler.getSkippedStepsAsync()) - this.skippedAtStart;
  }

  private state(): Attached {
    if (!this.attached) throw new Error('TextTrainingRun: attach() the model, optimizer and scaler first');
    return this.attached;
  }

  /** Write the checkpoint (atomically): the weights, and the metadata with the command's `extra` fields. */
  async saveCheckpoint(path: string, extra: Omit<M, keyof TextRunMeta>, config: M['config']): Promise<void> {
    const s = this.state();
    const generators = Object.fromEntries(Object.entries(s.generators).map(([name, g]) => [name, g.getState()]));
    const meta = {
      kind: this.kind,
      config,
      precision: this.args.precision,
      step: this.step,
      skippedSteps: await this.skippedSteps(),
      generators,
      optimizer: s.optimizer.stateDict(),
      scaler: await s.scaler.stateDictAsync(),
      ...(this.dp ? { worldSize: this.dp.worldSize } : {}),
      ...extra,
    };
    await saveCheckpoint(path, { tensors: s.model.stateDict(), meta }, this.writeOptions);
  }

  /**
   * Call after every step: one turn of the event loop (Ctrl-C's handler only runs between turns; the
   * steps' awaits resolve at once on a synchronous backend), then, if Ctrl-C was pressed (on any
   * rank: every rank stops after the same step), `save` the checkpoint when --checkpoint was given
   * (rank 0) and return true (the command exits with 130).
   */
  async interruptedAfterStep(save: (path: string) => Promise<void>): Promise<boolean> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    // every rank stops after the same step
    const interrupted = this.dp ? await this.dp.any(this.interrupt.requested) : this.interrupt.requested;
    if (!interrupted) return false;
    if (!this.isMain) return true;
    if (this.args.checkpoint) {
      await save(this.args.checkpoint);
      this.out.log(`interrupted: checkpoint written to ${this.args.checkpoint} (resume with --resume ${this.args.checkpoint})`);
    } else this.out.log('interrupted (no --checkpoint given: nothing saved)');
    return true;
  }

  /** A progress bar over `total` steps on a terminal (null elsewhere or with --quiet), at the current step. */
  progressBar(total: number, itemName: string, suffix: string, payload: ProgressPayload): ProgressBar | null {
    if (!this.out.isTTY || this.args.quiet) return null;
    const bar = new ProgressBar('train', { total, itemName, suffix, payload });
    bar.update(this.step);
    return bar;
  }

  /** Stop listening for Ctrl-C, write the report, flush the JSON log, leave the data-parallel job. */
  async close(): Promise<void> {
    this.interrupt.dispose();
    await this.writeReport();
    const file = this.logFile;
    this.logFile = null;
    if (file) await new Promise<void>((resolve) => file.end(resolve));
    this.dp?.close();
  }
}
