/**
 * Training throughput and memory, on the current backend, of `trainStep` (src/train/classifier.ts:
 * zeroGrad, forward under the precision's autocast, GradScaler-scaled backward, optimizer step) on
 * - LeNet, WideCNN or a ResNet (createModel in src/models/index.ts; ResNets with torchvision's
 *   imagenet stem and 10 classes, as bench/torch_lenet.py builds torchvision's) with random
 *   CIFAR-10-shaped data (images of `imageSize`, default 32) and SGD with momentum, or
 * - a GPT (mx.models.gpt) with `mixprec train-gpt`'s step: random token blocks of a 65-character
 *   vocabulary (Tiny Shakespeare's), AdamW with nanoGPT's parameter groups (lr 1e-3, betas 0.9/0.99,
 *   weight decay 0.1), clipping at norm 1 after unscale_.
 *
 * - img_per_s (classifiers) / tokens_per_s (gpt): batch (x block size) · timed steps / their wall
 *   time; every step reads its loss (`await loss.item()`), so the work is done when the clock stops.
 * - peak_bytes: the backend's peak of live device bytes over the timed steps (the peak is reset just
 *   before them): parameters, gradients, momentum, the batch and everything a step allocates.
 * - activation_bytes: what the forward pass holds for the backward, measured in one (untimed) step:
 *   live bytes once the loss is computed (graph alive, before `backward`) minus live bytes when the
 *   forward starts (after zeroGrad). It counts every tensor the forward creates and keeps alive:
 *   layer outputs, autocast's 16-bit copies of the weights it keeps (not conv2d's: freed once each
 *   convolution has run, cast again in the backward), the logits and the loss. The batch is
 *   not counted (it exists before the forward); fp16/bf16 runs feed it in their 16-bit dtype, as
 *   `mixprec train` does, so there is no 16-bit copy of a float32 batch either.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { Module } from '../nn/module.js';
import type { GradScaler } from '../amp/grad_scaler.js';
import { getBackend } from '../backend/registry.js';
import { memory } from '../tensor/scope.js';
import { Generator, manualSeed } from '../random/generator.js';
import { randint, randn } from '../ops/creation.js';
import { CLASSIFIER_MODELS, classifierWidth, createModel, isResNetName, type ClassifierModelName } from '../models/index.js';
import { GPT } from '../models/gpt.js';
import { SGD } from '../optim/sgd.js';
import { AdamW } from '../optim/adam.js';
import { autocastDtype, scalerFor, trainStep, type Precision, type StepContext } from '../train/classifier.js';
import { gptLoss, nanoGptParamGroups } from '../train/gpt.js';
import { adapterDescription, assertNoDeviceErrors, deviceErrors, subgroupMatrixDescription, backendThreads, kernelCalls, load1, resetKernelCalls, resetPeak, sig } from './common.js';

export const BENCH_MODELS = [...CLASSIFIER_MODELS, 'gpt'] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];

/** The GPT's shape in `bench train --model gpt` (defaults: nanoGPT's CPU recipe for Tiny Shakespeare). */
export interface GptBenchShape {
  nLayer?: number;
  nHead?: number;
  nEmbd?: number;
  blockSize?: number;
  /** Default 65 (Tiny Shakespeare's characters). */
  vocabSize?: number;
}

export interface TrainBenchOptions {
  model?: BenchModel;
  /** WideCNN's channel width, a ResNet's stem width (default 64; LeNet has none). */
  width?: number;
  /** gpt: the model's shape. */
  gpt?: GptBenchShape;
  /** Default 64 (gpt: 12). */
  batchSize?: number;
  /** Classifiers: side of the random square images (default 32, CIFAR's). */
  imageSize?: number;
  /** Default 'fp32'. */
  precision?: Precision;
  /** Timed steps (default 10). */
  steps?: number;
  /** Untimed steps first (default 2; at least 1, so momentum buffers exist before measuring). */
  warmup?: number;
  /** SGD learning rate (default 0.01) and momentum (default 0.9). */
  lr?: number;
  momentum?: number;
  /** Seeds the weights and the batch (default 0). */
  seed?: number;
}

