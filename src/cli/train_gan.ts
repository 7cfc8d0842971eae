/**
 * `mixprec train-gan`: a DCGAN on CIFAR-10 with fp32, fp16 (float16 autocast + GradScaler) or bf16
 * (bfloat16 autocast) precision. Two Adam optimizers share ONE GradScaler, PyTorch's multi-optimizer
 * pattern: scale(lossD).backward(), step(optD), scale(lossG).backward(), step(optG), update() once
 * per iteration. Each step skips only if its own gradients overflowed; update() backs off once if
 * either did. Sample grids from a fixed noise vector go to --out every --sample-every iterations.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
import { scope, keep } from '../tensor/scope.js';
import { noGrad } from '../autograd/mode.js';
import { initDefaultBackend, setBackend } from '../backend/registry.js';
import { manualSeed, Generator } from '../random/generator.js';
import { full, randn } from '../ops/creation.js';
import { add } from '../ops/elementwise.js';
import { binaryCrossEntropyWithLogits } from '../nn/functional.js';
import { DCGANGenerator, DCGANDiscriminator } from '../models/dcgan.js';
import { Adam } from '../optim/adam.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { GradScaler } from '../amp/grad_scaler.js';
import { DataLoader } from '../data/dataloader.js';
import { Compose, Normalize, ToTensor } from '../data/transforms.js';
import type { ImageArrayDataset } from '../data/dataset.js';
import { saveImageGrid } from '../io/png_grid.js';
import { autocastDtype, scalerFor, underPrecision, PRECISIONS, type Precision } from '../train/classifier.js';
import { number, parseFlags, choice, copyStringFlags, checkBackendFlag } from './args.js';
import { CliError } from './errors.js';
import { resolveData } from './datasets.js';
import type { Output } from './train.js';
import { configEvent, RunReport } from './run_report.js';
import { DataParallel } from '../train/data_parallel.js';

export const TRAIN_GAN_HELP = `usage: mixprec train-gan [options]

Trains a DCGAN (ConvTranspose2d/BatchNorm2d/ReLU/Tanh generator, Conv2d/BatchNorm2d/LeakyReLU
discriminator, BCE with logits, Adam lr 2e-4 betas 0.5/0.999 for both) on CIFAR-10 and writes
grids of 64 samples from a fixed noise vector.

  --data PATH                   CIFAR-10 archive or folder; without it: ./data/, else download
  --iterations N                generator + discriminator updates (default 1500)
  --batch-size N                (default 64)
  --width N                     channel multiplier of both networks (default 32)
  --precision fp32|fp16|bf16    fp16: float16 autocast + one GradScaler for both optimizers (default);
                                bf16: bfloat16 autocast, no scaling
  --seed N                      seeds weights, noise, data order and the fixed sample noise (default 0)
  --out DIR                     sample grids: samples-NNNNNN.png every --sample-every iterations
                                (000000 before training) and samples-final.png (default gan-samples)
  --sample-every N              (default 500; 0: only the final grid)
  --log-json PATH               one JSON object per line: iteration events (losses, loss scale, skipped)
  --report FILE.html            an HTML report of the run's plots (mixprec report), written when it ends
  --backend NAME                compute backend (default: wasm, or MIXPREC_BACKEND when set)
  --quiet                       only the final line
  --verbose                     stack traces on errors
`;

const FLAGS = {
  data: { type: 'string' },
  iterations: { type: 'string' },
  'batch-size': { type: 'string' },
  width: { type: 'string' },
  precision: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  'sample-every': { type: 'string' },
  'log-json': { type: 'string' },
  report: { type: 'string' },
  backend: { type: 'string' },
  quiet: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Length of the noise vector (PyTorch's DCGAN nz). */
export const LATENT_DIM = 100;
/** The sample grid: 8x8 images. */
const SAMPLES = 64;
/** A status line every this many iterations (and at every sample grid). */
const STATUS_EVERY = 100;

export interface TrainGanArgs {
  data?: string;
  iterations: number;
  batchSize: number;
  width: number;
  precision: Precision;
  seed: number;
  out: string;
  sampleEvery: number;
  logJson?: string;
  /** --report: the HTML report written when training ends. */
  report?: string;
  backend?: string;
  quiet: boolean;
  verbose: boolean;
  help: boolean;
}

