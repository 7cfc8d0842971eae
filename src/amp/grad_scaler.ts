/**
 * GradScaler: dynamic loss scaling with PyTorch's semantics (torch.amp.GradScaler), plus optional
 * hysteresis, scale bounds and a per-update callback.
 *
 * A full mixed-precision loop:
 *
 *   const scaler = new mx.amp.GradScaler();
 *   for (const [x, y] of loader) {
 *     opt.zeroGrad();
 *     const loss = mx.amp.autocast({ dtype: 'float16' }, () => lossFn(model.forward(x), y));
 *     scaler.scale(loss).backward();          // gradients of loss * scale: small values survive float16
 *     scaler.unscale_(opt);                   // optional: only to look at or clip true gradients
 *     mx.nn.utils.clipGradNorm_(model.parameters(), 1.0);
 *     scaler.step(opt);                       // unscales if needed; skips opt.step() on inf/NaN
 *     scaler.update();                        // back off after an overflow, grow after growthInterval clean steps
 *   }
 *
 * Per optimizer, each iteration goes ready -> (unscaled) -> stepped, and `update()` resets every
 * optimizer to ready; calling things out of order raises. With `enabled: false` every method is a
 * no-op: `scale(loss)` returns `loss` itself and `step(opt)` just calls `opt.step()`.
 *
 * Two homes for the state, chosen by the backend of the first tensor the scaler sees:
 * - backends with synchronous reads (reference, wasm): the scale and growth tracker are host
 *   numbers, `unscale_` reads the found-inf flag, `step` skips `opt.step()` on the host and returns
 *   whether it stepped;
 * - backends without (WebGPU): as PyTorch on CUDA, the scale, growth tracker and hysteresis streak are
 *   0-d device tensors; `unscale_` makes a device found-inf flag (`ampUnscale` kernel), `step` passes
 *   it to `opt.step({ foundInf })`, which skips on the device, and returns undefined; `update()`
 *   computes the new scale on the device (`ampUpdateScale`). Nothing is read back: read the state with
 *   `await getScaleAsync()`, `await stateDictAsync()`, `await getSkippedStepsAsync()`.
 */
import { float16, float32, int32 } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import type { Backend } from '../backend/backend.js';
import { noGrad } from '../autograd/mode.js';
import { scope, keep } from '../tensor/scope.js';
import { full } from '../ops/creation.js';
import {
  add, eq, ge, isfinite, logicalAnd, logicalNot, logicalOr, maximum, minimum, mul, ne, where,
} from '../ops/elementwise.js';
import { reciprocal } from '../ops/math.js';
import { mean } from '../ops/reduce.js';
import { castTo } from '../ops/util.js';
import { scaleInPlaceFindingNonFinite } from '../ops/foreach.js';
import { kernelView } from '../ops/dispatch.js';
import type { OptimizerLike } from '../optim/optimizer.js';
import type { AmpUpdateScaleParams } from '../backend/kernels.js';
import { recentAutocastDtype } from './autocast.js';
import { mapPacked } from '../shape/packed.js';

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  enabled?: boolean;
  /** Back off only after this many consecutive overflowing steps (DeepSpeed's hysteresis). Default 1. */
  hysteresis?: number;
  /**
   * The scale never goes below this (default 0: only SCALE_FLOOR, float32's smallest normal number,
   * which keeps the scale from reaching 0, where it could never grow back).
   */
  minScale?: number;
  /** The scale never goes above this (default: no bound). */
  maxScale?: number;
  /** Called by every update() with the new scale and whether this iteration overflowed. */
  onStep?: (event: ScalerStepEvent) => void;
}

export interface ScalerStepEvent {
  scale: number;
  foundInf: boolean;
  skipped: boolean;
}

export interface GradScalerState {
  scale: number;
  growthFactor: number;
  backoffFactor: number;
  growthInterval: number;
  growthTracker: number;
  hysteresis?: number;
  overflowStreak?: number;
  minScale?: number;
  maxScale?: number;
}

enum Stage {
  Ready,
  Unscaled,
  Stepped,
}

