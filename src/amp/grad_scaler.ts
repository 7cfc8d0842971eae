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
 */
import { float32 } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/mode.js';
import { scope } from '../tensor/scope.js';
import { full } from '../ops/creation.js';
import { mul, isfinite, logicalNot, logicalOr } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import { castTo } from '../ops/util.js';
import type { OptimizerLike } from '../optim/optimizer.js';
import { recentAutocastDtype } from './autocast.js';

export interface GradScalerOptions {
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  growthInterval?: number;
  enabled?: boolean;
  /** Back off only after this many consecutive overflowing steps (DeepSpeed's hysteresis). Default 1. */
  hysteresis?: number;
  /** The scale never goes below this (default: no bound). */
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
  foundInf: boolean | null;
}

let warnedBfloat16 = false;

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
    const s = full([], this.scaleValue, { dtype: float32 });
    const one = (t: Tensor) => mul(t, s);
    return (Array.isArray(outputs) ? outputs.map(one) : one(outputs as Tensor)) as T;
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
    const invScale = Math.fround(1 / this.scaleValue);
    r.foundInf = unscaleGrads(opt, invScale);
    r.stage = Stage.Unscaled;
  }

  /** Unscale (if not done), then run opt.step() unless a gradient is inf/NaN. Returns whether it stepped. */
  step(opt: OptimizerLike): boolean {
    if (!this.enabled) {
      opt.step();
      return true;
    }
    const r = this.record(opt);
    if (r.stage === Stage.Stepped) throw new Error('step() has already been called since the last update().');
    if (r.stage === Stage.Ready) this.unscale_(opt);
    if (r.foundInf === null) throw new Error('No inf checks were recorded for this optimizer.');
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
    let foundInf = false;
    if (newScale !== undefined) {
      const v = typeof newScale === 'number' ? newScale : newScale.dataSync()[0]!;
      if (!(v > 0)) throw new RangeError(`GradScaler.update: new scale must be positive, got ${v}`);
      this.scaleValue = Math.fround(v);
    } else {
      const found = [...this.perOptimizer.values()].map((r) => r.foundInf).filter((f): f is boolean => f !== null);
      if (found.length === 0) throw new Error('No inf checks were recorded prior to update().');
      foundInf = found.some(Boolean);
      this.updateScale(foundInf);
    }
    this.perOptimizer = new Map();
    this.onStep?.({ scale: this.scaleValue, foundInf, skipped: foundInf });
  }

  /** PyTorch's _amp_update_scale_, with hysteresis and bounds (float32 arithmetic). */
  private updateScale(foundInf: boolean): void {
    if (foundInf) {
      this.growthTracker = 0;
      this.overflowStreak++;
      if (this.overflowStreak >= this.hysteresis) {
        this.overflowStreak = 0;
        this.scaleValue = Math.max(Math.fround(this.scaleValue * this.backoffFactor), this.minScale);
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

  getScale(): number {
    return this.enabled ? this.scaleValue : 1;
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

  /** { scale, growthFactor, backoffFactor, growthInterval, growthTracker } (+ hysteresis/bounds when set); {} when disabled. */
  stateDict(): GradScalerState | Record<string, never> {
    if (!this.enabled) return {};
    const s: GradScalerState = {
      scale: this.scaleValue,
      growthFactor: this.growthFactor,
      backoffFactor: this.backoffFactor,
      growthInterval: this.growthInterval,
      growthTracker: this.growthTracker,
    };
    if (this.hysteresis !== 1) Object.assign(s, { hysteresis: this.hysteresis, overflowStreak: this.overflowStreak });
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
  }
}

/**
 * Multiply every gradient of the optimizer by invScale in place (float32 arithmetic) and report
 * whether any was inf/NaN. float16 gradients are refused: they mean the model has no float32 master weights.
 */
function unscaleGrads(opt: OptimizerLike, invScale: number): boolean | null {
  const grads = opt.paramGroups.flatMap((g) => g.params).map((p) => p.grad).filter((g): g is Tensor => g !== null);
  for (const g of grads) {
    if (g.dtype === 'float16') {
      throw new Error(
        'Attempting to unscale FP16 gradients. The optimizer holds float16 parameters; keep float32 weights under autocast, or use mx.amp.masterWeights(model, optimizer) for a float16 model.',
      );
    }
  }
  if (grads.length === 0) return null;
  return noGrad(() =>
    scope(() => {
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
