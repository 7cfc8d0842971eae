/**
 * GradScaler and the optimizers on a backend without synchronous reads (the 'async-reference'
 * double, test/helpers/async_backend.ts): the scale, growth tracker and found-inf flag live on the
 * device, steps are skipped on the device, and no read happens in scale / unscale_ / step / update.
 *
 * The oracle is the same run on the reference backend (and on the suite's backend when that is
 * another, e.g. wasm), where the scaler decides on the host: parameters, optimizer state, scale,
 * growth tracker, hysteresis streak and skipped-step count must be bit for bit the same after every
 * iteration of scripted sequences with injected Inf/NaN gradients (skips, backoff, growth at
 * growthInterval, hysteresis, bounds). With the fused kernels hidden, the composite fallbacks must
 * agree too (bitwise, except Adam's device-side bias corrections: float32, so within rounding).
 * In the webgpu pass the suite's backend is such a backend too: the same scenarios run on it against
 * the reference (SGD bitwise; Adam and RMSprop within the GPU's float32 rounding).
 */
import { backendName } from './helpers/backend.js';
import { ASYNC_BACKEND, asyncBackend, freshAsyncBackend } from './helpers/async_backend.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { rng } from './helpers/rng.js';
import { onBackend as on } from './helpers/backends.js';
import { trainStep, type StepContext } from '../src/train/classifier.js';
import { REFERENCE_KERNELS } from '../src/backend/reference/index.js';

type AnyOptimizer = mx.optim.Optimizer<object>;
/** A suite backend without synchronous reads (WebGPU) decides skips on the device, as the double does. */
const DEVICE_DECIDED = backendName === 'webgpu' ? backendName : null;
const BASELINES = [...new Set(['reference', backendName])].filter((b) => b !== DEVICE_DECIDED);
const FUSED_KERNELS = ['sgdUpdate', 'adamUpdate', 'ampUnscale', 'ampUpdateScale'] as const;

/** Storage bits of a tensor (float32 as its uint32 patterns, so -0 and NaN payloads count). */
async function bitsOf(t: Tensor): Promise<number[]> {
  const s = await t.storageData();
  return Array.from(s instanceof Float32Array ? new Uint32Array(s.buffer, s.byteOffset, s.length) : s);
}

async function valuesOf(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

/* ------------------------------------------------------------------ scripted runs */

/** clean: ordinary gradients; inf / nan: one element injected; big: finite, but inf once scaled. */
type Kind = 'clean' | 'inf' | 'nan' | 'big';

interface Scenario {
  name: string;
  /** Optimizers over the two parameters (two optimizers share the scaler when more than one). */
  makeOpts(ps: Tensor[]): AnyOptimizer[];
  scaler: mx.amp.GradScalerOptions;
  script: Kind[];
  gradDtype?: 'float32' | 'bfloat16';
  /** Call unscale_ explicitly before step (and clip), as a loop that clips does. */
  clip?: boolean;
  /** Which parameter gets the injected value (default 0). */
  injectInto?: number;
  /** Relative tolerance on a GPU, where float32 arithmetic may differ from the reference (default 0: bitwise). */
  gpuTolerance?: number;
}

const SHAPES = [[3, 5], [5]];

function gradValues(step: number, param: number, kind: Kind, injectInto: number): number[] {
  const r = rng(1000 + 17 * step + param);
  const n = SHAPES[param]!.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, () => (r() - 0.5) * 2e-2);
  if (param === injectInto) {
    if (kind === 'inf') v[2] = -Infinity;
    if (kind === 'nan') v[n - 1] = NaN;
    if (kind === 'big') v[1] = 3e38;
  }
  return v;
}

interface Snapshot {
  params: number[][];
  state: Record<string, number[] | number>[];
  scaler: Record<string, unknown>;
  skipped: number;
}

