/**
 * `mixprec train-lm`: a character-level LSTM language model on a text file (Tiny Shakespeare in the
 * README) with fp32, fp16 (float16 autocast + GradScaler) or bf16 precision: AdamW, gradient
 * clipping after `scaler.unscale_`, validation loss in nats and bits per character, a generated
 * sample, checkpoints with bitwise-exact resume and JSON logs.
 */
import { existsSync } from 'node:fs';
import { manualSeed, defaultGenerator, Generator } from '../random/generator.js';
import { CharLSTM } from '../models/char_lm.js';
import { AdamW } from '../optim/adam.js';
import { precisionReport, type PrecisionRecorder } from '../amp/diagnostics.js';
import { scalerFor, trainStep, underPrecision, PRECISIONS, type Precision, type StepContext } from '../train/classifier.js';
import { evaluateLm, lmLoss, type LmEvaluation } from '../train/language_model.js';
import { choice, number, parseFlags, copyStringFlags, checkBackendFlag } from './args.js';
import { CliError, usage } from './errors.js';
import { TextTrainingRun, TEXT_RUN_FLAGS, type TextCommandArgs, type TextRunMeta } from './text_run.js';
import { configEvent } from './run_report.js';
import type { Output } from './train.js';
import type { DataParallel } from '../train/data_parallel.js';
import type { Tensor } from '../tensor/tensor.js';

export const TRAIN_LM_HELP = `usage: mixprec train-lm --data FILE.txt [options]

Trains a character-level LSTM language model on a text file (90% train, 10% validation) and prints
the validation loss in nats and bits per character, then a generated sample.

  --data PATH                 UTF-8 text file (e.g. ../shared/datasets/tinyshakespeare.txt)
  --backend NAME              compute backend (default: wasm, or MIXPREC_BACKEND when set)
  --precision fp32|fp16|bf16  fp16: float16 autocast + loss scaling (default); bf16: bfloat16 autocast
  --steps N                   optimizer steps (default 1500)
  --batch-size N              windows per step (default 32)
  --seq-len N                 characters per window (default 64)
  --hidden N                  LSTM hidden size (default 256)
  --layers N                  LSTM layers (default 2)
  --embed N                   embedding width (default 64)
  --dropout X                 dropout between LSTM layers (default 0)
  --lr X                      AdamW learning rate (default 0.002)
  --weight-decay X            AdamW weight decay (default 0.01)
  --clip X                    gradient norm clipping after unscale_ (default 1; 0: off)
  --eval-every N              validation loss every N steps (default 250) and at the end
  --sample-len N              characters generated at the end (default 300; 0: none)
  --prompt TEXT               start of the sample (default: a newline)
  --temperature X             sampling temperature (default 0.8; 0: the most likely character)
  --seed N                    seeds weights, windows and sampling (default 0)
  --checkpoint FILE.safetensors written at every evaluation and on Ctrl-C
  --resume FILE.safetensors   continue a run exactly where its checkpoint left it
  --log-json PATH             one JSON object per line: step, eval and sample events
  --precision-report PATH     float16 range statistics of the gradients, written at every evaluation
  --report FILE.html          an HTML report of the run's plots (mixprec report), written when it ends
  --quiet                     only the final line
  --verbose                   stack traces on errors
`;

const FLAGS = {
  ...TEXT_RUN_FLAGS,
  steps: { type: 'string' },
  'batch-size': { type: 'string' },
  'seq-len': { type: 'string' },
  hidden: { type: 'string' },
  layers: { type: 'string' },
  embed: { type: 'string' },
  dropout: { type: 'string' },
  lr: { type: 'string' },
  'weight-decay': { type: 'string' },
  clip: { type: 'string' },
  'eval-every': { type: 'string' },
  'precision-report': { type: 'string' },
} as const;

