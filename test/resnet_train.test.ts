/**
 * ResNet-18 trains in every precision: the cifar-stem network at 1/16 width (stem 4 channels, stages
 * 4/8/16/32) for 200 SGD steps (batch 16, lr 0.05, momentum 0.9) on CIFAR-shaped data: 3x32x32
 * images of 10 classes, each a fixed random pattern of its class (amplitude 0.5) plus fresh unit
 * noise, so every batch is new and the loss falls as the network learns the patterns rather than
 * memorising images. fp32, fp16 (float16 autocast + GradScaler) and bf16 (bfloat16 autocast) run
 * from the same seed (same weights, same batches). The losses fall, and the 16-bit runs follow
 * fp32's: the first loss within 16-bit rounding, the curve (means of 20 steps) within 0.15 + 25% at
 * every point and its area within 10% (past the first steps, rounding differences grow through the
 * chaotic dynamics of SGD as any perturbation would: the curves agree, not the trajectories).
 *
 * Cost: 600 training steps of a 60-layer network. On the wasm backend (the default) about a minute
 * on 2 busy cores; the reference backend (TypeScript kernels) takes ~25x as long, so there the test
 * runs only with MIXPREC_LONG=1 (npm run test:long). The webgpu suite does not list this file
 * (lavapipe runs shaders on the CPU; test/resnet.test.ts covers ResNet's numerics there).
 */
import { backendName } from './helpers/backend.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import { trainStep, type Precision } from '../src/train/classifier.js';

const STEPS = 200;
const BATCH = 16;
const WINDOW = 20;
const long = process.env['MIXPREC_LONG'] === '1';

/** The 10 class patterns (amplitude 0.5). */
const patterns = (): mx.Tensor => mx.keep(mx.randn([10, 3, 32, 32], { generator: new mx.Generator(1234) }).mul(0.5));

async function run(precision: Precision, classPatterns: mx.Tensor): Promise<{ losses: number[]; skipped: number }> {
  mx.manualSeed(0);
  const model = mx.models.createResNet('resnet18', { stem: 'cifar', width: 4, numClasses: 10 });
  const optimizer = new mx.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const scaler = new mx.amp.GradScaler({ enabled: precision === 'fp16' });
  const data = new mx.Generator(7);
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const { loss } = mx.scope(() => {
      const y = mx.randint(0, 10, [BATCH], { generator: data });
      const x = classPatterns.indexSelect(0, y).add(mx.randn([BATCH, 3, 32, 32], { generator: data }));
      return trainStep({ model, optimizer, scaler, precision }, x, y);
    });
    losses.push(await loss.item());
    loss.dispose();
  }
  const skipped = await scaler.getSkippedStepsAsync();
  optimizer.zeroGrad();
  return { losses, skipped };
}

const windows = (losses: number[]): number[] =>
  Array.from({ length: losses.length / WINDOW }, (_, w) => losses.slice(w * WINDOW, (w + 1) * WINDOW).filter(Number.isFinite).reduce((s, v, _i, a) => s + v / a.length, 0));

describe(`ResNet-18 trains in fp32, fp16 and bf16 (${backendName})`, () => {
  it(
    `${STEPS} steps from the same seed: the losses fall and the 16-bit runs follow fp32`,
    { skip: backendName === 'reference' && !long && 'about 25 minutes on the reference backend: runs with MIXPREC_LONG=1 (the wasm suite runs it by default)', timeout: 1_800_000 },
    async () => {
      const classPatterns = patterns();
      const runs: Record<string, { losses: number[]; curve: number[] }> = {};
      for (const precision of ['fp32', 'fp16', 'bf16'] as const) {
        const { losses, skipped } = await run(precision, classPatterns);
        const curve = windows(losses);
        runs[precision] = { losses, curve };
        console.log(`# ${precision}: first loss ${losses[0]!.toFixed(4)}, mean loss per ${WINDOW} steps ${curve.map((v) => v.toFixed(3)).join(' ')}${precision === 'fp16' ? `, ${skipped} skipped steps` : ''}`);
        assert.ok(losses.every(Number.isFinite) || precision === 'fp16', `${precision}: every loss finite`);
        assert.ok(curve[0]! > 1.8, `${precision}: starts near ln 10 (${curve[0]})`);
        assert.ok(curve.at(-1)! < 0.5 * curve[0]!, `${precision}: the loss falls (first window ${curve[0]}, last ${curve.at(-1)})`);
        if (precision === 'fp16') assert.ok(skipped <= 5, `fp16: ${skipped} skipped steps (the scaler's start-up backoff only)`);
      }
      const ref = runs['fp32']!;
      const area = (c: number[]) => c.reduce((s, v) => s + v, 0);
      for (const [precision, rounding] of [['fp16', 0.01], ['bf16', 0.03]] as const) {
        const { losses, curve } = runs[precision]!;
        // Same weights, same batch: the first loss differs only by the 16-bit rounding of the forward.
        assert.ok(Math.abs(losses[0]! - ref.losses[0]!) <= rounding * ref.losses[0]!, `${precision} first loss ${losses[0]} vs fp32 ${ref.losses[0]}`);
        curve.forEach((v, i) => {
          const r = ref.curve[i]!;
          assert.ok(Math.abs(v - r) <= 0.15 + 0.25 * r, `${precision} steps ${i * WINDOW}-${(i + 1) * WINDOW}: mean loss ${v} vs fp32 ${r}`);
        });
        assert.ok(Math.abs(area(curve) - area(ref.curve)) <= 0.1 * area(ref.curve), `${precision}: area under the loss curve ${area(curve)} vs fp32 ${area(ref.curve)}`);
      }
      classPatterns.dispose();
    },
  );
});