export interface TrainBenchResult {
  /** Classifiers: images per second. */
  img_per_s?: number;
  /** gpt: tokens (batch x block size) per second. */
  tokens_per_s?: number;
  /** Peak live device bytes during the timed steps. */
  peak_bytes: number;
  /** Live bytes after the forward (loss computed, graph alive) minus live bytes before it, in one step. */
  activation_bytes: number;
  model: BenchModel;
  /** widecnn, resnets: the channel width. */
  width?: number;
  /** gpt: the model's shape. */
  n_layer?: number;
  n_head?: number;
  n_embd?: number;
  block_size?: number;
  vocab_size?: number;
  batch_size: number;
  /** Classifiers: side of the square input images. */
  image_size?: number;
  precision: Precision;
  backend: string;
  threads: number;
  steps: number;
  warmup: number;
  /** Wall seconds of the timed steps, and per step in milliseconds. */
  seconds: number;
  step_ms: number;
  /** Live bytes between steps (parameters, gradients, momentum, the batch). */
  resident_bytes: number;
  /** The last timed step's loss, and steps the GradScaler skipped (fp16 only; inf/NaN gradients). */
  loss: number;
  skipped_steps: number;
  load_avg_1m: number;
  /** GPU backends: the adapter ("vendor architecture device description"). */
  adapter?: string;
  /** GPU backends: the subgroup-matrix (tensor core) shape the backend uses ("f16 16x16x16 -> f32"), or null. */
  subgroup_matrix?: string | null;
  /** wasm backend: kernels that ran through the reference fallback in the timed steps, with call counts. */
  fallback_kernels?: Record<string, number>;
}

/** Live device bytes around the forward pass of one trainStep, without changing the step itself. */
function measuringContext(ctx: StepContext): { ctx: StepContext; marks: { before?: number; after?: number } } {
  const marks: { before?: number; after?: number } = {};
  const live = () => memory().liveBytes;
  const wrap = <T extends object>(target: T, method: string, mark: () => void): T =>
    new Proxy(target, {
      get(t, prop) {
        const v = Reflect.get(t, prop, t) as unknown;
        if (typeof v !== 'function') return v;
        const bound = (v as (...a: unknown[]) => unknown).bind(t);
        if (prop !== method) return bound;
        return (...args: unknown[]) => {
          mark();
          return bound(...args);
        };
      },
    });
  // trainStep: zeroGrad, model.call(x) or ctx.loss(x, y) (forward starts), the loss, scaler.scale(loss) (forward done).
  const start = () => {
    marks.before ??= live();
  };
  const model = wrap(ctx.model as Module, 'call', start);
  const scaler = wrap(ctx.scaler as GradScaler, 'scale', () => {
    marks.after ??= live();
  });
  const loss = ctx.loss;
  return { ctx: { ...ctx, model, scaler, ...(loss ? { loss: (x: Tensor, y: Tensor) => (start(), loss(x, y)) } : {}) }, marks };
}

/** What the timed steps run: the step context, one batch, and what a step processes. */
interface Workload {
  ctx: StepContext;
  x: Tensor;
  y: Tensor;
  /** Images (classifiers) or tokens (gpt) per step. */
  units: number;
  /** The result's model-specific fields. */
  fields: Partial<TrainBenchResult>;
}

function classifierWorkload(name: ClassifierModelName, options: TrainBenchOptions, batchSize: number, precision: Precision, seed: number): Workload {
  const imageSize = options.imageSize ?? 32;
  if (!Number.isInteger(imageSize) || imageSize < 8) throw new RangeError(`benchTrain: imageSize must be an integer of at least 8, got ${imageSize}`);
  // createModel refuses a width for LeNet.
  const model = createModel(name, { inChannels: 3, imageSize, numClasses: 10, width: options.width, stem: isResNetName(name) ? 'imagenet' : undefined });
  const width = classifierWidth(model);
  const optimizer = new SGD(model.parameters(), { lr: options.lr ?? 0.01, momentum: options.momentum ?? 0.9 });
  const gen = new Generator(seed + 1);
  // fp16/bf16 runs get the batch in the autocast dtype, as `mixprec train`'s loader delivers it
  // (DataLoader's dtype option): the same values autocast's cast would produce at the first layer.
  const x32 = randn([batchSize, 3, imageSize, imageSize], { generator: gen });
  const computeDtype = autocastDtype(precision);
  const x = computeDtype ? x32.to(computeDtype) : x32;
  if (x !== x32) x32.dispose();
  const y = randint(0, 10, [batchSize], { generator: gen });
  return { ctx: { model, optimizer, scaler: scalerFor(precision), precision }, x, y, units: batchSize, fields: { ...(width !== undefined ? { width } : {}), image_size: imageSize } };
}

