/**
 * `mixprec train-gpt`: nanoGPT's character-level Shakespeare recipe (train.py with
 * config/train_shakespeare_char.py and the README's CPU settings) on any text file, in fp32, fp16
 * (float16 autocast + GradScaler) or bf16: mx.models.gpt, AdamW with weight decay on the 2-D weights,
 * a cosine learning rate with linear warm-up, gradient accumulation, clipping after
 * `scaler.unscale_`, estimate_loss on both splits every --eval-interval iterations, a sample at the
 * end, checkpoints with a bitwise resume and JSON logs.
 */
import { existsSync } from 'node:fs';
import { manualSeed, defaultGenerator, Generator } from '../random/generator.js';
import { GPT, type GPTConfig } from '../models/gpt.js';
import { AdamW } from '../optim/adam.js';
import { tensor } from '../ops/creation.js';
import { scalerFor, trainStepAccumulated, underPrecision, PRECISIONS, type Precision, type StepContext } from '../train/classifier.js';
import { estimateLoss, gptLoss, nanoGptLr, nanoGptParamGroups } from '../train/gpt.js';
import { choice, number, parseFlags, copyStringFlags, checkBackendFlag } from './args.js';
import { CliError, usage } from './errors.js';
import { TextTrainingRun, TEXT_RUN_FLAGS, type TextCommandArgs, type TextRunMeta } from './text_run.js';
import { configEvent } from './run_report.js';
import type { Output } from './train.js';

export const TRAIN_GPT_HELP = `usage: mixprec train-gpt --data FILE.txt [options]

Trains a character-level GPT (nanoGPT's model and recipe) on a text file (90% train, 10% validation)
and prints the train and validation loss every --eval-interval iterations, then a generated sample.
The defaults are nanoGPT's CPU recipe for Tiny Shakespeare.

  --data PATH                 UTF-8 text file (e.g. ../shared/datasets/tinyshakespeare.txt)
  --backend NAME              compute backend (default: wasm, or MIXPREC_BACKEND when set)
  --precision fp32|fp16|bf16  fp16: float16 autocast + loss scaling (default); bf16: bfloat16 autocast
  --n-layer N                 transformer blocks (default 4)
  --n-head N                  attention heads (default 4)
  --n-embd N                  embedding width (default 128)
  --block-size N              context length in characters (default 64)
  --bias                      biases in the Linears and LayerNorms (default: none, as the recipe)
  --dropout X                 dropout (default 0)
  --batch-size N              sequences per micro-batch (default 12)
  --grad-accum N              micro-batches per iteration (default 1)
  --max-iters N               iterations (optimizer steps; default 2000)
  --lr X                      peak learning rate (default 1e-3)
  --min-lr X                  final learning rate (default 1e-4)
  --warmup-iters N            linear warm-up iterations (default 100)
  --lr-decay-iters N          cosine decay to --min-lr until this iteration (default 2000)
  --weight-decay X            AdamW weight decay on the 2-D weights (default 0.1)
  --beta2 X                   AdamW beta2 (default 0.99; beta1 0.9)
  --grad-clip X               gradient norm clipping after unscale_ (default 1; 0: off)
  --eval-interval N           estimate the losses every N iterations and at the end (default 250)
  --eval-iters N              batches per split for each estimate (default 20)
  --sample-len N              characters generated at the end (default 500; 0: none)
  --prompt TEXT               start of the sample (default: a newline)
  --temperature X             sampling temperature (default 0.8; 0: the most likely character)
  --top-k N                   sample among the N most likely characters (default 200)
  --seed N                    seeds weights, batches, dropout and sampling (default 0)
  --checkpoint FILE.safetensors written at every evaluation and on Ctrl-C
  --resume FILE.safetensors   continue a run exactly where its checkpoint left it
  --log-json PATH             one JSON object per line: eval events {"event":"eval","iter":I,"train_loss",
                              "val_loss","loss_scale","skipped_steps"} (losses after I iterations), step events
                              (iteration I's loss, lr, ms, loss_scale, skipped) and the sample
  --report FILE.html          an HTML report of the run's plots (mixprec report), written when it ends
  --quiet                     only the final line
  --verbose                   stack traces on errors
`;