export interface TrainLmArgs extends TextCommandArgs {
  steps: number;
  batchSize: number;
  seqLen: number;
  hidden: number;
  layers: number;
  embed: number;
  dropout: number;
  lr: number;
  weightDecay: number;
  clip: number;
  evalEvery: number;
  precisionReport?: string;
}

export function parseTrainLmArgs(argv: string[]): TrainLmArgs {
  const v = parseFlags('train-lm', argv, FLAGS);
  const int = (flag: string, fallback: number, min: number) => number('train-lm', flag, v[flag], fallback, { integer: true, min });
  const args: TrainLmArgs = {
    precision: choice('train-lm', 'precision', v['precision'], PRECISIONS, 'fp16'),
    steps: int('steps', 1500, 1),
    batchSize: int('batch-size', 32, 1),
    seqLen: int('seq-len', 64, 1),
    hidden: int('hidden', 256, 1),
    layers: int('layers', 2, 1),
    embed: int('embed', 64, 1),
    dropout: number('train-lm', 'dropout', v['dropout'], 0, { min: 0 }),
    lr: number('train-lm', 'lr', v['lr'], 0.002, { exclusiveMin: 0 }),
    weightDecay: number('train-lm', 'weight-decay', v['weight-decay'], 0.01, { min: 0 }),
    clip: number('train-lm', 'clip', v['clip'], 1, { min: 0 }),
    evalEvery: int('eval-every', 250, 1),
    sampleLen: int('sample-len', 300, 0),
    prompt: typeof v['prompt'] === 'string' ? v['prompt'] : '\n',
    temperature: number('train-lm', 'temperature', v['temperature'], 0.8, { min: 0 }),
    seed: int('seed', 0, 0),
    quiet: Boolean(v['quiet']),
    verbose: Boolean(v['verbose']),
    help: Boolean(v['help']),
  };
  if (args.dropout >= 1) throw usage(`mixprec train-lm: --dropout must be below 1 (got '${String(v['dropout'])}')`);
  if (args.prompt === '') throw usage('mixprec train-lm: --prompt needs at least one character');
  copyStringFlags('train-lm', v, args, [['data', 'data'], ['backend', 'backend'], ['checkpoint', 'checkpoint'], ['resume', 'resume'], ['log-json', 'logJson'], ['precision-report', 'precisionReport'], ['report', 'report']]);
  if (args.help) return args;
  if (args.data === undefined) throw usage('mixprec train-lm: --data FILE is required (a UTF-8 text file, e.g. ../shared/datasets/tinyshakespeare.txt)');
  checkBackendFlag('train-lm', args.backend);
  if (args.resume !== undefined && !existsSync(args.resume)) throw new CliError(`--resume ${args.resume}: no such checkpoint file`);
  return args;
}

/** The model's shape: a checkpoint is only resumed into the same one. */
interface ModelConfig {
  vocab: string[];
  embed: number;
  hidden: number;
  layers: number;
  dropout: number;
}

type LmMeta = TextRunMeta<'mixprec.train-lm', ModelConfig> & { args: Omit<TrainLmArgs, 'help' | 'quiet' | 'verbose'> };

export function runTrainLm(args: TrainLmArgs, out: Output): Promise<number> {
  return TextTrainingRun.command<LmMeta>('mixprec.train-lm', 'lstm', args, out, TRAIN_LM_HELP, (run) => train(run, args), { dataParallel: true });
}