interface OptimizerRecord {
  stage: Stage;
  /** Host mode: whether a gradient was inf/NaN; device mode: a 0-d float32 flag on the device; null: no gradients. */
  foundInf: boolean | Tensor | null;
}

/** The scaler's state on a backend without synchronous reads: kept 0-d tensors, updated in place. */
interface DeviceState {
  backend: Backend;
  /** float32 */
  scale: Tensor;
  /** int32: consecutive clean iterations */
  growthTracker: Tensor;
  /** int32: consecutive overflowing iterations (hysteresis) */
  overflowStreak: Tensor;
  /** int32: iterations whose steps were skipped */
  skippedSteps: Tensor;
}

let warnedBfloat16 = false;

/**
 * The lowest scale backing off can reach without a minScale: 2^-126, float32's smallest normal
 * number. PyTorch has no bound, and its float32 product reaches 0 after 166 consecutive overflows
 * from 65536: a scale of 0 never grows back (0 x growthFactor = 0) and makes an infinite loss NaN.
 * A normal number also survives GPUs that flush subnormals to zero.
 */
export const SCALE_FLOOR = 2 ** -126;

export class GradScaler {
  private scaleValue: number;
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private growthTracker = 0;
  private hysteresis: number;
  private overflowStreak = 0;
  private minScale: number;
  private maxScale: number;
  private readonly enabled: boolean;
  private readonly onStep: ((e: ScalerStepEvent) => void) | undefined;
  private perOptimizer = new Map<OptimizerLike, OptimizerRecord>();
  /** Iterations skipped so far (host mode). */
  private skippedSteps = 0;
  /** The state on an asynchronous backend, once the scaler has met one (null: host numbers). */
  private device: DeviceState | null = null;
  /** onStep events of device-mode updates, delivered in order when their values are read. */
  private events: Promise<void> = Promise.resolve();
  private eventError: unknown = null;

  constructor(options: GradScalerOptions = {}) {
    this.enabled = options.enabled ?? true;
    this.scaleValue = Math.fround(options.initScale ?? 2 ** 16);
    this.growthFactor = options.growthFactor ?? 2;
    this.backoffFactor = options.backoffFactor ?? 0.5;
    this.growthInterval = options.growthInterval ?? 2000;
    this.hysteresis = options.hysteresis ?? 1;
    this.minScale = options.minScale ?? 0;
    this.maxScale = options.maxScale ?? Infinity;
    this.onStep = options.onStep;
    if (!(this.scaleValue > 0)) throw new RangeError(`GradScaler: initScale must be positive, got ${options.initScale}`);
    if (!(this.growthFactor > 1)) throw new RangeError(`GradScaler: growthFactor should be > 1, got ${this.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) throw new RangeError(`GradScaler: backoffFactor should be in (0, 1), got ${this.backoffFactor}`);
    if (!Number.isInteger(this.growthInterval) || this.growthInterval <= 0) {
      throw new RangeError(`GradScaler: growthInterval should be a positive integer, got ${this.growthInterval}`);
    }
    if (!Number.isInteger(this.hysteresis) || this.hysteresis < 1) throw new RangeError(`GradScaler: hysteresis should be an integer >= 1, got ${this.hysteresis}`);
    if (!(this.minScale >= 0 && this.maxScale >= this.minScale)) {
      throw new RangeError(`GradScaler: need 0 <= minScale <= maxScale, got ${this.minScale} and ${this.maxScale}`);
    }
  }

  isEnabled(): boolean {
    return this.enabled;
  }

  /** Multiply the loss (or each of several) by the current scale. */
  scale<T extends Tensor | readonly Tensor[]>(outputs: T): T {
    if (!this.enabled) return outputs;
    if (!warnedBfloat16 && recentAutocastDtype() === 'bfloat16') {
      warnedBfloat16 = true;
      console.warn('mixprec: GradScaler under bfloat16 autocast works, but is not needed: bfloat16 has float32\'s exponent range, so gradients do not underflow.');
    }
    const first = Array.isArray(outputs) ? (outputs as readonly Tensor[])[0] : (outputs as Tensor);
    const dev = first ? this.deviceFor(first.backend) : this.device;
    const s = dev ? dev.scale : full([], this.scaleValue, { dtype: float32 });
    const one = (t: Tensor) => mul(t, s);
    return (Array.isArray(outputs) ? outputs.map(one) : one(outputs as Tensor)) as T;
  }

  /**
   * The device state for tensors on `backend`: null on a backend with synchronous reads (host
   * numbers, today's path), else the scaler's 0-d device tensors, made on first use from the host
   * values (the initial scale, or a loaded state dict).
   */
  private deviceFor(backend: Backend): DeviceState | null {
    if (this.device) {
      if (this.device.backend !== backend) {
        throw new Error(`GradScaler: its state lives on backend '${this.device.backend.name}', but got tensors on '${backend.name}'`);
      }
      return this.device;
    }
    if (backend.readSync) return null;
    const scalar = (value: number, dtype: typeof float32) => keep(Tensor.fromStorage(dtype === float32 ? Float32Array.of(value) : Int32Array.of(value), [], dtype, {}, backend));
    this.device = {
      backend,
      scale: scalar(this.scaleValue, float32),
      growthTracker: scalar(this.growthTracker, int32),
      overflowStreak: scalar(this.overflowStreak, int32),
      skippedSteps: scalar(this.skippedSteps, int32),
    };
    return this.device;
  }

  /** A device-mode error for the synchronous getters. */
  private asyncOnly(what: string, instead: string): Error {
    return new Error(
      `GradScaler.${what}: the scaler's state lives on backend '${this.device!.backend.name}', which has no synchronous reads; use ${instead}`,
    );
  }

