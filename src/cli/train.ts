/**
 * `mixprec train`: the seed's CNN (or WideCNN, or a ResNet, from scratch or fine-tuned from
 * pretrained weights) on CIFAR-10 (or MNIST, an image folder, the bundled digits) with fp32, fp16
 * (float16 autocast + GradScaler) or bf16 (bfloat16 autocast) precision, checkpoints after every
 * epoch (and on Ctrl-C), bitwise-exact resume, JSON logs and a precision report.
 */
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { Tensor } from '../tensor/tensor.js';
import { initDefaultBackend, setBackend } from '../backend/registry.js';
import { manualSeed, defaultGenerator } from '../random/generator.js';
import { CLASSIFIER_MODELS, classifierWidth, createModel, isResNetName, type Classifier, type ClassifierModelName, type ResNetStem } from '../models/index.js';
import { resnet18, resnet34, resnet50 } from '../models/resnet_weights.js';
import { ResNet } from '../models/resnet.js';
import { SGD } from '../optim/sgd.js';
import { Adam, AdamW } from '../optim/adam.js';
import type { Optimizer } from '../optim/optimizer.js';
import { CosineAnnealingLR } from '../optim/lr_scheduler.js';
import { DataLoader, type DataLoaderState } from '../data/dataloader.js';
import { saveCheckpoint, loadCheckpoint } from '../io/checkpoint.js';
import { precisionReport, type PrecisionRecorder } from '../amp/diagnostics.js';
import { autocastDtype, evaluate, scalerFor, trainStep, PRECISIONS, type Precision, type StepContext } from '../train/classifier.js';
import { choice, number, parseFlags, copyStringFlags, checkBackendFlag } from './args.js';
import { onInterrupt } from './interrupt.js';
import { restoreFrom, stateCounter } from './resume.js';
import { checkpointFaults } from './faults.js';
import { CliError, usage } from './errors.js';
import { resolveData, DATASETS, type DatasetName, type LoadedData, type Preprocess } from './datasets.js';
import { Progress } from './progress.js';
import { configEvent, RunReport } from './run_report.js';
import { DataParallel } from '../train/data_parallel.js';

export const TRAIN_HELP = `usage: mixprec train [options]

Trains the seed's CNN (LeNet) and prints the test accuracy after every epoch.

  --model M                     lenet|widecnn|resnet18|resnet34|resnet50 (default lenet: conv 6, pool,
                                conv 16, pool, fc 120-84-10; widecnn: VGG-style conv3x3 w, w, pool, 2w,
                                2w, pool, 4w, pool with BatchNorm + ReLU after each conv, then linear;
                                resnetN: torchvision's ResNets)
  --width N                     widecnn's channel width w, a ResNet's stem width (default 64)
  --stem imagenet|cifar         ResNets: torchvision's conv 7x7 stride 2 + max-pool (imagenet, the
                                default, as in torchvision, and the only choice with --pretrained
                                imagenet) or conv 3x3 stride 1 and no max-pool (cifar, the usual
                                variant for 32x32 images)
  --pretrained imagenet|FILE    ResNets: start from torchvision's ImageNet weights (downloaded once into
                                $MIXPREC_HOME, default ~/.cache/mixprec) or a .pth/.safetensors file;
                                the classifier is new for the dataset's classes; images are normalised
                                with ImageNet's statistics and resized (bilinear) to --image-size
  --image-size N                resize images to NxN (bilinear) before the network (default: the
                                dataset's size; 224 with --pretrained)
  --freeze-backbone             with --pretrained: train only the new classifier
  --dataset cifar10|mnist|imagefolder|digits   (default cifar10)
  --data PATH                   archive or folder; without it: ./data/, else download, else the bundled digits
  --download                    fetch CIFAR-10 into --data (or ./data/) when it is missing
  --backend NAME                compute backend (default: wasm, or MIXPREC_BACKEND when set)
  --precision fp32|fp16|bf16    fp16: float16 autocast + loss scaling (default); bf16: bfloat16 autocast
  --epochs N                    (default 10)
  --batch-size N                (default 64)
  --lr X                        learning rate (default 0.01 for sgd, 0.001 for adam/adamw)
  --momentum X                  SGD momentum (default 0.9)
  --weight-decay X              (default 0)
  --optimizer sgd|adam|adamw    (default sgd)
  --lr-schedule constant|cosine cosine: the rate decays from --lr to 0 along a half cosine over the run's
                                steps (CosineAnnealingLR, stepped every batch); default cosine for the
                                resnets (ResNet recipes decay the rate), constant for lenet and widecnn
  --augment                     random crop (padding 4) and horizontal flip
  --seed N                      seeds weights, data order and augmentation (default 0)
  --checkpoint FILE.safetensors written after every epoch and on Ctrl-C
  --resume FILE.safetensors     continue a run exactly where its checkpoint left it
  --log-json PATH               one JSON object per line: step and epoch events
  --precision-report PATH       float16 range statistics of the gradients, written after every epoch
  --report FILE.html            an HTML report of the run's plots (mixprec report), written when it ends
  --quiet                       only the final accuracy line
  --verbose                     stack traces on errors
`;