async function train(run: TextTrainingRun<LmMeta>, args: TrainLmArgs): Promise<number> {
  // rank 0 prints (the other ranks' run.out is silent)
  const { corpus, dp, out } = run;
  const { train, validation } = run.split();
  run.checkPrompt(args.prompt, args.sampleLen);
  if (train.length < args.seqLen + 1) throw new CliError(`${args.data}: ${corpus.ids.length} characters are too few for windows of --seq-len ${args.seqLen}`);

  const config = run.config({ embed: args.embed, hidden: args.hidden, layers: args.layers, dropout: args.dropout });
  manualSeed(args.seed);
  const model = new CharLSTM({ vocabSize: config.vocab.length, embedDim: config.embed, hidden: config.hidden, layers: config.layers, dropout: config.dropout });
  const params = model.parameters();
  const optimizer = new AdamW(params, { lr: args.lr, weightDecay: args.weightDecay });
  const scaler = scalerFor(args.precision);
  const ctx: StepContext = {
    model: dp ? dp.wrap(model) : model,
    optimizer,
    scaler,
    precision: args.precision,
    clipGradNorm: args.clip > 0 ? args.clip : undefined,
    loss: (x, y) => lmLoss(model, x, y),
  };
  // windows come from their own generator, so that dropout draws do not move them
  const dataRng = new Generator(args.seed + 1);
  if (await run.attach({ model, optimizer, scaler, generators: { rng: defaultGenerator, dataRng } })) run.say(`resumed from ${args.resume}: step ${run.step}`);
  const checkpoint = (path: string) => run.saveCheckpoint(path, { args: { ...args, help: undefined, quiet: undefined, verbose: undefined } as LmMeta['args'] }, config);

  run.logJson(configEvent('train-lm', {
    model: 'lstm', data: args.data, characters: corpus.ids.length, vocabulary: config.vocab.length, embed: config.embed, hidden: config.hidden, layers: config.layers,
    dropout: config.dropout, precision: args.precision, optimizer: 'adamw', lr: args.lr, weight_decay: args.weightDecay, clip: args.clip,
    batch_size: args.batchSize, seq_len: args.seqLen, steps: args.steps, eval_every: args.evalEvery, seed: args.seed, resume: args.resume,
    world_size: dp?.worldSize,
  }));
  let recorder: PrecisionRecorder | null = args.precisionReport && run.isMain
    ? precisionReport({ model, scaler, format: args.precision === 'bf16' ? 'bfloat16' : 'float16', findOverflow: false })
    : null;
  /** Data-parallel: every rank draws the global batch (the windows one process would) and trains on its share. */
  const rankBatch = (parallel: DataParallel): [Tensor, Tensor] => {
    const [gx, gy] = train.randomBatch(dataRng, args.batchSize * parallel.worldSize, args.seqLen);
    const part = (t: Tensor) => t.narrow(1, parallel.rank * args.batchSize, args.batchSize).contiguous();
    const mine: [Tensor, Tensor] = [part(gx), part(gy)];
    gx.dispose();
    gy.dispose();
    return mine;
  };

  const paramCount = params.reduce((n, p) => n + p.numel, 0);
  run.say(
    `training a ${config.layers}-layer LSTM (hidden ${config.hidden}, ${paramCount} parameters) on ${args.data}: ` +
      `${corpus.ids.length} characters, vocabulary ${config.vocab.length}, ${train.length} train / ${validation.length} validation; ` +
      `precision ${args.precision}, AdamW lr ${args.lr}, batch ${args.batchSize}${dp ? ` x ${dp.worldSize} ranks` : ''} x ${args.seqLen} characters, ${args.steps} steps, seed ${args.seed}`,
  );
  const started = performance.now();
  const newBar = () => run.progressBar(args.steps, 'steps', '  loss {loss}  {cps} chars/s', { loss: '-', cps: '-' });
  let bar = newBar();
  let lossSum = 0;
  let lossCount = 0;
  let windowStart = performance.now();
  let windowSteps = 0;
  let lastEval: LmEvaluation | null = null;

  const evaluateNow = async () => {
    if (!run.isMain) return;
    bar?.stop();
    const ev = await evaluateLm(model, validation, args.seqLen, args.precision);
    lastEval = ev;
    const scale = await scaler.getScaleAsync();
    const skipped = await run.skippedSteps();
    const seconds = (performance.now() - started) / 1000;
    run.say(
      `step ${run.step}/${args.steps}  train loss ${(lossSum / Math.max(lossCount, 1)).toFixed(4)}  ` +
        `val loss ${ev.loss.toFixed(4)} nats/char (${ev.bpc.toFixed(3)} bpc)  loss scale ${scale}  skipped steps ${skipped}  ${seconds.toFixed(0)} s`,
    );
    run.logJson({ event: 'eval', step: run.step, val_loss: ev.loss, val_bpc: ev.bpc, train_loss: lossSum / Math.max(lossCount, 1), loss_scale: scale, skipped_steps: skipped, seconds });
    lossSum = 0;
    lossCount = 0;
    if (args.checkpoint) await checkpoint(args.checkpoint);
    if (recorder && args.precisionReport) await recorder.save(args.precisionReport);
    if (run.step < args.steps) bar = newBar();
  };

  try {
    while (run.step < args.steps) {
      const [x, y] = dp ? rankBatch(dp) : train.randomBatch(dataRng, args.batchSize, args.seqLen);
      // per step the scaler's count is read only for the JSON log (on a GPU each read is a round trip)
      const skippedNow = run.logging ? await scaler.getSkippedStepsAsync() : 0;
      const { loss, stepped } = trainStep(ctx, x, y);
      const value = await loss.item();
      loss.dispose();
      x.dispose();
      y.dispose();
      if (recorder) await recorder.step();
      run.step++;
      // a skipped step's loss is left out of the average (on webgpu the skip is decided on the
      // device: stepped is true there and the skip is only in the scaler's count)
      if (stepped && Number.isFinite(value)) {
        lossSum += value;
        lossCount++;
      }
      windowSteps++;
      const cps = (windowSteps * args.batchSize * (dp?.worldSize ?? 1) * args.seqLen) / ((performance.now() - windowStart) / 1000);
      if (run.logging) run.logJson({ event: 'step', step: run.step, loss: value, loss_scale: await scaler.getScaleAsync(), skipped: (await scaler.getSkippedStepsAsync()) > skippedNow });
      bar?.update(run.step, { payload: { loss: (lossSum / Math.max(lossCount, 1)).toFixed(4), cps: cps.toFixed(0) } });
      if (!bar && !args.quiet && run.step % 50 === 0 && run.step % args.evalEvery !== 0) {
        out.log(`step ${run.step}/${args.steps}  train loss ${(lossSum / Math.max(lossCount, 1)).toFixed(4)}  ${cps.toFixed(0)} chars/s`);
        windowStart = performance.now();
        windowSteps = 0;
      }
      if (await run.interruptedAfterStep(checkpoint)) {
        bar?.stop();
        return 130;
      }
      if (run.step % args.evalEvery === 0 || run.step === args.steps) await evaluateNow();
    }
    if (!run.isMain) return 0;
    if (!lastEval) await evaluateNow(); // a resumed run that was already complete
    bar?.stop();
    const seconds = (performance.now() - started) / 1000;
    const ev = lastEval!;
    if (args.sampleLen > 0) {
      const ids = await model.generate([...corpus.vocab.encode(args.prompt)], args.sampleLen, {
        temperature: args.temperature,
        generator: new Generator(args.seed + 2),
        underPrecision: (fn) => underPrecision(args.precision, fn),
      });
      const text = args.prompt + corpus.vocab.decode(ids);
      run.say(`sample (temperature ${args.temperature}):\n${text}\n`);
      run.logJson({ event: 'sample', prompt: args.prompt, temperature: args.temperature, text });
    }
    out.log(
      `validation loss: ${ev.loss.toFixed(4)} nats/char (${ev.bpc.toFixed(3)} bits/char) after ${run.step} steps, ` +
        `${await run.skippedSteps()} skipped steps, loss scale ${await scaler.getScaleAsync()}, ${seconds.toFixed(0)} s`,
    );
    return 0;
  } finally {
    bar?.stop();
    await run.writeReport(recorder?.report());
    recorder?.close();
    recorder = null;
  }
}