  private record(opt: OptimizerLike): OptimizerRecord {
    let r = this.perOptimizer.get(opt);
    if (!r) this.perOptimizer.set(opt, (r = { stage: Stage.Ready, foundInf: null }));
    return r;
  }

  /**
   * Divide the optimizer's gradients by the scale, in place, and note whether any is inf/NaN.
   * The inverse scale is computed in float64 and rounded to float32, as PyTorch does.
   */
  unscale_(opt: OptimizerLike): void {
    if (!this.enabled) return;
    const r = this.record(opt);
    if (r.stage === Stage.Unscaled) throw new Error('unscale_() has already been called on this optimizer since the last update().');
    if (r.stage === Stage.Stepped) throw new Error('unscale_() is being called after step().');
    const grads = gradsOf(opt);
    const dev = grads.length > 0 ? this.deviceFor(grads[0]!.backend) : this.device;
    if (dev) {
      r.foundInf = unscaleOnDevice(grads, dev);
    } else {
      const invScale = Math.fround(1 / this.scaleValue);
      r.foundInf = unscaleGrads(opt, invScale);
    }
    r.stage = Stage.Unscaled;
  }

  /**
   * Unscale (if not done), then run opt.step() unless a gradient is inf/NaN. Returns whether it
   * stepped; on a backend without synchronous reads the skip happens on the device
   * (`opt.step({ foundInf })`) and the result is undefined: not known without a read.
   */
  step(opt: OptimizerLike): boolean | undefined {
    if (!this.enabled) {
      opt.step();
      return true;
    }
    const r = this.record(opt);
    if (r.stage === Stage.Stepped) throw new Error('step() has already been called since the last update().');
    if (r.stage === Stage.Ready) this.unscale_(opt);
    if (r.foundInf === null) throw new Error('No inf checks were recorded for this optimizer.');
    if (r.foundInf instanceof Tensor) {
      if (!opt.supportsFoundInf) {
        throw new Error(
          `GradScaler.step: on backend '${this.device!.backend.name}' (no synchronous reads) the step is skipped on the device, which needs an optimizer whose step({ foundInf }) does it (supportsFoundInf: the mx.optim optimizers)`,
        );
      }
      opt.step({ foundInf: r.foundInf });
      r.stage = Stage.Stepped;
      return undefined;
    }
    const stepped = !r.foundInf;
    if (stepped) opt.step();
    r.stage = Stage.Stepped;
    return stepped;
  }