export function parseTrainGanArgs(argv: string[]): TrainGanArgs {
  const v = parseFlags('train-gan', argv, FLAGS);
  const args: TrainGanArgs = {
    iterations: number('train-gan', 'iterations', v['iterations'], 1500, { integer: true, min: 1 }),
    // BatchNorm needs more than one value per channel in training mode.
    batchSize: number('train-gan', 'batch-size', v['batch-size'], 64, { integer: true, min: 2 }),
    width: number('train-gan', 'width', v['width'], 32, { integer: true, min: 1 }),
    precision: choice('train-gan', 'precision', v['precision'], PRECISIONS, 'fp16'),
    seed: number('train-gan', 'seed', v['seed'], 0, { integer: true, min: 0 }),
    out: 'gan-samples',
    sampleEvery: number('train-gan', 'sample-every', v['sample-every'], 500, { integer: true, min: 0 }),
    quiet: Boolean(v['quiet']),
    verbose: Boolean(v['verbose']),
    help: Boolean(v['help']),
  };
  copyStringFlags('train-gan', v, args, [['data', 'data'], ['out', 'out'], ['log-json', 'logJson'], ['backend', 'backend'], ['report', 'report']]);
  checkBackendFlag('train-gan', args.backend);
  return args;
}

export interface GanContext {
  generator: DCGANGenerator;
  discriminator: DCGANDiscriminator;
  optG: Optimizer<object>;
  optD: Optimizer<object>;
  /** ONE scaler for both optimizers: step() each, update() once. */
  scaler: GradScaler;
  precision: Precision;
}

export interface GanStepResult {
  /** float32 0-d losses (kept: read them, then dispose them). */
  lossD: Tensor;
  lossG: Tensor;
  /** Whether each optimizer stepped (false: its gradients overflowed); undefined: decided on the device (webgpu). */
  steppedD: boolean | undefined;
  steppedG: boolean | undefined;
}

/**
 * One DCGAN iteration (PyTorch's DCGAN example with AMP): D on a real batch (label 1) and on
 * G(noise).detach() (label 0), then G through D on the same fake batch (label 1, the non-saturating
 * loss). All inside one scope: memory is the same after every iteration.
 */
export function ganStep(ctx: GanContext, real: Tensor, noise?: Tensor): GanStepResult {
  const { generator: G, discriminator: D, optG, optD, scaler, precision } = ctx;
  return scope(() => {
    const n = real.shape[0]!;
    const z = noise ?? randn([n, G.latentDim, 1, 1]);
    const ones = full([n], 1);
    const zeros = full([n], 0);
    const bce = binaryCrossEntropyWithLogits;

    optD.zeroGrad();
    // Separate autocast regions: the D step's 16-bit weight copies are dropped, so the G step sees
    // D's updated weights (as PyTorch's per-region cast cache does).
    const [fake, lossD] = underPrecision(precision, () => {
      const f = G.call(z) as Tensor;
      // Real and fake in separate batches: BatchNorm statistics of one kind each (the DCGAN recipe).
      const l = add(bce(D.call(real) as Tensor, ones), bce(D.call(f.detach()) as Tensor, zeros));
      return [f, l] as const;
    });
    scaler.scale(lossD).backward();
    const steppedD = scaler.step(optD);

    optG.zeroGrad();
    // D's weights need no gradients here (the next iteration zeroes them before use): frozen for
    // the forward, the backward skips their weight-gradient convolutions.
    const lossG = frozen(D, () => underPrecision(precision, () => bce(D.call(fake) as Tensor, ones)));
    scaler.scale(lossG).backward();
    const steppedG = scaler.step(optG);
    scaler.update();
    return { lossD: lossD.detach(), lossG: lossG.detach(), steppedD, steppedG };
  });
}

/** Run `fn` with `model`'s parameters not requiring grad (restored afterwards). */
function frozen<T>(model: DCGANDiscriminator, fn: () => T): T {
  const params = model.parameters().filter((p) => p.requiresGrad);
  for (const p of params) p.requiresGrad_(false);
  try {
    return fn();
  } finally {
    for (const p of params) p.requiresGrad_(true);
  }
}

/** G(noise) in eval mode (BatchNorm's running statistics) without gradients, then back to training mode. */
export function sample(G: DCGANGenerator, noise: Tensor, precision: Precision): Tensor {
  const wasTraining = G.training;
  G.eval();
  try {
    return noGrad(() => scope(() => underPrecision(precision, () => G.call(noise) as Tensor).float()));
  } finally {
    G.train(wasTraining);
  }
}

/** True when every parameter of `model` is finite. */
async function allFinite(model: DCGANGenerator | DCGANDiscriminator): Promise<boolean> {
  for (const p of model.parameters()) {
    const values = await p.data();
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  }
  return true;
}