const FLAGS = {
  ...TEXT_RUN_FLAGS,
  'n-layer': { type: 'string' },
  'n-head': { type: 'string' },
  'n-embd': { type: 'string' },
  'block-size': { type: 'string' },
  bias: { type: 'boolean' },
  dropout: { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  'max-iters': { type: 'string' },
  lr: { type: 'string' },
  'min-lr': { type: 'string' },
  'warmup-iters': { type: 'string' },
  'lr-decay-iters': { type: 'string' },
  'weight-decay': { type: 'string' },
  beta2: { type: 'string' },
  'grad-clip': { type: 'string' },
  'eval-interval': { type: 'string' },
  'eval-iters': { type: 'string' },
  'top-k': { type: 'string' },
} as const;

export interface TrainGptArgs extends TextCommandArgs {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  blockSize: number;
  bias: boolean;
  dropout: number;
  batchSize: number;
  gradAccum: number;
  maxIters: number;
  lr: number;
  minLr: number;
  warmupIters: number;
  lrDecayIters: number;
  weightDecay: number;
  beta2: number;
  gradClip: number;
  evalInterval: number;
  evalIters: number;
  topK: number;
}

export function parseTrainGptArgs(argv: string[]): TrainGptArgs {
  const command = 'train-gpt';
  const v = parseFlags(command, argv, FLAGS);
  const int = (flag: string, fallback: number, min: number) => number(command, flag, v[flag], fallback, { integer: true, min });
  const positive = (flag: string, fallback: number) => number(command, flag, v[flag], fallback, { exclusiveMin: 0 });
  const args: TrainGptArgs = {
    precision: choice(command, 'precision', v['precision'], PRECISIONS, 'fp16'),
    nLayer: int('n-layer', 4, 1),
    nHead: int('n-head', 4, 1),
    nEmbd: int('n-embd', 128, 1),
    blockSize: int('block-size', 64, 1),
    bias: Boolean(v['bias']),
    dropout: number(command, 'dropout', v['dropout'], 0, { min: 0 }),
    batchSize: int('batch-size', 12, 1),
    gradAccum: int('grad-accum', 1, 1),
    maxIters: int('max-iters', 2000, 0),
    lr: positive('lr', 1e-3),
    minLr: number(command, 'min-lr', v['min-lr'], 1e-4, { min: 0 }),
    warmupIters: int('warmup-iters', 100, 0),
    lrDecayIters: int('lr-decay-iters', 2000, 0),
    weightDecay: number(command, 'weight-decay', v['weight-decay'], 0.1, { min: 0 }),
    beta2: number(command, 'beta2', v['beta2'], 0.99, { min: 0 }),
    gradClip: number(command, 'grad-clip', v['grad-clip'], 1, { min: 0 }),
    evalInterval: int('eval-interval', 250, 1),
    evalIters: int('eval-iters', 20, 1),
    sampleLen: int('sample-len', 500, 0),
    prompt: typeof v['prompt'] === 'string' ? v['prompt'] : '\n',
    temperature: number(command, 'temperature', v['temperature'], 0.8, { min: 0 }),
    topK: int('top-k', 200, 1),
    seed: int('seed', 0, 0),
    quiet: Boolean(v['quiet']),
    verbose: Boolean(v['verbose']),
    help: Boolean(v['help']),
  };
  if (args.dropout >= 1) throw usage(`mixprec ${command}: --dropout must be below 1 (got '${String(v['dropout'])}')`);
  if (args.beta2 >= 1) throw usage(`mixprec ${command}: --beta2 must be below 1 (got '${String(v['beta2'])}')`);
  if (args.nEmbd % args.nHead !== 0) throw usage(`mixprec ${command}: --n-embd ${args.nEmbd} must be divisible by --n-head ${args.nHead}`);
  if (args.lrDecayIters <= args.warmupIters && args.maxIters > args.warmupIters) {
    throw usage(`mixprec ${command}: --lr-decay-iters (${args.lrDecayIters}) must be greater than --warmup-iters (${args.warmupIters})`);
  }
  if (args.prompt === '') throw usage(`mixprec ${command}: --prompt needs at least one character`);
  copyStringFlags(command, v, args, [['data', 'data'], ['backend', 'backend'], ['checkpoint', 'checkpoint'], ['resume', 'resume'], ['log-json', 'logJson'], ['report', 'report']]);
  if (args.help) return args;
  if (args.data === undefined) throw usage(`mixprec ${command}: --data FILE is required (a UTF-8 text file, e.g. ../shared/datasets/tinyshakespeare.txt)`);
  checkBackendFlag(command, args.backend);
  if (args.resume !== undefined && !existsSync(args.resume)) throw new CliError(`--resume ${args.resume}: no such checkpoint file`);
  return args;
}

/** The model's shape (with the vocabulary): a checkpoint is only resumed into the same one. */
type ModelConfig = Omit<GPTConfig, 'vocabSize'> & { vocab: string[] };

type GptMeta = TextRunMeta<'mixprec.train-gpt', ModelConfig> & {
  /** Whether the losses at `step` were estimated before the checkpoint was written (a resume does not repeat it). */
  evaluated: boolean;
  args: Omit<TrainGptArgs, 'help' | 'quiet' | 'verbose'>;
};

export function runTrainGpt(args: TrainGptArgs, out: Output): Promise<number> {
  return TextTrainingRun.command<GptMeta>('mixprec.train-gpt', 'gpt', args, out, TRAIN_GPT_HELP, (run) => train(run, args, out));
}

async function train(run: TextTrainingRun<GptMeta>, args: TrainGptArgs, out: Output): Promise<number> {
  const { corpus } = run;
  const { train, validation } = run.split();
  const config = run.config({ nLayer: args.nLayer, nHead: args.nHead, nEmbd: args.nEmbd, blockSize: args.blockSize, bias: args.bias, dropout: args.dropout });
  run.checkPrompt(args.prompt, args.sampleLen);
  for (const [name, split] of [['training', train], ['validation', validation]] as const) {
    if (split.length < config.blockSize + 1) throw new CliError(`${args.data}: the ${name} split (${split.length} characters) is too short for blocks of ${config.blockSize} + 1`);
  }

  manualSeed(args.seed);
  const { vocab, ...shape } = config;
  const model = new GPT({ ...shape, vocabSize: vocab.length });
  const optimizer = new AdamW(nanoGptParamGroups(model, args.weightDecay), { lr: args.lr, betas: [0.9, args.beta2] });
  const scaler = scalerFor(args.precision);
  const ctx: StepContext = {
    model,
    optimizer,
    scaler,
    precision: args.precision,
    clipGradNorm: args.gradClip > 0 ? args.gradClip : undefined,
    loss: (x, y) => gptLoss(model, x, y),
  };
  // batches and the loss estimates draw from their own generators: dropout does not move the
  // batches, and --eval-interval does not change the training batches
  const dataRng = new Generator(args.seed + 1);
  const evalRng = new Generator(args.seed + 3);
  const resumed = await run.attach({ model, optimizer, scaler, generators: { rng: defaultGenerator, dataRng, evalRng } });
  if (resumed) run.say(`resumed from ${args.resume}: iter ${run.step}`);
  let evaluatedAt = resumed?.evaluated ? run.step : -1;
  const checkpoint = (path: string) =>
    run.saveCheckpoint(path, { evaluated: evaluatedAt === run.step, args: { ...args, help: undefined, quiet: undefined, verbose: undefined } as GptMeta['args'] }, config);

  run.say(
    `training a GPT (${config.nLayer} layers, ${config.nHead} heads, width ${config.nEmbd}, ${(model.numParams() / 1e6).toFixed(2)}M parameters) on ${args.data}: ` +
      `${corpus.ids.length} characters, vocabulary ${vocab.length}, ${train.length} train / ${validation.length} validation; ` +
      `precision ${args.precision}, AdamW lr ${args.lr} -> ${args.minLr}, ${args.gradAccum} x ${args.batchSize} x ${config.blockSize} tokens per iteration, ${args.maxIters} iterations, seed ${args.seed}`,
  );
  run.logJson(configEvent('train-gpt', {
    model: 'gpt', data: args.data, characters: corpus.ids.length, vocabulary: vocab.length, n_layer: config.nLayer, n_head: config.nHead, n_embd: config.nEmbd,
    block_size: config.blockSize, bias: config.bias, dropout: config.dropout, parameters: model.numParams(), precision: args.precision, optimizer: 'adamw',
    lr: args.lr, min_lr: args.minLr, warmup_iters: args.warmupIters, lr_decay_iters: args.lrDecayIters, weight_decay: args.weightDecay, beta2: args.beta2,
    grad_clip: args.gradClip, batch_size: args.batchSize, grad_accum: args.gradAccum, max_iters: args.maxIters, eval_interval: args.evalInterval,
    eval_iters: args.evalIters, seed: args.seed, resume: args.resume,
  }));
  const schedule = { lr: args.lr, minLr: args.minLr, warmupIters: args.warmupIters, lrDecayIters: args.lrDecayIters };
  const started = performance.now();
  const newBar = () => run.progressBar(args.maxIters, 'iters', '  loss {loss}  {ms} ms/iter', { loss: '-', ms: '-' });
  let bar = newBar();
  let last: { train: number; val: number } | null = null;
  let windowStart = performance.now();
  let windowIters = 0;
  let windowLoss = 0;

  const evaluateNow = async () => {
    bar?.stop();
    const losses = await estimateLoss(model, { train, val: validation }, { batchSize: args.batchSize, blockSize: config.blockSize, evalIters: args.evalIters, precision: args.precision, generator: evalRng });
    last = { train: losses['train']!, val: losses['val']! };
    evaluatedAt = run.step;
    const scale = await scaler.getScaleAsync();
    const skipped = await run.skippedSteps();
    const seconds = (performance.now() - started) / 1000;
    run.say(`iter ${run.step}/${args.maxIters}: train loss ${last.train.toFixed(4)}, val loss ${last.val.toFixed(4)}, loss scale ${scale}, skipped steps ${skipped}, ${seconds.toFixed(0)} s`);
    run.logJson({ event: 'eval', iter: run.step, train_loss: last.train, val_loss: last.val, loss_scale: scale, skipped_steps: skipped });
    if (args.checkpoint) await checkpoint(args.checkpoint);
    if (run.step < args.maxIters) bar = newBar();
  };

  try {
    while (run.step < args.maxIters) {
      if (run.step % args.evalInterval === 0 && evaluatedAt !== run.step) await evaluateNow();
      const lr = nanoGptLr(run.step, schedule);
      for (const group of optimizer.paramGroups) group.lr = lr;
      const t0 = performance.now();
      const batches = Array.from({ length: args.gradAccum }, () => train.randomBatch(dataRng, args.batchSize, config.blockSize, { batchFirst: true }));
      const skippedNow = run.logging ? await scaler.getSkippedStepsAsync() : 0;
      const { loss } = trainStepAccumulated(ctx, batches);
      const value = await loss.item();
      loss.dispose();
      for (const [x, y] of batches) {
        x.dispose();
        y.dispose();
      }
      const ms = performance.now() - t0;
      if (run.logging) {
        run.logJson({ event: 'step', iter: run.step, loss: value, lr, ms, loss_scale: await scaler.getScaleAsync(), skipped: (await scaler.getSkippedStepsAsync()) > skippedNow });
      }
      run.step++;
      windowIters++;
      windowLoss += value;
      const msPerIter = (performance.now() - windowStart) / windowIters;
      bar?.update(run.step, { payload: { loss: value.toFixed(4), ms: msPerIter.toFixed(0) } });
      if (!bar && !args.quiet && run.step % 50 === 0) {
        out.log(`iter ${run.step}/${args.maxIters}: loss ${(windowLoss / windowIters).toFixed(4)}, lr ${lr.toExponential(2)}, ${msPerIter.toFixed(0)} ms/iter`);
        windowStart = performance.now();
        windowIters = 0;
        windowLoss = 0;
      }
      if (await run.interruptedAfterStep(checkpoint)) {
        bar?.stop();
        return 130;
      }
    }
    if (evaluatedAt !== run.step || !last) await evaluateNow();
    bar?.stop();
    const seconds = (performance.now() - started) / 1000;
    const final = last!;
    if (args.sampleLen > 0) {
      const prompt = tensor(Array.from(corpus.vocab.encode(args.prompt)), { dtype: 'int32', shape: [1, [...args.prompt].length] });
      const ids = await model.generate(prompt, args.sampleLen, {
        temperature: args.temperature,
        topK: args.topK,
        generator: new Generator(args.seed + 2),
        underPrecision: (fn) => underPrecision(args.precision, fn),
      });
      const text = corpus.vocab.decode(await ids.data());
      prompt.dispose();
      ids.dispose();
      run.say(`sample (temperature ${args.temperature}, top-k ${args.topK}):\n${text}\n`);
      run.logJson({ event: 'sample', prompt: args.prompt, temperature: args.temperature, top_k: args.topK, text });
    }
    out.log(
      `val loss: ${final.val.toFixed(4)} (train loss ${final.train.toFixed(4)}) after ${run.step} iterations, ` +
        `${await run.skippedSteps()} skipped steps, loss scale ${await scaler.getScaleAsync()}, ${seconds.toFixed(0)} s`,
    );
    return 0;
  } finally {
    bar?.stop();
  }
}