  /**
   * Adjust the scale once per iteration, after every optimizer's step(): back off after an overflow
   * (growth counter reset), grow after growthInterval consecutive clean iterations. `update(s)` sets it.
   */
  update(newScale?: number | Tensor): void {
    if (!this.enabled) return;
    this.throwEventError();
    if (this.device) {
      this.updateOnDevice(this.device, newScale);
      return;
    }
    let foundInf = false;
    if (newScale !== undefined) {
      const v = typeof newScale === 'number' ? newScale : newScale.dataSync()[0]!;
      if (!(v > 0)) throw new RangeError(`GradScaler.update: new scale must be positive, got ${v}`);
      this.scaleValue = Math.fround(v);
    } else {
      const found = [...this.perOptimizer.values()].map((r) => r.foundInf).filter((f): f is boolean => f !== null && !(f instanceof Tensor));
      if (found.length === 0) throw new Error('No inf checks were recorded prior to update().');
      foundInf = found.some(Boolean);
      this.updateScale(foundInf);
      if (foundInf) this.skippedSteps++;
    }
    this.perOptimizer = new Map();
    this.onStep?.({ scale: this.scaleValue, foundInf, skipped: foundInf });
  }

  /** update() on the device: no host read (onStep events are delivered when their values arrive). */
  private updateOnDevice(dev: DeviceState, newScale?: number | Tensor): void {
    const found = [...this.perOptimizer.values()].map((r) => r.foundInf).filter((f): f is Tensor => f instanceof Tensor);
    const pending: { event?: { scale: Tensor; found: Tensor | null } } = {};
    if (newScale !== undefined) {
      noGrad(() =>
        scope(() => {
          let value: Tensor;
          if (typeof newScale === 'number') {
            if (!(newScale > 0)) throw new RangeError(`GradScaler.update: new scale must be positive, got ${newScale}`);
            value = Tensor.fromStorage(Float32Array.of(newScale), [], float32, {}, dev.backend);
          } else {
            if (newScale.backend !== dev.backend) throw new Error(`GradScaler.update: the new scale is on backend '${newScale.backend.name}', the scaler's state on '${dev.backend.name}'`);
            if (newScale.numel !== 1) throw new RangeError(`GradScaler.update: the new scale must hold one value, got shape ${JSON.stringify(newScale.shape)}`);
            value = newScale.reshape([]); // not checked for > 0: that would need a read
          }
          dev.scale.copy_(value);
          if (this.onStep) pending.event = { scale: keep(dev.scale.clone()), found: null };
        }),
      );
    } else {
      if (found.length === 0) throw new Error('No inf checks were recorded prior to update().');
      noGrad(() =>
        scope(() => {
          const combined = found.slice(1).reduce((a, b) => add(a, b), found[0]!);
          const params: AmpUpdateScaleParams = {
            growthFactor: this.growthFactor,
            backoffFactor: this.backoffFactor,
            growthInterval: this.growthInterval,
            hysteresis: this.hysteresis,
            minScale: this.floor,
            maxScale: this.maxScale,
          };
          updateScaleOnDevice(dev, combined, params);
          if (this.onStep) pending.event = { scale: keep(dev.scale.clone()), found: keep(combined.clone()) };
        }),
      );
    }
    // the flags were made for this iteration only: free them now (also without an enclosing scope)
    for (const f of found) f.dispose();
    this.perOptimizer = new Map();
    if (pending.event) this.deliver(pending.event);
  }

  /** Queue an onStep event: its values are read asynchronously, events arrive in update() order. */
  private deliver(event: { scale: Tensor; found: Tensor | null }): void {
    const onStep = this.onStep!;
    const reads = Promise.all([event.scale.data(), event.found ? event.found.data() : Promise.resolve(null)]);
    this.events = this.events.then(async () => {
      try {
        const { 0: s, 1: f } = await reads;
        const foundInf = f !== null && f[0]! !== 0;
        onStep({ scale: s[0]!, foundInf, skipped: foundInf });
      } catch (e) {
        this.eventError ??= e;
      } finally {
        event.scale.dispose();
        event.found?.dispose();
      }
    });
  }

  private throwEventError(): void {
    if (this.eventError === null) return;
    const e = this.eventError;
    this.eventError = null;
    throw e;
  }