async function snapshot(params: Tensor[], opts: AnyOptimizer[], scaler: mx.amp.GradScaler): Promise<Snapshot> {
  const state: Record<string, number[] | number>[] = [];
  for (const p of params) {
    const opt = opts.find((o) => o.paramGroups.some((g) => g.params.includes(p)))!;
    const entry: Record<string, number[] | number> = {};
    for (const [k, v] of Object.entries(opt.state.get(p) ?? {})) entry[k] = typeof v === 'number' ? v : v.numel === 1 && v.ndim === 0 ? (await valuesOf(v))[0]! : await bitsOf(v);
    state.push(entry);
  }
  return {
    params: await Promise.all(params.map(bitsOf)),
    state,
    scaler: (await scaler.stateDictAsync()) as Record<string, unknown>,
    skipped: await scaler.getSkippedStepsAsync(),
  };
}

interface RunResult {
  snaps: Snapshot[];
  liveBuffers: number[];
  stepped: (boolean | undefined)[];
}

async function runScenario(backend: string, sc: Scenario): Promise<RunResult> {
  return on(backend, async () => {
    const init = SHAPES.map((s, i) => {
      const r = rng(7 + i);
      return Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1);
    });
    const params = init.map((v, i) => mx.tensor(v, { shape: SHAPES[i]! }).requiresGrad_());
    const opts = sc.makeOpts(params);
    const scaler = new mx.amp.GradScaler(sc.scaler);
    const dev = backend === ASYNC_BACKEND ? asyncBackend() : null;
    const result: RunResult = { snaps: [], liveBuffers: [], stepped: [] };
    for (const [s, kind] of sc.script.entries()) {
      const iteration = () =>
        mx.scope(() => {
          params.forEach((p, i) => {
            p.grad = scaler.scale(mx.tensor(gradValues(s, i, kind, sc.injectInto ?? 0), { shape: p.shape, dtype: sc.gradDtype ?? 'float32' }));
          });
          if (sc.clip) for (const o of opts) scaler.unscale_(o);
          const stepped = opts.map((o) => scaler.step(o));
          scaler.update();
          return stepped;
        });
      let stepped: (boolean | undefined)[];
      if (dev) {
        const reads = dev.reads;
        stepped = dev.noReads(`iteration ${s}`, iteration);
        assert.equal(dev.reads, reads, 'no device read in scale / unscale_ / step / update');
      } else stepped = iteration();
      result.stepped.push(...stepped);
      result.liveBuffers.push(mx.memory().liveBuffers);
      result.snaps.push(await snapshot(params, opts, scaler));
    }
    for (const p of params) p.dispose();
    return result;
  });
}

/** Keys the device run may hold beyond the host run: state of steps that were skipped on the device. */
function checkExtraKey(label: string, key: string, base: Record<string, number[] | number>, got: Record<string, number[] | number>): void {
  if (key === 'momentumBufferEmpty') {
    assert.equal(got[key], 'momentumBuffer' in base ? 0 : 1, `${label}: the empty flag says whether the buffer holds a step`);
    return;
  }
  // the host run has not stepped this parameter yet: the device one holds the initial state
  if (key === 'step') assert.equal(got[key], 0, `${label}: no step counted`);
  else if (key === 'momentumBuffer' && 'momentumBufferEmpty' in got) assert.equal(got['momentumBufferEmpty'], 1, `${label}: a buffer without a step is flagged empty`);
  else assert.ok((got[key] as number[]).every((b) => b === 0), `${label}: state '${key}' is still zero`);
}