function gptWorkload(shape: GptBenchShape, batchSize: number, precision: Precision, seed: number): Workload {
  const config = { nLayer: shape.nLayer ?? 4, nHead: shape.nHead ?? 4, nEmbd: shape.nEmbd ?? 128, blockSize: shape.blockSize ?? 64, vocabSize: shape.vocabSize ?? 65, bias: false, dropout: 0 };
  const model = new GPT(config);
  const optimizer = new AdamW(nanoGptParamGroups(model, 0.1), { lr: 1e-3, betas: [0.9, 0.99] });
  const gen = new Generator(seed + 1);
  const x = randint(0, config.vocabSize, [batchSize, config.blockSize], { generator: gen });
  const y = randint(0, config.vocabSize, [batchSize, config.blockSize], { generator: gen });
  const ctx: StepContext = { model, optimizer, scaler: scalerFor(precision), precision, clipGradNorm: 1, loss: (a, b) => gptLoss(model, a, b) };
  const fields = { n_layer: config.nLayer, n_head: config.nHead, n_embd: config.nEmbd, block_size: config.blockSize, vocab_size: config.vocabSize };
  return { ctx, x, y, units: batchSize * config.blockSize, fields };
}

export async function benchTrain(options: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const modelName = options.model ?? 'lenet';
  const batchSize = options.batchSize ?? (modelName === 'gpt' ? 12 : 64);
  const precision = options.precision ?? 'fp32';
  const steps = options.steps ?? 10;
  const warmup = Math.max(1, options.warmup ?? 2);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`benchTrain: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`benchTrain: steps must be a positive integer, got ${steps}`);
  if (options.gpt && modelName !== 'gpt') throw new RangeError(`benchTrain: the gpt shape options apply to model 'gpt' only, not '${modelName}'`);
  if (options.imageSize !== undefined && modelName === 'gpt') throw new RangeError("benchTrain: model 'gpt' has no imageSize (its inputs are token blocks)");
  const backend = getBackend();
  const errorsBefore = deviceErrors(backend);

  manualSeed(seed);
  const { ctx, x, y, units, fields } = modelName === 'gpt' ? gptWorkload(options.gpt ?? {}, batchSize, precision, seed) : classifierWorkload(modelName, options, batchSize, precision, seed);
  const optimizer = ctx.optimizer;

  const step = async (c: StepContext): Promise<{ loss: number }> => {
    const { loss } = trainStep(c, x as Tensor, y as Tensor);
    try {
      return { loss: await loss.item() };
    } finally {
      loss.dispose();
    }
  };

  try {
    for (let i = 0; i < warmup; i++) await step(ctx);

    // One untimed step that records live bytes around the forward pass.
    const measuring = measuringContext(ctx);
    await step(measuring.ctx);
    const { before, after } = measuring.marks;
    if (before === undefined || after === undefined) throw new Error('benchTrain: could not observe the forward pass of trainStep');
    const residentBytes = memory().liveBytes;

    resetKernelCalls(backend);
    resetPeak(backend);
    // The scaler counts skipped iterations (on webgpu the step is skipped on the device).
    const skippedBefore = await ctx.scaler.getSkippedStepsAsync();
    let last = NaN;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) {
      const r = await step(ctx);
      last = r.loss;
    }
    const seconds = (performance.now() - t0) / 1000;
    const skipped = (await ctx.scaler.getSkippedStepsAsync()) - skippedBefore;
    const peakBytes = memory().peakBytes;

    assertNoDeviceErrors(backend, errorsBefore, 'bench train');
    const rate = sig((units * steps) / seconds);
    const result: TrainBenchResult = {
      ...(modelName === 'gpt' ? { tokens_per_s: rate } : { img_per_s: rate }),
      peak_bytes: peakBytes,
      activation_bytes: after - before,
      model: modelName,
      ...fields,
      batch_size: batchSize,
      precision,
      backend: backend.name,
      threads: backendThreads(backend),
      steps,
      warmup,
      seconds: sig(seconds),
      step_ms: sig((seconds * 1000) / steps),
      resident_bytes: residentBytes,
      loss: sig(last),
      skipped_steps: skipped,
      load_avg_1m: load1(),
    };
    const adapter = adapterDescription(backend);
    if (adapter) result.adapter = adapter;
    const subgroupMatrix = subgroupMatrixDescription(backend);
    if (subgroupMatrix !== undefined) result.subgroup_matrix = subgroupMatrix;
    const kernels = kernelCalls(backend);
    if (kernels) result.fallback_kernels = Object.fromEntries(Object.entries(kernels).filter(([, c]) => c.fallback > 0).map(([k, c]) => [k, c.fallback]));
    return result;
  } finally {
    x.dispose();
    y.dispose();
    optimizer.zeroGrad();
  }
}