/** Batches forever: epoch after epoch of the loader. */
async function* endless<B>(loader: DataLoader<B>): AsyncGenerator<B> {
  for (;;) yield* loader;
}

export async function runTrainGan(args: TrainGanArgs, out: Output): Promise<number> {
  if (args.help) {
    out.log(TRAIN_GAN_HELP.trimEnd());
    return 0;
  }
  await (args.backend ? setBackend(args.backend) : initDefaultBackend());
  // Started by a launcher (mixprec run): data-parallel, and only rank 0 prints and writes samples.
  const dp = await DataParallel.fromEnvironment();
  const main = !dp || dp.isMain;
  if (!main) out = { log: () => undefined, isTTY: false };
  manualSeed(args.seed);
  const say = (line: string) => {
    if (!args.quiet) out.log(line);
  };
  const data = await resolveData({
    dataset: 'cifar10',
    data: args.data,
    download: false,
    augment: false,
    progress: out.isTTY && !args.quiet,
    notice: (line) => out.log(line),
  });
  if (data.name !== 'cifar10' || data.imageSize !== 32) {
    throw new CliError(`mixprec train-gan: needs CIFAR-10's 32x32 images, found ${data.name} (${data.channels}x${data.imageSize}x${data.imageSize}); pass --data cifar-10-binary.tar.gz`);
  }
  // Tanh outputs [-1, 1]: the real images are mapped there too, not to the classifier's z-scores.
  const train = data.train as ImageArrayDataset;
  train.transform = new Compose([new ToTensor(), new Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])]);
  if (train.length < args.batchSize) throw new CliError(`mixprec train-gan: --batch-size ${args.batchSize} is larger than the ${train.length} training images`);
  const loader = new DataLoader(train as never, {
    batchSize: args.batchSize,
    ...(dp ? { sampler: dp.trainSampler(train, args.seed) } : { shuffle: true }),
    dropLast: true, // full batches only: BatchNorm statistics of equal-sized batches
    seed: args.seed,
    dtype: autocastDtype(args.precision) ?? undefined,
  });

  const G = new DCGANGenerator({ width: args.width, latentDim: LATENT_DIM, channels: 3 });
  const D = new DCGANDiscriminator({ width: args.width, channels: 3 });
  if (dp) {
    // Gradients are averaged by hooks on the parameters, so ganStep keeps calling G and D; the
    // BatchNorm statistics stay each rank's own (rank 0's make the sample grids).
    dp.wrap(G, { broadcastBuffers: false });
    dp.wrap(D, { broadcastBuffers: false });
    manualSeed(dp.rankSeed(args.seed)); // each rank its own noise
  }
  const adam = { lr: 2e-4, betas: [0.5, 0.999] as const };
  const ctx: GanContext = {
    generator: G,
    discriminator: D,
    optG: new Adam(G.parameters(), adam),
    optD: new Adam(D.parameters(), adam),
    scaler: scalerFor(args.precision),
    precision: args.precision,
  };
  const { scaler } = ctx;
  // Drawn once, from its own generator: the same 64 points of latent space in every grid.
  const fixedNoise = keep(randn([SAMPLES, LATENT_DIM, 1, 1], { generator: new Generator(args.seed + 1) }));

  try {
    mkdirSync(args.out, { recursive: true });
  } catch (e) {
    throw new CliError(`--out ${args.out}: cannot create the folder (${(e as Error).message})`);
  }
  const writeSamples = async (name: string): Promise<string> => {
    const path = join(args.out, name);
    if (!main) return path;
    const images = sample(G, fixedNoise, args.precision);
    try {
      await saveImageGrid(path, images);
    } finally {
      images.dispose();
    }
    return path;
  };
  const pad = (i: number) => String(i).padStart(6, '0');

  const logFile: WriteStream | null = args.logJson && main ? createWriteStream(args.logJson, { flags: 'w' }) : null;
  const report = args.report && main ? new RunReport(args.report, `dcgan ${args.precision}`) : null;
  const logJson = (event: { event: string } & Record<string, unknown>) => {
    report?.add(event);
    logFile?.write(`${JSON.stringify(event)}\n`);
  };
  logJson(configEvent('train-gan', {
    model: 'dcgan', width: args.width, dataset: data.name, data_source: data.source, train_images: train.length, precision: args.precision,
    optimizer: 'adam', lr: adam.lr, betas: adam.betas.join('/'), batch_size: args.batchSize, iterations: args.iterations, seed: args.seed,
    world_size: dp?.worldSize,
  }));
  const params = (m: DCGANGenerator | DCGANDiscriminator) => m.parameters().reduce((s, p) => s + p.numel, 0);
  say(
    `training a DCGAN (width ${args.width}: G ${params(G).toLocaleString('en-US')} / D ${params(D).toLocaleString('en-US')} parameters) on ${data.name} (${data.source}): ` +
      `${train.length} images, precision ${args.precision}, Adam lr 2e-4 betas 0.5/0.999, batch ${args.batchSize}${dp ? ` x ${dp.worldSize} ranks` : ''}, ${args.iterations} iterations, seed ${args.seed}`,
  );
  try {
    if (args.sampleEvery > 0) say(`wrote ${await writeSamples(`samples-${pad(0)}.png`)} (before training)`);
    let iteration = 0;
    // skipped iterations are counted by the scaler; it is read per iteration only for --log-json
    // (on a GPU each read is a round trip)
    const skippedAtStart = await scaler.getSkippedStepsAsync();
    let skippedSeen = skippedAtStart;
    const skippedSteps = async () => (await scaler.getSkippedStepsAsync()) - skippedAtStart;
    let window = { d: 0, g: 0, n: 0 };
    let last = { d: NaN, g: NaN };
    const started = performance.now();
    for await (const [x] of endless(loader) as AsyncGenerator<[Tensor, Tensor]>) {
      const r = ganStep(ctx, x);
      last = { d: await r.lossD.item(), g: await r.lossG.item() };
      r.lossD.dispose();
      r.lossG.dispose();
      iteration++;
      if (Number.isFinite(last.d) && Number.isFinite(last.g)) window = { d: window.d + last.d, g: window.g + last.g, n: window.n + 1 };
      if (logFile || report) {
        // Per iteration, not per optimizer: an overflow in either network is one skipped step
        // (the other one's step may still have run; see the module comment).
        const skippedNow = await scaler.getSkippedStepsAsync();
        logJson({ event: 'iteration', iteration, loss_d: last.d, loss_g: last.g, loss_scale: await scaler.getScaleAsync(), skipped: skippedNow > skippedSeen });
        skippedSeen = skippedNow;
      }
      const sampleNow = args.sampleEvery > 0 && iteration % args.sampleEvery === 0;
      if (!args.quiet && (iteration % STATUS_EVERY === 0 || sampleNow || iteration === args.iterations)) {
        const seconds = (performance.now() - started) / 1000;
        out.log(
          `iteration ${iteration}/${args.iterations}  loss_d ${(window.d / Math.max(window.n, 1)).toFixed(4)}  loss_g ${(window.g / Math.max(window.n, 1)).toFixed(4)}  ` +
            `loss scale ${await scaler.getScaleAsync()}  skipped steps ${await skippedSteps()}  ${(iteration / seconds).toFixed(2)} it/s  ${seconds.toFixed(0)} s`,
        );
        window = { d: 0, g: 0, n: 0 };
      }
      if (sampleNow) say(`wrote ${await writeSamples(`samples-${pad(iteration)}.png`)}`);
      if (iteration >= args.iterations) break;
    }
    const seconds = (performance.now() - started) / 1000;
    const finalPath = await writeSamples('samples-final.png');
    const finite = { g: await allFinite(G), d: await allFinite(D) };
    const lossScale = await scaler.getScaleAsync();
    const skipped = await skippedSteps();
    logJson({ event: 'end', iterations: iteration, seconds, skipped_steps: skipped, loss_d: last.d, loss_g: last.g, loss_scale: lossScale, finite_weights: finite.g && finite.d });
    say(`wrote ${finalPath}`);
    out.log(
      `done: ${iteration} iterations in ${seconds.toFixed(1)} s  loss_d ${last.d.toFixed(4)}  loss_g ${last.g.toFixed(4)}  ` +
        `skipped steps ${skipped} (${((100 * skipped) / iteration).toFixed(1)}%)  loss scale ${lossScale}  ` +
        `weights ${finite.g && finite.d ? 'finite' : `NOT finite (generator: ${finite.g ? 'finite' : 'inf/NaN'}, discriminator: ${finite.d ? 'finite' : 'inf/NaN'})`}`,
    );
    return finite.g && finite.d ? 0 : 1;
  } finally {
    await report?.write(out);
    fixedNoise.dispose();
    if (logFile) await new Promise<void>((resolve) => logFile.end(resolve));
    dp?.close();
  }
}
