/**
 * An overflow storm: 1,000 consecutive float16 training steps whose gradients are all infinite
 * (the loss multiplied by Infinity). Every step is skipped, so every weight and every momentum
 * buffer stays bit-identical; the scale halves down to minScale (or, without one, to SCALE_FLOOR =
 * 2^-126, never 0) and is never NaN; afterwards the steps are taken again and the scale grows every
 * growthInterval clean steps. Runs on every backend (on WebGPU the skip and the scale update happen
 * on the device).
 */
import './helpers/backend.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';

const F = mx.nn.functional;
const STORM = 1000;
const GROWTH_INTERVAL = 10;

async function bits(tensors: mx.Tensor[]): Promise<string[]> {
  return Promise.all(tensors.map(async (t) => Buffer.from((await t.storageData()).buffer).toString('base64')));
}

function run(options: mx.amp.GradScalerOptions) {
  mx.manualSeed(0);
  const model = new mx.nn.Sequential(new mx.nn.Linear(16, 32), new mx.nn.ReLU(), new mx.nn.Linear(32, 4));
  const opt = new mx.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const events: mx.amp.ScalerStepEvent[] = [];
  const scaler = new mx.amp.GradScaler({ ...options, growthInterval: GROWTH_INTERVAL, onStep: (e) => events.push(e) });
  const x = mx.randn([32, 16]);
  const y = mx.randint(0, 4, [32], { dtype: 'int32' });
  /** One step; `storm`: the loss times Infinity, so every gradient is infinite or NaN. */
  const step = (storm: boolean): mx.Tensor =>
    mx.scope(() => {
      opt.zeroGrad();
      const loss = mx.amp.autocast({ dtype: 'float16' }, () => F.crossEntropy(model.call(x), y));
      scaler.scale(storm ? loss.mul(Infinity) : loss).backward();
      scaler.step(opt);
      scaler.update();
      return loss.detach();
    });
  const state = () => [...model.parameters(), ...Object.values(opt.stateDict().state).flatMap((s) => Object.values(s).filter((v): v is mx.Tensor => v instanceof mx.Tensor))];
  return { model, scaler, events, step, state };
}

for (const [label, options, floor] of [
  ['minScale 1', { minScale: 1 }, 1],
  ['no minScale: the floor 2^-126', {}, mx.amp.SCALE_FLOOR],
] as const) {
  describe(`overflow storm, ${label}`, () => {
    it(`${STORM} steps of infinite gradients leave every weight bit-identical, the scale at ${floor} and never NaN; then the scale grows again`, async () => {
      const { scaler, events, step, state } = run(options);
      for (let i = 0; i < 5; i++) step(false).dispose(); // momentum buffers exist
      const before = await bits(state());
      const scaleBefore = await scaler.getScaleAsync();
      const skippedBefore = await scaler.getSkippedStepsAsync();
      for (let i = 0; i < STORM; i++) step(true).dispose();
      await scaler.flush();
      const storm = events.slice(-STORM);
      assert.equal(storm.length, STORM);
      let expected = scaleBefore;
      storm.forEach((e, i) => {
        expected = Math.max(Math.fround(expected * 0.5), floor);
        assert.ok(e.foundInf && e.skipped, `step ${i} found the overflow and was skipped`);
        assert.equal(e.scale, expected, `scale after storm step ${i}`);
      });
      assert.equal(await scaler.getScaleAsync(), floor);
      assert.equal((await scaler.getSkippedStepsAsync()) - skippedBefore, STORM);
      assert.deepEqual(await bits(state()), before, 'every weight and momentum buffer bit-identical');

      // Recovery: clean steps are taken, and the scale doubles every growthInterval of them.
      const losses: number[] = [];
      for (let i = 0; i < 3 * GROWTH_INTERVAL; i++) {
        const loss = step(false);
        losses.push(await loss.item());
        loss.dispose();
      }
      await scaler.flush();
      const recovery = events.slice(-3 * GROWTH_INTERVAL);
      assert.ok(recovery.every((e) => !e.foundInf && !e.skipped), 'no step skipped after the storm');
      assert.deepEqual([9, 19, 29].map((i) => recovery[i]!.scale), [floor * 2, floor * 4, floor * 8]);
      assert.ok(losses.every(Number.isFinite));
      assert.notDeepEqual(await bits(state()), before, 'the steps are taken again');
      if (floor === 1) assert.ok(losses[losses.length - 1]! < losses[0]!, `training goes on: loss ${losses[0]} -> ${losses[losses.length - 1]}`);
    });
  });
}