  /**
   * Resolves when the onStep events of every earlier update() have been delivered (on backends
   * without synchronous reads they wait for their values); rejects with an error onStep threw.
   */
  async flush(): Promise<void> {
    await this.events;
    this.throwEventError();
  }

  /** Where backing off stops: minScale, and never below SCALE_FLOOR. */
  private get floor(): number {
    return Math.max(this.minScale, SCALE_FLOOR);
  }

  /** PyTorch's _amp_update_scale_, with hysteresis and bounds (float32 arithmetic). */
  private updateScale(foundInf: boolean): void {
    if (foundInf) {
      this.growthTracker = 0;
      this.overflowStreak++;
      if (this.overflowStreak >= this.hysteresis) {
        this.overflowStreak = 0;
        this.scaleValue = Math.max(Math.fround(this.scaleValue * this.backoffFactor), this.floor);
      }
      return;
    }
    this.overflowStreak = 0;
    const successful = this.growthTracker + 1;
    if (successful === this.growthInterval) {
      const grown = Math.fround(this.scaleValue * this.growthFactor);
      if (Number.isFinite(grown)) this.scaleValue = Math.min(grown, this.maxScale);
      this.growthTracker = 0;
    } else this.growthTracker = successful;
  }

  /** The current scale (1 when disabled). On a backend without synchronous reads: use getScaleAsync(). */
  getScale(): number {
    if (!this.enabled) return 1;
    if (this.device) throw this.asyncOnly('getScale', 'await scaler.getScaleAsync()');
    return this.scaleValue;
  }

  /** The current scale, read from the device where it lives there (1 when disabled). */
  async getScaleAsync(): Promise<number> {
    if (!this.enabled) return 1;
    if (!this.device) return this.scaleValue;
    const { 0: scale } = await this.readDevice([this.device.scale]);
    return scale!;
  }

  /** Iterations whose optimizer steps were skipped (inf/NaN gradients) since the scaler was made. */
  getSkippedSteps(): number {
    if (this.device) throw this.asyncOnly('getSkippedSteps', 'await scaler.getSkippedStepsAsync()');
    return this.skippedSteps;
  }

  async getSkippedStepsAsync(): Promise<number> {
    if (!this.device) return this.skippedSteps;
    const { 0: n } = await this.readDevice([this.device.skippedSteps]);
    return n!;
  }

  /**
   * Read 0-d device tensors of the state: copies are taken now (so later in-place updates do not
   * race the read) and kept out of any enclosing scope until the values arrive.
   */
  private async readDevice(tensors: readonly Tensor[]): Promise<number[]> {
    const copies = noGrad(() => tensors.map((t) => keep(t.clone())));
    try {
      return await Promise.all(copies.map(async (c) => (await c.data())[0]!));
    } finally {
      for (const c of copies) c.dispose();
    }
  }
  getGrowthFactor(): number {
    return this.growthFactor;
  }
  setGrowthFactor(v: number): void {
    this.growthFactor = v;
  }
  getBackoffFactor(): number {
    return this.backoffFactor;
  }
  setBackoffFactor(v: number): void {
    this.backoffFactor = v;
  }
  getGrowthInterval(): number {
    return this.growthInterval;
  }
  setGrowthInterval(v: number): void {
    this.growthInterval = v;
  }

  /**
   * { scale, growthFactor, backoffFactor, growthInterval, growthTracker } (+ hysteresis/bounds when set); {} when disabled.
   * On a backend without synchronous reads: use stateDictAsync().
   */
  stateDict(): GradScalerState | Record<string, never> {
    if (!this.enabled) return {};
    if (this.device) throw this.asyncOnly('stateDict', 'await scaler.stateDictAsync()');
    return this.stateWith(this.scaleValue, this.growthTracker, this.overflowStreak);
  }

  /** The same dictionary as stateDict(), with the values read from the device where they live there. */
  async stateDictAsync(): Promise<GradScalerState | Record<string, never>> {
    if (!this.enabled) return {};
    if (!this.device) return this.stateDict();
    const d = this.device;
    const { 0: scale, 1: tracker, 2: streak } = await this.readDevice([d.scale, d.growthTracker, d.overflowStreak]);
    return this.stateWith(scale!, tracker!, streak!);
  }