function close(label: string, got: number[], base: number[], rel: number): void {
  const f = (bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);
  const a = f(got);
  const b = f(base);
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= rel * Math.abs(b[i]!) + 1e-9 || (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)))) assert.fail(`${label}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

function compareRuns(label: string, base: RunResult, got: RunResult, tolerance = 0): void {
  assert.equal(got.snaps.length, base.snaps.length);
  base.snaps.forEach((b, s) => {
    const g = got.snaps[s]!;
    const at = `${label}, iteration ${s}`;
    assert.deepEqual(g.scaler, b.scaler, `${at}: scaler state`);
    assert.equal(g.skipped, b.skipped, `${at}: skipped steps`);
    b.params.forEach((bits, i) => {
      if (tolerance === 0) assert.deepEqual(g.params[i], bits, `${at}: parameter ${i}`);
      else close(`${at}: parameter ${i}`, g.params[i]!, bits, tolerance);
    });
    b.state.forEach((bs, i) => {
      const gs = g.state[i]!;
      for (const [k, v] of Object.entries(bs)) {
        assert.ok(k in gs, `${at}: parameter ${i} lacks state '${k}'`);
        if (typeof v === 'number' || tolerance === 0) assert.deepEqual(gs[k], v, `${at}: state '${k}' of parameter ${i}`);
        else close(`${at}: state '${k}' of parameter ${i}`, gs[k] as number[], v, tolerance);
      }
      for (const k of Object.keys(gs)) if (!(k in bs)) checkExtraKey(`${at}, parameter ${i}`, k, bs, gs);
    });
  });
}

const SCENARIOS: Scenario[] = [
  {
    name: 'SGD momentum + Nesterov + weight decay, first step overflowing, growth every 3',
    makeOpts: (ps) => [new mx.optim.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 })],
    scaler: { initScale: 2 ** 10, growthInterval: 3 },
    script: ['inf', 'clean', 'clean', 'clean', 'nan', 'clean', 'big', 'clean', 'clean', 'clean', 'inf', 'clean'],
  },
  {
    name: 'SGD momentum + dampening, bfloat16 gradients, unscale_ then step',
    makeOpts: (ps) => [new mx.optim.SGD(ps, { lr: 0.05, momentum: 0.8, dampening: 0.3 })],
    scaler: { initScale: 2 ** 12, growthInterval: 2, growthFactor: 4, backoffFactor: 0.25 },
    script: ['nan', 'inf', 'clean', 'clean', 'clean', 'big', 'clean', 'clean'],
    gradDtype: 'bfloat16',
    clip: true,
  },
  {
    name: 'Adam amsgrad + L2 weight decay, hysteresis 2 and scale bounds',
    makeOpts: (ps) => [new mx.optim.Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 0.1 })],
    scaler: { initScale: 2 ** 8, growthInterval: 2, hysteresis: 2, minScale: 64, maxScale: 2 ** 9 },
    script: ['inf', 'clean', 'inf', 'inf', 'inf', 'inf', 'clean', 'clean', 'clean', 'clean', 'big', 'clean', 'nan', 'nan', 'clean'],
    // the GPU computes Adam's bias correction 1 - beta2^step from the device step in float32: ~1e-5 relative at step 1
    gpuTolerance: 1e-4,
  },
  {
    name: 'AdamW maximize, bfloat16 gradients',
    makeOpts: (ps) => [new mx.optim.AdamW(ps, { lr: 0.02, betas: [0.8, 0.9], maximize: true })],
    scaler: { initScale: 2 ** 16, growthInterval: 3 },
    script: ['clean', 'big', 'clean', 'clean', 'clean', 'inf', 'clean', 'clean', 'clean', 'clean'],
    gradDtype: 'bfloat16',
    // the GPU computes Adam's bias correction 1 - beta2^step from the device step in float32: ~1e-5 relative at step 1
    gpuTolerance: 1e-4,
  },
  {
    name: 'RMSprop centered + momentum (composite update with where)',
    makeOpts: (ps) => [new mx.optim.RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.9, weightDecay: 0.01 })],
    scaler: { initScale: 2 ** 10, growthInterval: 2 },
    script: ['inf', 'clean', 'clean', 'nan', 'clean', 'clean', 'clean'],
    gpuTolerance: 1e-5, // float32 addcmul/addcdiv/sqrt on the GPU, each rounded once from float64 in the reference
  },
  {
    name: 'two optimizers, one scaler (SGD and Adam): an overflow in either skips both',
    makeOpts: (ps) => [new mx.optim.SGD([ps[0]!], { lr: 0.1, momentum: 0.9 }), new mx.optim.Adam([ps[1]!], { lr: 0.01 })],
    scaler: { initScale: 2 ** 10, growthInterval: 2 },
    script: ['clean', 'inf', 'clean', 'clean', 'nan', 'clean', 'clean', 'big'],
    injectInto: 1,
    clip: true,
    // the GPU computes Adam's bias correction 1 - beta2^step from the device step in float32: ~1e-5 relative at step 1
    gpuTolerance: 1e-4,
  },
];

describe('GradScaler on an asynchronous backend: bitwise the host-decided run', () => {
  for (const sc of SCENARIOS) {
    it(sc.name, async () => {
      const dev = await freshAsyncBackend();
      const calls = new Map(FUSED_KERNELS.map((k) => [k, dev.callsOf(k)]));
      const got = await runScenario(ASYNC_BACKEND, sc);
      for (const base of BASELINES) compareRuns(`${sc.name} vs ${base}`, await runScenario(base, sc), got);
      assert.ok(got.stepped.every((s) => s === undefined), 'step() cannot know on the device: undefined');
      // the device path ran the fused kernels (RMSprop has none)
      assert.ok(dev.callsOf('ampUnscale') > calls.get('ampUnscale')!, 'ampUnscale ran');
      assert.equal(dev.callsOf('ampUpdateScale') - calls.get('ampUpdateScale')!, sc.script.length, 'one ampUpdateScale per update()');
      const live = got.liveBuffers;
      for (let s = 2; s < live.length; s++) assert.equal(live[s], live[1], `live buffers changed at iteration ${s}: ${live.join(', ')}`);
    });
    if (DEVICE_DECIDED) {
      it(`${sc.name}, on ${DEVICE_DECIDED}`, async () => {
        const got = await runScenario(DEVICE_DECIDED, sc);
        compareRuns(`${sc.name}: ${DEVICE_DECIDED} vs reference`, await runScenario('reference', sc), got, sc.gpuTolerance ?? 0);
        assert.ok(got.stepped.every((s) => s === undefined), 'step() cannot know on the device: undefined');
        // the suite's backend also holds earlier tests' garbage, which the GC may free meanwhile: no growth
        const live = got.liveBuffers;
        for (let s = 2; s < live.length; s++) assert.ok(live[s]! <= live[1]!, `live buffers grew at iteration ${s}: ${live.join(', ')}`);
      });
    }
  }

  for (const sc of SCENARIOS) {
    it(`composite fallbacks (no fused kernels): ${sc.name}`, async () => {
      const dev = asyncBackend();
      dev.hide(...FUSED_KERNELS);
      let got: RunResult;
      try {
        got = await runScenario(ASYNC_BACKEND, sc);
      } finally {
        dev.unhide();
      }
      // Adam's bias corrections come from a device step count in float32 ops (1 - beta2^step cancels:
      // a relative error of ~1e-5 in it early on): close, not bitwise
      const hasAdam = /Adam/.test(sc.name);
      compareRuns(`${sc.name} (composite) vs reference`, await runScenario('reference', sc), got, hasAdam ? 2e-4 : 0);
    });
  }
});

/* ------------------------------------------------------------------ the classifier step */

describe('the classifier training step on an asynchronous backend', () => {
  for (const [name, makeOpt] of [
    ['SGD momentum', (m: mx.nn.Module) => new mx.optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 })],
    ['AdamW', (m: mx.nn.Module) => new mx.optim.AdamW(m.parameters(), { lr: 0.01 })],
  ] as const) {
    it(`trainStep (fp16 autocast, clipGradNorm, overflowing first steps), ${name}: bitwise the reference run, no reads`, async () => {
      const steps = 10;
      const run = (backend: string) =>
        on(backend, async () => {
          const r = rng(42);
          const model = new mx.nn.Sequential(
            new mx.nn.Linear(8, 16, { generator: new mx.Generator(1) }),
            new mx.nn.ReLU(),
            new mx.nn.Linear(16, 4, { generator: new mx.Generator(2) }),
          );
          const ctx: StepContext = {
            model,
            optimizer: makeOpt(model) as AnyOptimizer,
            scaler: new mx.amp.GradScaler({ initScale: 2 ** 20, growthInterval: 3 }), // float16 gradients overflow at first, and after growing
            precision: 'fp16',
            clipGradNorm: 1,
          };
          const x = mx.keep(mx.tensor(Array.from({ length: 6 * 8 }, () => r() * 4 - 2), { shape: [6, 8] }));
          const y = mx.keep(mx.tensor([0, 1, 2, 3, 1, 2], { dtype: 'int32' }));
          const dev = backend === ASYNC_BACKEND ? asyncBackend() : null;
          const out = { losses: [] as number[], stepped: [] as boolean[], onDevice: [] as (true | undefined)[], live: [] as number[], params: [] as number[][], scale: 0, skipped: 0 };
          for (let s = 0; s < steps; s++) {
            const res = dev ? dev.noReads('trainStep', () => trainStep(ctx, x, y)) : trainStep(ctx, x, y);
            out.losses.push(await res.loss.item());
            res.loss.dispose();
            out.stepped.push(res.stepped);
            out.onDevice.push(res.skipOnDevice);
            out.live.push(mx.memory().liveBuffers);
          }
          out.params = await Promise.all(model.parameters().map(bitsOf));
          out.scale = await ctx.scaler.getScaleAsync();
          out.skipped = await ctx.scaler.getSkippedStepsAsync();
          x.dispose();
          y.dispose();
          return out;
        });
      const base = await run('reference');
      await freshAsyncBackend();
      const got = await run(ASYNC_BACKEND);
      assert.ok(base.skipped >= 2 && base.skipped < steps, `the script overflows some steps: ${base.skipped}`);
      assert.equal(base.skipped, base.stepped.filter((s) => !s).length);
      assert.deepEqual(got.losses, base.losses, 'losses');
      assert.deepEqual(got.params, base.params, 'parameters');
      assert.equal(got.scale, base.scale, 'scale');
      assert.equal(got.skipped, base.skipped, 'skipped steps');
      assert.ok(got.onDevice.every((d) => d === true) && base.onDevice.every((d) => d === undefined), 'skipOnDevice marks the device-decided steps');
      for (let s = 2; s < steps; s++) assert.equal(got.live[s], got.live[1], `live buffers changed at step ${s}: ${got.live.join(', ')}`);
    });
  }
});

/* ------------------------------------------------------------------ the async API */

describe('GradScaler API on an asynchronous backend', () => {
  const setup = (options: mx.amp.GradScalerOptions = {}) => {
    const p = mx.tensor([1, 2, 3], { requiresGrad: true });
    const opt = new mx.optim.SGD([p], { lr: 0.1 });
    const scaler = new mx.amp.GradScaler(options);
    const iterate = (overflow: boolean) => {
      p.grad = scaler.scale(mx.tensor(overflow ? [1, Infinity, 1] : [1, 1, 1]));
      scaler.step(opt);
      scaler.update();
    };
    return { p, opt, scaler, iterate };
  };

  it('synchronous getters refuse with a pointer to the async ones; the async ones work on both kinds of backend', async () => {
    await on(ASYNC_BACKEND, async () => {
      const { scaler, iterate } = setup({ initScale: 1024, growthInterval: 2 });
      assert.equal(scaler.getScale(), 1024, 'before meeting a device tensor the state is still on the host');
      iterate(false);
      assert.throws(() => scaler.getScale(), /getScaleAsync/);
      assert.throws(() => scaler.stateDict(), /stateDictAsync/);
      assert.throws(() => scaler.getSkippedSteps(), /getSkippedStepsAsync/);
      iterate(false);
      iterate(true);
      assert.equal(await scaler.getScaleAsync(), 1024); // 1024 -> 2048 -> 1024
      assert.deepEqual(await scaler.stateDictAsync(), { scale: 1024, growthFactor: 2, backoffFactor: 0.5, growthInterval: 2, growthTracker: 0 });
      assert.equal(await scaler.getSkippedStepsAsync(), 1);
    });
    await on('reference', async () => {
      const { scaler, iterate } = setup({ initScale: 1024, growthInterval: 2 });
      iterate(false);
      iterate(true);
      assert.equal(await scaler.getScaleAsync(), scaler.getScale());
      assert.deepEqual(await scaler.stateDictAsync(), scaler.stateDict());
      assert.equal(await scaler.getSkippedStepsAsync(), 1);
      assert.equal(scaler.getSkippedSteps(), 1);
    });
  });

  it('onStep events arrive asynchronously, in order, with the device values; flush() waits for them', async () => {
    await on(ASYNC_BACKEND, async () => {
      const events: mx.amp.ScalerStepEvent[] = [];
      const { scaler, iterate } = setup({ initScale: 8, growthInterval: 1, onStep: (e) => events.push(e) });
      iterate(false);
      iterate(true);
      scaler.update(100);
      assert.equal(events.length, 0, 'nothing is read synchronously');
      await scaler.flush();
      assert.deepEqual(events, [
        { scale: 16, foundInf: false, skipped: false },
        { scale: 8, foundInf: true, skipped: true },
        { scale: 100, foundInf: false, skipped: false },
      ]);
    });
  });

  it('an error thrown by onStep surfaces from flush()', async () => {
    await on(ASYNC_BACKEND, async () => {
      const { scaler, iterate } = setup({ onStep: () => { throw new Error('logger failed'); } });
      iterate(false);
      await assert.rejects(scaler.flush(), /logger failed/);
      await scaler.flush(); // reported once
    });
  });

  it('update(newScale) and loadStateDict write the device state without reads', async () => {
    await on(ASYNC_BACKEND, async () => {
      const dev = asyncBackend();
      const { scaler, iterate } = setup({ initScale: 1024, growthInterval: 3, hysteresis: 2 });
      iterate(false);
      const reads = dev.reads;
      dev.noReads('update(newScale)', () => {
        scaler.update(mx.tensor(256));
        scaler.update(512);
        scaler.loadStateDict({ scale: 32, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 2, hysteresis: 2, overflowStreak: 1 });
      });
      assert.equal(dev.reads, reads);
      assert.deepEqual(await scaler.stateDictAsync(), { scale: 32, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 2, hysteresis: 2, overflowStreak: 1 });
      iterate(true); // the second consecutive overflow: backs off
      assert.deepEqual(await scaler.stateDictAsync(), { scale: 16, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3, growthTracker: 0, hysteresis: 2, overflowStreak: 0 });
      assert.throws(() => scaler.update(-1), /must be positive/);
    });
  });

  it('a device skip needs an optimizer that supports it', async () => {
    await on(ASYNC_BACKEND, async () => {
      const p = mx.tensor([1, 2], { requiresGrad: true });
      let calls = 0;
      const plain: mx.optim.OptimizerLike = { paramGroups: [{ params: [p] }], step: () => void calls++ };
      const scaler = new mx.amp.GradScaler();
      p.grad = scaler.scale(mx.tensor([1, 1]));
      assert.throws(() => scaler.step(plain), /supportsFoundInf/);
      assert.equal(calls, 0);

      class Custom extends mx.optim.Optimizer<{ lr: number }> {
        protected updateGroup(): void {}
      }
      const custom = new Custom([p], { lr: 1 });
      assert.equal(custom.supportsFoundInf, false);
      assert.throws(() => custom.step({ foundInf: mx.tensor(0) }), /cannot skip a step on the device/);
    });
  });

  it('masterWeights (float16 model, float32 masters) steps and skips on the device', async () => {
    const run = (backend: string) =>
      on(backend, async () => {
        const model = new mx.nn.Linear(4, 3, { generator: new mx.Generator(5) });
        const opt = new mx.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
        const mw = mx.amp.masterWeights(model, opt, { dtype: 'float16' });
        const scaler = new mx.amp.GradScaler({ initScale: 2 ** 17 });
        const x = mx.keep(mx.tensor(Array.from({ length: 8 }, (_, i) => (i % 3) - 1), { shape: [2, 4] }).half());
        for (let s = 0; s < 8; s++) {
          mx.scope(() => {
            opt.zeroGrad();
            const loss = model.forward(x).float().square().sum();
            scaler.scale(loss).backward();
            scaler.step(opt);
            scaler.update();
          });
        }
        const out = {
          halves: await Promise.all([...mw.halves.values()].map(bitsOf)),
          masters: await Promise.all([...mw.masters.values()].map(bitsOf)),
          state: await scaler.stateDictAsync(),
        };
        x.dispose();
        return out;
      });
    const base = await run('reference');
    assert.deepEqual(await run(ASYNC_BACKEND), base);
  });
});

/* ------------------------------------------------------------------ kernel contracts */

describe('optimizer and loss-scaling kernels (reference definitions)', () => {
  const f32 = (values: number[], shape = [values.length]) => mx.tensor(values, { shape });
  const view = (t: Tensor) => ({ buffer: t.storage.buffer, dtype: t.dt, shape: t.shape, strides: t.strides, offset: t.offset });

  it('ampUpdateScale follows the host rule (growth, backoff, hysteresis, bounds) and counts skipped iterations', async () => {
    const params = { growthFactor: 2, backoffFactor: 0.5, growthInterval: 2, hysteresis: 2, minScale: 4, maxScale: 64 };
    const script = [false, false, false, false, true, false, true, true, true, true, true, true, false];
    // the host rule, on a backend with synchronous reads (the scaler decides there)
    const expected = await on('reference', () => {
      const host = new mx.amp.GradScaler({ initScale: 16, ...params });
      const p = mx.tensor([1], { requiresGrad: true });
      const opt = new mx.optim.SGD([p], { lr: 0 });
      return script.map((overflow) => {
        p.grad = mx.tensor([overflow ? NaN : 1]);
        host.step(opt);
        host.update();
        const s = host.stateDict() as mx.amp.GradScalerState;
        return [s.scale, s.growthTracker, s.overflowStreak];
      });
    });
    const b = mx.getBackend();
    for (const countSkipped of [false, true]) {
      const scale = f32([16], []);
      const tracker = mx.tensor([0], { shape: [], dtype: 'int32' });
      const streak = mx.tensor([0], { shape: [], dtype: 'int32' });
      const skipped = mx.tensor([0], { shape: [], dtype: 'int32' });
      const state = countSkipped ? [scale, tracker, streak, skipped] : [scale, tracker, streak];
      for (const [i, overflow] of script.entries()) {
        const found = f32([overflow ? 1 : 0], []);
        b.run('ampUpdateScale', [...state, found].map(view), state.map(view), { ...params, countSkipped });
        assert.deepEqual([(await scale.data())[0], (await tracker.data())[0], (await streak.data())[0]], expected[i]);
        const overflows = script.slice(0, i + 1).filter(Boolean).length;
        assert.equal((await skipped.data())[0], countSkipped ? overflows : 0, 'countSkipped counts the overflowing iterations');
      }
    }
  });

  it('ampUnscale multiplies in place and raises the flag only on inf/NaN', async () => {
    const b = mx.getBackend();
    const g = f32([2, -4, 8]);
    const inv = f32([0.25], []);
    const found = f32([0], []);
    b.run('ampUnscale', [g, inv, found].map(view), [g, found].map(view), {});
    assert.deepEqual([...(await g.data())], [0.5, -1, 2]);
    assert.equal((await found.data())[0], 0);
    const h = f32([1, NaN]);
    b.run('ampUnscale', [h, inv, found].map(view), [h, found].map(view), {});
    assert.equal((await found.data())[0], 1);
    b.run('ampUnscale', [g, inv, found].map(view), [g, found].map(view), {});
    assert.equal((await found.data())[0], 1, 'a raised flag stays raised');
  });

  it('ampUnscale takes a list of gradients (more than one dispatch holds on WebGPU, strided, bfloat16, empty)', async () => {
    const b = mx.getBackend();
    const inv = f32([0.25], []);
    const grads = [
      ...Array.from({ length: 10 }, (_, i) => f32([i + 1, -(i + 2), 0.5 * i])),
      mx.tensor([3, -6, 10, 2e-40], { dtype: 'bfloat16' }),
      f32([1, 2, 3, 4, 5, 6], [2, 3]).t(), // strided
      f32([], [0]),
    ];
    const expected = await Promise.all(grads.map(async (g) => Array.from(await g.float().data(), (x) => Math.fround(x * 0.25))));
    const found = f32([0], []);
    const views = grads.map(view);
    b.run('ampUnscale', [...views, view(inv), view(found)], [...views, view(found)], {});
    const got = await Promise.all(grads.map(async (g) => Array.from(await g.float().data())));
    // bfloat16 rounds the float32 product once more
    expected[10] = Array.from(await mx.tensor(Array.from(expected[10]!), { dtype: 'bfloat16' }).float().data());
    assert.deepEqual(got, expected);
    assert.equal((await found.data())[0], 0);
    const bad = [f32([1, 2]), f32([3, Infinity]), f32([4])];
    const badViews = bad.map(view);
    b.run('ampUnscale', [...badViews, view(inv), view(found)], [...badViews, view(found)], {});
    assert.equal((await found.data())[0], 1, 'an inf in any gradient of the list raises the flag');
    assert.deepEqual(Array.from(await bad[2]!.data()), [1], 'every gradient is still unscaled');
  });

  it('sgdUpdate writes the next isFirst flag (flagOutput): the old flag when skipped, else 0', async () => {
    const b = mx.getBackend();
    const params = { lr: 0.5, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, first: false, firstInput: true, foundInfInput: true, flagOutput: true };
    for (const [skipped, isFirst] of [[1, 1], [0, 1], [0, 0], [1, 0]] as const) {
      const [w, g, buf] = [f32([1, 2, 3]), f32([2, 4, 6]), f32([10, 10, 10])];
      const [first, found, next] = [f32([isFirst], []), f32([skipped], []), f32([7], [])];
      b.run('sgdUpdate', [w, g, buf, first, found].map(view), [w, buf, next].map(view), params);
      const label = `skipped ${skipped}, isFirst ${isFirst}`;
      assert.equal((await next.data())[0], skipped ? isFirst : 0, label);
      assert.equal((await first.data())[0], isFirst, `${label}: the old flag is not written`);
      const fr = Math.fround;
      const b1 = skipped ? [10, 10, 10] : isFirst ? [2, 4, 6] : [2, 4, 6].map((d) => fr(fr(10 * fr(0.9)) + d));
      assert.deepEqual(Array.from(await buf.data()), b1, label);
    }
  });

  it('sgdUpdate and adamUpdate leave every output unchanged when foundInf is nonzero, and update it when zero', async () => {
    const b = mx.getBackend();
    for (const [kernel, n, params] of [
      ['sgdUpdate', 3, { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0.1, nesterov: false, maximize: false, first: false, foundInfInput: true }],
      ['adamUpdate', 4, { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, decoupled: true, amsgrad: false, maximize: false, biasCorrection1: 0.1, biasCorrection2Sqrt: 0.1, foundInfInput: true }],
    ] as const) {
      const tensors = Array.from({ length: n }, (_, i) => f32([1 + i, -2, 0.5]));
      const [w, g, ...states] = tensors;
      const before = await Promise.all(tensors.map(bitsOf));
      b.run(kernel, [...tensors, f32([1], [])].map(view), [w!, ...states].map(view), params);
      assert.deepEqual(await Promise.all(tensors.map(bitsOf)), before, `${kernel}: skipped`);
      b.run(kernel, [...tensors, f32([0], [])].map(view), [w!, ...states].map(view), params);
      assert.notDeepEqual(await bitsOf(w!), before[0], `${kernel}: stepped`);
      assert.deepEqual(await bitsOf(g!), before[1], `${kernel}: the gradient is not written`);
    }
  });

  it('every kernel of the optimizers is in the reference table (so the wasm fallback has it too)', () => {
    for (const k of FUSED_KERNELS) assert.equal(typeof REFERENCE_KERNELS[k], 'function', k);
  });
});