const FLAGS = {
  model: { type: 'string' },
  width: { type: 'string' },
  stem: { type: 'string' },
  pretrained: { type: 'string' },
  'image-size': { type: 'string' },
  'freeze-backbone': { type: 'boolean' },
  dataset: { type: 'string' },
  data: { type: 'string' },
  download: { type: 'boolean' },
  backend: { type: 'string' },
  precision: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  momentum: { type: 'string' },
  'weight-decay': { type: 'string' },
  optimizer: { type: 'string' },
  'lr-schedule': { type: 'string' },
  augment: { type: 'boolean' },
  seed: { type: 'string' },
  checkpoint: { type: 'string' },
  resume: { type: 'string' },
  'log-json': { type: 'string' },
  'precision-report': { type: 'string' },
  report: { type: 'string' },
  quiet: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptimizerName = 'sgd' | 'adam' | 'adamw';
const LR_SCHEDULES = ['constant', 'cosine'] as const;
type LrSchedule = (typeof LR_SCHEDULES)[number];

export interface TrainArgs {
  model: ClassifierModelName;
  /** widecnn's channel width, a ResNet's stem width (default 64). */
  width?: number;
  /** ResNets: the stem (default imagenet, torchvision's). */
  stem?: ResNetStem;
  /** ResNets: 'imagenet' (torchvision's weights) or a weights file. */
  pretrained?: string;
  /** Resize images to imageSize x imageSize (default: as stored; 224 with --pretrained). */
  imageSize?: number;
  /** With --pretrained: train only the classifier. */
  freezeBackbone: boolean;
  dataset: DatasetName;
  data?: string;
  download: boolean;
  backend?: string;
  precision: Precision;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  optimizer: OptimizerName;
  /** constant, or cosine annealing to 0 over all the run's steps (default: cosine for the resnets). */
  lrSchedule: LrSchedule;
  augment: boolean;
  seed: number;
  checkpoint?: string;
  resume?: string;
  logJson?: string;
  precisionReport?: string;
  /** --report: the HTML report written when training ends. */
  report?: string;
  quiet: boolean;
  verbose: boolean;
  help: boolean;
}

export function parseTrainArgs(argv: string[]): TrainArgs {
  const v = parseFlags('train', argv, FLAGS);
  const optimizer = choice('train', 'optimizer', v['optimizer'], ['sgd', 'adam', 'adamw'] as const, 'sgd');
  const model = choice('train', 'model', v['model'], CLASSIFIER_MODELS, 'lenet');
  const args: TrainArgs = {
    model,
    dataset: choice('train', 'dataset', v['dataset'], DATASETS, 'cifar10'),
    download: Boolean(v['download']),
    precision: choice('train', 'precision', v['precision'], PRECISIONS, 'fp16'),
    epochs: number('train', 'epochs', v['epochs'], 10, { integer: true, min: 1 }),
    batchSize: number('train', 'batch-size', v['batch-size'], 64, { integer: true, min: 1 }),
    lr: number('train', 'lr', v['lr'], optimizer === 'sgd' ? 0.01 : 0.001, { exclusiveMin: 0 }),
    momentum: number('train', 'momentum', v['momentum'], 0.9, { min: 0 }),
    weightDecay: number('train', 'weight-decay', v['weight-decay'], 0, { min: 0 }),
    optimizer,
    lrSchedule: choice('train', 'lr-schedule', v['lr-schedule'], LR_SCHEDULES, isResNetName(model) ? 'cosine' : 'constant'),
    augment: Boolean(v['augment']),
    seed: number('train', 'seed', v['seed'], 0, { integer: true, min: 0 }),
    freezeBackbone: Boolean(v['freeze-backbone']),
    quiet: Boolean(v['quiet']),
    verbose: Boolean(v['verbose']),
    help: Boolean(v['help']),
  };
  const resnet = isResNetName(args.model);
  if (v['width'] !== undefined) {
    if (args.model !== 'widecnn' && !resnet) throw usage('mixprec train: --width applies to --model widecnn and the resnets only');
    args.width = number('train', 'width', v['width'], 64, { integer: true, min: 1 });
  }
  for (const flag of ['stem', 'pretrained', 'freeze-backbone'] as const) {
    if (v[flag] !== undefined && !resnet) throw usage(`mixprec train: --${flag} applies to --model resnet18|resnet34|resnet50 only`);
  }
  if (v['pretrained'] !== undefined) {
    if (typeof v['pretrained'] !== 'string' || v['pretrained'] === '') throw usage('mixprec train: --pretrained needs imagenet or a weights file');
    if (v['pretrained'] !== 'imagenet' && !existsSync(v['pretrained'])) throw new CliError(`--pretrained ${v['pretrained']}: no such weights file (expected imagenet, or a .pth/.pt/.safetensors file)`);
    args.pretrained = v['pretrained'];
  }
  if (v['stem'] !== undefined) {
    args.stem = choice('train', 'stem', v['stem'], ['cifar', 'imagenet'] as const, 'imagenet');
    if (args.stem === 'cifar' && args.pretrained === 'imagenet') throw usage("mixprec train: --pretrained imagenet needs --stem imagenet (torchvision's weights are for its 7x7 stride-2 stem)");
  }
  if (args.freezeBackbone && args.pretrained === undefined) throw usage('mixprec train: --freeze-backbone needs --pretrained (a random backbone would stay random)');
  if (v['image-size'] !== undefined) args.imageSize = number('train', 'image-size', v['image-size'], 32, { integer: true, min: 8 });
  copyStringFlags('train', v, args, [['data', 'data'], ['backend', 'backend'], ['checkpoint', 'checkpoint'], ['resume', 'resume'], ['log-json', 'logJson'], ['precision-report', 'precisionReport'], ['report', 'report']]);
  checkBackendFlag('train', args.backend);
  if (args.resume !== undefined && !existsSync(args.resume)) throw new CliError(`--resume ${args.resume}: no such checkpoint file`);
  return args;
}

/** What a checkpoint records besides tensors: enough to rebuild the run and check it is the same one. */
export interface RunMeta {
  kind: 'mixprec.train';
  model: ClassifierModelName;
  /** widecnn, resnets: the channel width (mixprec eval rebuilds the model from model, width, stem, channels, imageSize, classes). */
  width?: number;
  /** resnets: the stem. */
  stem?: ResNetStem;
  /** How images were prepared (absent before resnets: the dataset's statistics, no resize). */
  normalize?: 'dataset' | 'imagenet';
  /** The side images were resized to (--image-size, --pretrained); absent: as stored. */
  resize?: number;
  dataset: DatasetName;
  channels: number;
  imageSize: number;
  classes: readonly string[];
  precision: Precision;
  optimizerName: OptimizerName;
  epoch: number;
  step: number;
  skippedSteps: number;
  data: DataLoaderState;
  rng: number[];
  optimizer: ReturnType<Optimizer<object>['stateDict']>;
  scaler: ReturnType<ReturnType<typeof scalerFor>['stateDict']>;
  args: Omit<TrainArgs, 'help' | 'quiet' | 'verbose'>;
  /** Ranks of a data-parallel run (absent: one process); --resume needs the same number. */
  worldSize?: number;
}

export interface Output {
  log(line: string): void;
  isTTY: boolean;
}

/** The preprocessing of a run: pretrained weights expect ImageNet's statistics and (by default) 224x224 images. */
export function preprocessFor(args: Pick<TrainArgs, 'pretrained' | 'imageSize'>): Preprocess {
  return args.pretrained !== undefined ? { imageSize: args.imageSize ?? 224, normalize: 'imagenet' } : { imageSize: args.imageSize, normalize: 'dataset' };
}

/** The stem of a ResNet run (undefined for the other models). */
export function stemFor(args: Pick<TrainArgs, 'model' | 'stem' | 'pretrained'>): ResNetStem | undefined {
  if (!isResNetName(args.model)) return undefined;
  return args.stem ?? 'imagenet'; // torchvision's default, also at 32x32 (as mx.models.resnet18)
}

/** Evaluation batches of about 500 CIFAR-sized images' worth of pixels (fewer when images are larger). */
export function evalBatchSize(imageSize: number): number {
  return Math.max(16, Math.min(500, Math.floor((500 * 32 * 32) / (imageSize * imageSize))));
}

const FACTORIES = { resnet18, resnet34, resnet50 } as const;

/** The model of a run: built by name, or loaded from --pretrained weights (not when resuming: the checkpoint has them). */
async function buildModel(args: TrainArgs, data: LoadedData, progress: boolean): Promise<Classifier> {
  const numClasses = data.classes.length || 10;
  const stem = stemFor(args);
  if (isResNetName(args.model) && args.pretrained !== undefined && !args.resume) {
    const weights = args.pretrained === 'imagenet' ? 'DEFAULT' : args.pretrained;
    try {
      return await FACTORIES[args.model]({ weights, numClasses, stem, width: args.width, inChannels: data.channels, progress });
    } catch (e) {
      throw new CliError(`--pretrained ${args.pretrained}: ${(e as Error).message}`);
    }
  }
  return createModel(args.model, { inChannels: data.channels, imageSize: data.imageSize, numClasses, width: args.width, stem });
}

/** Build the model, optimizer and loaders for a run (data-parallel: this rank's shards). */
async function setup(args: TrainArgs, data: LoadedData, progress: boolean, dp: DataParallel | null) {
  const model = await buildModel(args, data, progress);
  if (args.freezeBackbone && model instanceof ResNet) for (const p of model.backboneParameters()) p.requiresGrad_(false);
  const params = model.parameters().filter((p) => p.requiresGrad);
  const optimizer: Optimizer<object> =
    args.optimizer === 'sgd'
      ? new SGD(params, { lr: args.lr, momentum: args.momentum, weightDecay: args.weightDecay })
      : args.optimizer === 'adam'
        ? new Adam(params, { lr: args.lr, weightDecay: args.weightDecay })
        : new AdamW(params, { lr: args.lr, weightDecay: args.weightDecay || 0.01 });
  const scaler = scalerFor(args.precision);
  // fp16/bf16: batches arrive in the autocast dtype (the same rounding autocast would do, without
  // keeping a float32 batch and its 16-bit copy alive together).
  const dtype = autocastDtype(args.precision) ?? undefined;
  const trainLoader = dp
    ? new DataLoader(data.train as never, { batchSize: args.batchSize, sampler: dp.trainSampler(data.train, args.seed), seed: dp.rankSeed(args.seed), dtype })
    : new DataLoader(data.train as never, { batchSize: args.batchSize, shuffle: true, seed: args.seed, dtype });
  const testLoader = new DataLoader(data.test as never, {
    batchSize: evalBatchSize(data.imageSize), shuffle: false, seed: args.seed, dtype, ...(dp ? { sampler: dp.evaluationShard(data.test) } : {}),
  });
  return { model, optimizer, scaler, trainLoader, testLoader };
}

export async function runTrain(args: TrainArgs, out: Output): Promise<number> {
  if (args.help) {
    out.log(TRAIN_HELP.trimEnd());
    return 0;
  }
  await (args.backend ? setBackend(args.backend) : initDefaultBackend());
  // Started by a launcher (mixprec run): data-parallel, and only rank 0 prints.
  const dp = await DataParallel.fromEnvironment();
  if (dp && !dp.isMain) out = { log: () => undefined, isTTY: false };
  manualSeed(args.seed);
  const say = (line: string) => {
    if (!args.quiet) out.log(line);
  };
  if (dp && !dp.isMain) await dp.barrier(); // rank 0 finds (or downloads) the data first
  const data = await resolveData({
    dataset: args.dataset,
    data: args.data,
    download: args.download,
    augment: args.augment,
    progress: out.isTTY && !args.quiet,
    notice: (line) => out.log(line),
    preprocess: preprocessFor(args),
  });
  const run = await setup(args, data, out.isTTY && !args.quiet, dp);
  if (dp?.isMain) await dp.barrier(); // the data and any pretrained weights are in place for the others
  const { model, optimizer, scaler, trainLoader, testLoader } = run;
  // cosine: set before every batch from the run's step count (the closed form, so a resumed run
  // continues the schedule of its --epochs exactly), from --lr down to 0 after the last step
  const scheduler = args.lrSchedule === 'cosine' ? new CosineAnnealingLR(optimizer, args.epochs * trainLoader.length) : null;
  const width = classifierWidth(model);
  const stem = stemFor(args);
  const { normalize, imageSize: resize } = preprocessFor(args);
  let epoch = 0;
  let step = 0;
  let skippedSteps = 0;

  if (args.resume) {
    const loaded = await loadCheckpoint<RunMeta>(args.resume, { expect: model.stateDict(), target: `the ${args.model} model for ${data.name}` });
    const meta = loaded.meta;
    if (!meta || meta.kind !== 'mixprec.train') throw new CliError(`--resume ${args.resume}: not a mixprec train checkpoint (no training state in its metadata)`);
    if (meta.dataset !== data.name || meta.channels !== data.channels || meta.imageSize !== data.imageSize) {
      throw new CliError(
        `--resume ${args.resume}: written for ${meta.model} on ${meta.dataset} (${meta.channels}x${meta.imageSize}x${meta.imageSize}), not ${data.name} (${data.channels}x${data.imageSize}x${data.imageSize})`,
      );
    }
    if (meta.optimizerName !== args.optimizer) throw new CliError(`--resume ${args.resume}: written with --optimizer ${meta.optimizerName}, not ${args.optimizer}`);
    if ((meta.worldSize ?? 1) !== (dp?.worldSize ?? 1)) {
      throw new CliError(`--resume ${args.resume}: written by a run of ${meta.worldSize ?? 1} rank(s), this one has ${dp?.worldSize ?? 1} (the data order would differ)`);
    }
    const writtenSchedule = meta.args?.lrSchedule ?? 'constant'; // checkpoints before --lr-schedule: constant
    if (writtenSchedule !== args.lrSchedule) throw new CliError(`--resume ${args.resume}: written with --lr-schedule ${writtenSchedule}, not ${args.lrSchedule}`);
    if ((meta.normalize ?? 'dataset') !== normalize) throw new CliError(`--resume ${args.resume}: written with ${meta.normalize === 'imagenet' ? '' : 'no '}--pretrained (${meta.normalize ?? 'dataset'} normalisation), not ${normalize}`);
    const file = args.resume;
    restoreFrom(file, () => {
      model.loadStateDict(loaded.tensors);
      optimizer.loadStateDict(meta.optimizer);
      if (meta.precision === 'fp16' && args.precision === 'fp16') scaler.loadStateDict(meta.scaler);
      defaultGenerator.setState(meta.rng);
      trainLoader.loadState(dp && meta.data ? { ...meta.data, seed: dp.rankSeed(meta.data.seed) } : meta.data); // no data state: loadState's own error
      epoch = stateCounter(file, 'epoch', meta.epoch);
      step = stateCounter(file, 'step', meta.step);
      skippedSteps = stateCounter(file, 'skippedSteps', meta.skippedSteps);
    });
    say(`resumed from ${args.resume}: epoch ${epoch}, step ${step}`);
  }

  const writeOptions = checkpointFaults();
  const checkpoint = async (path: string, loaderState: DataLoaderState = trainLoader.state()) => {
    const meta: RunMeta = {
      kind: 'mixprec.train',
      model: args.model,
      ...(width !== undefined ? { width } : {}),
      ...(stem !== undefined ? { stem } : {}),
      normalize,
      ...(resize !== undefined ? { resize } : {}),
      dataset: data.name,
      channels: data.channels,
      imageSize: data.imageSize,
      classes: data.classes,
      precision: args.precision,
      optimizerName: args.optimizer,
      epoch,
      step,
      skippedSteps,
      data: loaderState,
      ...(dp ? { worldSize: dp.worldSize } : {}),
      rng: defaultGenerator.getState(),
      optimizer: optimizer.stateDict(),
      scaler: await scaler.stateDictAsync(),
      args: { ...args, help: undefined, quiet: undefined, verbose: undefined } as RunMeta['args'],
    };
    await saveCheckpoint(path, { tensors: model.stateDict(), meta }, writeOptions);
  };

  const main = !dp || dp.isMain;
  const logFile: WriteStream | null = args.logJson && main ? createWriteStream(args.logJson, { flags: 'w' }) : null;
  const report = args.report && main ? new RunReport(args.report, `${args.model} ${args.precision}`) : null;
  const logJson = (event: { event: string } & Record<string, unknown>) => {
    report?.add(event);
    logFile?.write(`${JSON.stringify(event)}\n`);
  };
  logJson(configEvent('train', {
    model: args.model, width, dataset: data.name, data_source: data.source, train_images: data.train.length, test_images: data.test.length,
    precision: args.precision, optimizer: args.optimizer, lr: args.lr, lr_schedule: args.lrSchedule, momentum: args.optimizer === 'sgd' ? args.momentum : undefined,
    weight_decay: args.optimizer === 'adamw' ? args.weightDecay || 0.01 : args.weightDecay, batch_size: args.batchSize, epochs: args.epochs, augment: args.augment, seed: args.seed, resume: args.resume,
    world_size: dp?.worldSize,
  }));
  let recorder: PrecisionRecorder | null = args.precisionReport && main
    ? precisionReport({ model, scaler, format: args.precision === 'bf16' ? 'bfloat16' : 'float16' })
    : null;

  // the test set: data-parallel, each rank evaluates its shard and the counts are summed
  const evaluateAll = async (net: typeof model, loader: typeof testLoader) => {
    const ev = await evaluate(net, loader, args.precision, data.classes.length || 10);
    return dp ? dp.reduceEvaluation(ev) : ev;
  };
  // Ctrl-C: stop after this step and save; a second Ctrl-C exits at once (./interrupt.ts)
  const interrupt = onInterrupt(args.checkpoint);
  let interrupted = false;
  // data-parallel: gradients averaged over the ranks during backward (rank 0's weights to start)
  const ctx: StepContext = { model: dp ? dp.wrap(model) : model, optimizer, scaler, precision: args.precision };
  const modelNote = [
    width !== undefined ? `width ${width}` : '',
    stem !== undefined ? `${stem} stem` : '',
    args.pretrained !== undefined ? `pretrained ${args.pretrained}, ${data.classes.length || 10}-class head` : '',
    args.freezeBackbone ? 'backbone frozen' : '',
  ].filter(Boolean).join(', ');
  say(
    `training ${args.model}${modelNote ? ` (${modelNote})` : ''} on ${data.name} (${data.source}): ${data.train.length} train / ${data.test.length} test images of ${data.channels}x${data.imageSize}x${data.imageSize}, ` +
      `precision ${args.precision}, ${args.optimizer} lr ${args.lr}${scheduler ? ' cosine to 0' : ''}, batch ${args.batchSize}${dp ? ` x ${dp.worldSize} ranks` : ''}, ${args.epochs} epochs, seed ${args.seed}`,
  );
  let lastAccuracy: number | null = null;
  try {
    while (epoch < args.epochs) {
      const progress = out.isTTY && !args.quiet ? new Progress(`epoch ${epoch + 1}/${args.epochs}`, trainLoader.length) : null;
      let lossSum = 0;
      let lossCount = 0;
      let images = 0;
      // Skips are counted by the scaler (on webgpu the step is skipped on the device: trainStep cannot
      // know); it is read per step only for --log-json (on a GPU each read is a round trip).
      const skippedAtStart = await scaler.getSkippedStepsAsync();
      let skippedSeen = skippedAtStart;
      const started = performance.now();
      let stoppedAt: DataLoaderState | undefined;
      for await (const [x, y] of trainLoader) {
        scheduler?.step(step);
        const lr = (optimizer.paramGroups[0] as unknown as { lr: number }).lr; // the rate this step uses
        const { loss } = trainStep(ctx, x as Tensor, y as Tensor);
        const value = await loss.item();
        loss.dispose();
        if (recorder) await recorder.step();
        step++;
        images += (x as Tensor).shape[0]!;
        if (Number.isFinite(value)) {
          lossSum += value;
          lossCount++;
        }
        const seconds = (performance.now() - started) / 1000;
        if (logFile || report) {
          const skippedNow = await scaler.getSkippedStepsAsync();
          logJson({ event: 'step', epoch: epoch + 1, step, loss: value, lr, loss_scale: await scaler.getScaleAsync(), skipped: skippedNow > skippedSeen });
          skippedSeen = skippedNow;
        }
        progress?.update({ loss: lossSum / Math.max(lossCount, 1), imgPerS: (images * (dp?.worldSize ?? 1)) / seconds });
        // every rank stops after the same step
        interrupted = dp ? await dp.any(interrupt.requested) : interrupt.requested;
        if (interrupted) {
          // the loader's position now (after the loop it points at the next epoch: each loop is one epoch)
          stoppedAt = trainLoader.state();
          break;
        }
      }
      progress?.done();
      const epochSkipped = (await scaler.getSkippedStepsAsync()) - skippedAtStart;
      skippedSteps += epochSkipped;
      if (interrupted) {
        if (!main) return 130;
        if (args.checkpoint) {
          await checkpoint(args.checkpoint, stoppedAt);
          out.log(`interrupted: checkpoint written to ${args.checkpoint} (resume with --resume ${args.checkpoint})`);
        } else out.log('interrupted (no --checkpoint given: nothing saved)');
        return 130;
      }
      const trainSeconds = (performance.now() - started) / 1000;
      epoch++;
      const ev = await evaluateAll(model, testLoader);
      lastAccuracy = ev.accuracy;
      const [lossTotal, lossSteps] = dp ? await dp.sum([lossSum, lossCount]) : [lossSum, lossCount];
      const trainLoss = lossTotal! / Math.max(lossSteps!, 1);
      const imgPerS = (images * (dp?.worldSize ?? 1)) / trainSeconds;
      say(
        `epoch ${epoch}/${args.epochs}  train loss ${trainLoss.toFixed(4)}  test accuracy ${(ev.accuracy * 100).toFixed(2)}%  ` +
          `${imgPerS.toFixed(0)} img/s  ${trainSeconds.toFixed(1)} s  loss scale ${await scaler.getScaleAsync()}  skipped steps ${epochSkipped}`,
      );
      logJson({
        event: 'epoch',
        epoch,
        train_loss: trainLoss,
        test_accuracy: ev.accuracy,
        img_per_s: imgPerS,
        seconds: trainSeconds,
        loss_scale: await scaler.getScaleAsync(),
        skipped_steps: epochSkipped,
      });
      if (args.checkpoint && main) await checkpoint(args.checkpoint);
      if (recorder && args.precisionReport) await recorder.save(args.precisionReport);
    }
    if (lastAccuracy === null) {
      const ev = await evaluateAll(model, testLoader);
      lastAccuracy = ev.accuracy;
    }
    out.log(`test accuracy: ${(lastAccuracy * 100).toFixed(2)}%`);
    return 0;
  } finally {
    interrupt.dispose();
    await report?.write(out, recorder?.report());
    recorder?.close();
    recorder = null;
    if (logFile) await new Promise<void>((resolve) => logFile.end(resolve));
    dp?.close();
  }
}