  private stateWith(scale: number, growthTracker: number, overflowStreak: number): GradScalerState {
    const s: GradScalerState = {
      scale,
      growthFactor: this.growthFactor,
      backoffFactor: this.backoffFactor,
      growthInterval: this.growthInterval,
      growthTracker,
    };
    if (this.hysteresis !== 1) Object.assign(s, { hysteresis: this.hysteresis, overflowStreak });
    if (this.minScale !== 0) s.minScale = this.minScale;
    if (this.maxScale !== Infinity) s.maxScale = this.maxScale;
    return s;
  }

  loadStateDict(state: Partial<GradScalerState>): void {
    if (!this.enabled) return;
    if (Object.keys(state).length === 0) {
      throw new Error('The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler.');
    }
    for (const key of ['scale', 'growthFactor', 'backoffFactor', 'growthInterval', 'growthTracker'] as const) {
      if (typeof state[key] !== 'number') throw new TypeError(`GradScaler.loadStateDict: missing or non-numeric '${key}'`);
    }
    this.scaleValue = Math.fround(state.scale!);
    this.growthFactor = state.growthFactor!;
    this.backoffFactor = state.backoffFactor!;
    this.growthInterval = state.growthInterval!;
    this.growthTracker = state.growthTracker!;
    if (state.hysteresis !== undefined) this.hysteresis = state.hysteresis;
    if (state.overflowStreak !== undefined) this.overflowStreak = state.overflowStreak;
    if (state.minScale !== undefined) this.minScale = state.minScale;
    if (state.maxScale !== undefined) this.maxScale = state.maxScale;
    const d = this.device;
    if (d) {
      // writes into fresh buffers, then copies on the device (ordered after the queued work)
      noGrad(() =>
        scope(() => {
          d.scale.copy_(Tensor.fromStorage(Float32Array.of(this.scaleValue), [], float32, {}, d.backend));
          d.growthTracker.copy_(Tensor.fromStorage(Int32Array.of(this.growthTracker), [], int32, {}, d.backend));
          d.overflowStreak.copy_(Tensor.fromStorage(Int32Array.of(this.overflowStreak), [], int32, {}, d.backend));
        }),
      );
    }
  }
}

/** The optimizer's gradients, refusing float16 ones (they mean the model has no float32 master weights). */
function gradsOf(opt: OptimizerLike): Tensor[] {
  // built by push, not flatMap/map/filter: packed in every V8 tier (src/shape/packed.ts)
  // and by index: a for-of allocates an iterator and a result per element until V8 compiles this
  const grads: Tensor[] = [];
  const groups = opt.paramGroups;
  for (let i = 0; i < groups.length; i++) {
    const params = groups[i]!.params;
    for (let j = 0; j < params.length; j++) {
      const g = params[j]!.grad;
      if (g !== null) grads.push(g);
    }
  }
  for (let i = 0; i < grads.length; i++) {
    if (grads[i]!.dt === float16) {
      throw new Error(
        'Attempting to unscale FP16 gradients. The optimizer holds float16 parameters; keep float32 weights under autocast, or use mx.amp.masterWeights(model, optimizer) for a float16 model.',
      );
    }
  }
  return grads;
}

/**
 * unscale_ on the device: every gradient multiplied by 1/scale (float32, rounded once into the
 * gradient's dtype) in place, and a 0-d float32 flag, 1 when any element was inf/NaN: one
 * multi-tensor `ampUnscale` kernel call for all of them, or the same with ops where the backend
 * lacks it. The flag lives in the enclosing scope (the iteration's) until update() frees it; null
 * without gradients.
 */
