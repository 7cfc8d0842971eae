/**
 * Training LeNet in the page with the library itself: the backend (webgpu through navigator.gpu,
 * or wasm on Web Workers over shared memory when the page is cross-origin isolated), autocast and
 * GradScaler by precision (the CLI's trainStep), periodic test accuracy and the predictions shown
 * under the test images. What it measures goes out as the events `mixprec train --log-json`
 * writes, so the live plots are the report's.
 */
import '../../src/tensor/methods.js';
import '../../src/ops/conv.js';
import '../../src/nn/functional.js';
import { setBackend } from '../../src/backend/registry.js';
import { manualSeed } from '../../src/random/generator.js';
import { LeNet } from '../../src/models/lenet.js';
import { SGD } from '../../src/optim/sgd.js';
import { Adam } from '../../src/optim/adam.js';
import type { Optimizer } from '../../src/optim/optimizer.js';
import { DataLoader } from '../../src/data/dataloader.js';
import { Subset } from '../../src/data/dataset.js';
import { noGrad } from '../../src/autograd/mode.js';
import { scope } from '../../src/tensor/scope.js';
import { argmax } from '../../src/ops/reduce.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { autocastDtype, evaluate, scalerFor, trainStep, underPrecision, type Precision, type StepContext } from '../../src/train/classifier.js';
import type { RunEvent } from '../../src/report/runs.js';
import type { PlaygroundData } from './data.js';

export type BackendName = 'webgpu' | 'wasm';

export interface BackendInfo {
  name: BackendName;
  /** One line: threads and SIMD, or the adapter. */
  detail: string;
  /** How float16 and bfloat16 tensors are stored and computed. */
  storage: string;
  settings: Record<string, string | number | boolean>;
}

/** Select the backend and describe it. */
export async function startBackend(name: BackendName): Promise<BackendInfo> {
  if (name === 'wasm') {
    const b = (await setBackend('wasm')) as unknown as { threads: number; simd: string; pool: { degraded: string | null } };
    const isolated = globalThis.crossOriginIsolated === true;
    const threads = b.threads > 1 ? `${b.threads} threads on Web Workers over shared memory (cross-origin isolated)` : `1 thread (${b.pool.degraded ?? 'one core'})`;
    return {
      name,
      detail: `${threads}, ${b.simd} SIMD`,
      storage: 'float16 and bfloat16 stored as 16 bits, widened to float32 in SIMD registers',
      settings: { backend: 'wasm', threads: b.threads, simd: b.simd, cross_origin_isolated: isolated },
    };
  }
  if (!('gpu' in navigator)) throw new Error('this browser has no WebGPU (navigator.gpu); choose wasm');
  const b = (await setBackend('webgpu')) as unknown as { adapterDescription: string; nativeF16: boolean };
  const storage = b.nativeF16
    ? 'float16 as f16 in the shaders (the adapter has shader-f16); bfloat16 packed in 32-bit words'
    : 'float16 packed: two halves per 32-bit word, computed in float32 (the adapter has no shader-f16); bfloat16 packed likewise';
  return {
    name,
    detail: `adapter: ${b.adapterDescription}`,
    storage,
    settings: { backend: 'webgpu', adapter: b.adapterDescription, float16_storage: b.nativeF16 ? 'f16' : 'packed' },
  };
}

export interface TrainOptions {
  precision: Precision;
  steps: number;
  batchSize: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  evalEvery: number;
  seed: number;
  /** Test images in the periodic evaluation (the whole split if it has fewer). */
  testImages: number;
  /** Test images shown with their predicted labels. */
  gridImages: number;
}

export interface Prediction {
  index: number;
  label: number;
  predicted: number;
}

export interface TrainCallbacks {
  event(e: RunEvent): void;
  predictions(p: Prediction[]): void;
  /** Polled between steps: true stops the run after the current step. */
  stopped(): boolean;
}