function unscaleOnDevice(grads: readonly Tensor[], dev: DeviceState): Tensor | null {
  if (grads.length === 0) return null;
  return noGrad(() =>
    scope(() => {
      const invScale = reciprocal(dev.scale); // 1/scale in float32: what the host path computes in float64 and rounds
      const found = Tensor.empty([], float32, dev.backend);
      found.zero_();
      for (const g of grads) {
        if (g.backend !== dev.backend) throw new Error(`GradScaler.unscale_: a gradient is on backend '${g.backend.name}', the scaler's state on '${dev.backend.name}'`);
        g.assertAlive('GradScaler.unscale_');
      }
      const live = grads.filter((g) => g.numel > 0);
      if (live.length > 0 && dev.backend.hasKernel('ampUnscale')) {
        // one multi-tensor call (PyTorch's foreach kernel); the backend splits it as it must
        scaleInPlaceFindingNonFinite(live, invScale, found);
        return found;
      }
      let nonFinite: Tensor | null = null;
      for (const g of live) {
        const bad = logicalNot(isfinite(mean(g)));
        nonFinite = nonFinite ? logicalOr(nonFinite, bad) : bad;
        g.copy_(mul(castTo(g, g.dt.isHalf ? float32 : g.dt), invScale));
      }
      if (nonFinite) found.copy_(nonFinite);
      return found;
    }),
  );
}

/**
 * The scale update on the device, and the skipped-iterations count: the `ampUpdateScale` kernel in
 * place, or the same rule with ops (where()) on a backend without it. For those the factors and
 * bounds are applied as float32 numbers: the same results for float32-representable factors (the
 * defaults 2 and 0.5).
 */
function updateScaleOnDevice(dev: DeviceState, foundInf: Tensor, p: AmpUpdateScaleParams): void {
  const { scale, growthTracker: tracker, overflowStreak: streak } = dev;
  if (dev.backend.hasKernel('ampUpdateScale')) {
    // the skipped-iterations counter rides along (countSkipped)
    const state = mapPacked([scale, tracker, streak, dev.skippedSteps], kernelView);
    dev.backend.run('ampUpdateScale', [...state, kernelView(foundInf)], state, { ...p, countSkipped: true });
    return;
  }
  const found = ne(foundInf, 0);
  dev.skippedSteps.copy_(add(dev.skippedSteps, found));
  const streak1 = where(found, add(streak, 1), 0);
  const backOff = logicalAnd(found, ge(streak1, p.hysteresis));
  const t1 = add(tracker, 1);
  const growNow = logicalAnd(logicalNot(found), eq(t1, p.growthInterval));
  const grown = mul(scale, p.growthFactor);
  const grow = logicalAnd(growNow, isfinite(grown));
  const newScale = where(backOff, maximum(mul(scale, p.backoffFactor), p.minScale), where(grow, minimum(grown, p.maxScale), scale));
  const newTracker = where(logicalOr(found, growNow), 0, t1);
  const newStreak = where(backOff, 0, streak1);
  scale.copy_(newScale);
  tracker.copy_(newTracker);
  streak.copy_(newStreak);
}

/**
 * Multiply every gradient of the optimizer by invScale in place (float32 arithmetic) and report
 * whether any was inf/NaN. float16 gradients are refused: they mean the model has no float32 master weights.
 */
function unscaleGrads(opt: OptimizerLike, invScale: number): boolean | null {
  const grads = gradsOf(opt);
  if (grads.length === 0) return null;
  return noGrad(() =>
    scope(() => {
      const live = grads.filter((g) => g.numel > 0);
      const backend = live[0]?.backend;
      if (backend && live.every((g) => g.backend === backend) && (backend.nativeKernel?.('ampUnscale') ?? false)) {
        // a native multi-tensor kernel (wasm): one call for the whole list, the same values as the ops below
        const inv = Tensor.empty([], float32, backend).fill_(invScale);
        const found = Tensor.empty([], float32, backend).zero_();
        scaleInPlaceFindingNonFinite(live, inv, found);
        return found.dataSync()[0]! > 0;
      }
      // mean(g) accumulates in float64 and divides before rounding, so it is finite exactly when every
      // element is (|mean| <= max |g|; NaN and Inf propagate): one reduction per gradient, not three
      // elementwise passes.
      let nonFinite: Tensor | null = null;
      for (const g of grads) {
        if (g.numel === 0) continue;
        const bad = logicalNot(isfinite(mean(g)));
        nonFinite = nonFinite ? logicalOr(nonFinite, bad) : bad;
        g.copy_(mul(castTo(g, g.dt.isHalf ? float32 : g.dt), invScale));
      }
      return nonFinite !== null && nonFinite.dataSync()[0]! > 0;
    }),
  );
}