/** Evenly spaced indices into a split. */
export function spread(length: number, count: number): number[] {
  const n = Math.min(count, length);
  return Array.from({ length: n }, (_, i) => Math.floor((i * length) / n));
}

/** Lets the page paint and handle clicks while steps run back to back. */
function yieldToPage(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export async function train(data: PlaygroundData, backend: BackendInfo, o: TrainOptions, on: TrainCallbacks): Promise<void> {
  manualSeed(o.seed);
  const model = new LeNet({ inChannels: data.channels, imageSize: data.imageSize, numClasses: data.classes.length });
  const params = model.parameters();
  const optimizer: Optimizer<object> = o.optimizer === 'adam' ? new Adam(params, { lr: o.lr }) : new SGD(params, { lr: o.lr, momentum: 0.9 });
  const scaler = scalerFor(o.precision);
  const ctx: StepContext = { model, optimizer, scaler, precision: o.precision };
  const dtype = autocastDtype(o.precision) ?? undefined;
  const trainLoader = new DataLoader(data.train as never, { batchSize: o.batchSize, shuffle: true, seed: o.seed, dtype });
  const testSet = new Subset(data.test, spread(data.test.length, o.testImages));
  const testLoader = new DataLoader(testSet as never, { batchSize: 500, shuffle: false, dtype });
  const gridIndices = spread(data.test.length, o.gridImages);
  const gridLoader = new DataLoader(new Subset(data.test, gridIndices) as never, { batchSize: gridIndices.length, shuffle: false, dtype });

  on.event({
    event: 'config',
    command: 'playground',
    model: 'lenet',
    dataset: data.name,
    train_images: data.train.length,
    test_images: testSet.length,
    precision: o.precision,
    optimizer: o.optimizer,
    lr: o.lr,
    batch_size: o.batchSize,
    steps: o.steps,
    seed: o.seed,
    ...backend.settings,
  });

  const evaluateNow = async (step: number, imgPerS: number) => {
    const ev = await evaluate(model, testLoader as AsyncIterable<[Tensor, Tensor]>, o.precision, data.classes.length);
    on.event({ event: 'eval', step, test_accuracy: ev.accuracy, img_per_s: imgPerS });
    for await (const [x, y] of gridLoader as AsyncIterable<[Tensor, Tensor]>) {
      model.eval();
      const predicted = noGrad(() => scope(() => argmax(underPrecision(o.precision, () => model.call(x) as Tensor), 1)));
      model.train();
      const [p, labels] = [await predicted.data(), await y.data()];
      predicted.dispose();
      on.predictions(gridIndices.map((index, i) => ({ index, label: Number(labels[i]), predicted: Number(p[i]) })));
    }
  };

  let step = 0;
  let skippedSeen = await scaler.getSkippedStepsAsync();
  // Throughput of the training steps alone (evaluations excluded), per evaluation interval.
  let images = 0;
  let busy = 0;
  let lastYield = performance.now();
  while (step < o.steps && !on.stopped()) {
    for await (const [x, y] of trainLoader as AsyncIterable<[Tensor, Tensor]>) {
      const started = performance.now();
      const { loss } = trainStep(ctx, x, y);
      const value = await loss.item();
      loss.dispose();
      const skippedNow = await scaler.getSkippedStepsAsync();
      const lossScale = await scaler.getScaleAsync();
      busy += performance.now() - started;
      images += x.shape[0]!;
      step++;
      on.event({ event: 'step', step, loss: value, loss_scale: lossScale, skipped: skippedNow > skippedSeen });
      skippedSeen = skippedNow;
      if (step % o.evalEvery === 0 || step === o.steps || on.stopped()) {
        await evaluateNow(step, images / (busy / 1000));
        images = 0;
        busy = 0;
      }
      if (performance.now() - lastYield > 40) {
        await yieldToPage();
        lastYield = performance.now();
      }
      if (step >= o.steps || on.stopped()) break;
    }
  }
}
