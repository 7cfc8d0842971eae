/**
 * Learning-rate schedulers, PyTorch 1.13's (torch/optim/lr_scheduler.py) in camelCase.
 *
 * A scheduler mutates `group.lr` of its optimizer's parameter groups. On construction it stores each
 * group's starting rate as `group.initialLr` (kept if already there, as PyTorch's setdefault) and
 * performs the initial step (`lastEpoch` 0). Call `step()` after `optimizer.step()`: once per epoch
 * (StepLR, CosineAnnealingLR, LinearLR, SequentialLR of those) or once per batch (OneCycleLR).
 *
 * `step()` uses PyTorch's chainable (recursive) form from the current `group.lr`; `step(epoch)` jumps
 * to an epoch with the closed form where there is one (PyTorch's deprecated `step(epoch)`, used by
 * SequentialLR at its milestones). The values are those PyTorch computes, operation for operation.
 *
 * `stateDict()` holds every field but the optimizer (plain numbers, arrays and strings, copied);
 * `loadStateDict()` restores them. The optimizer's own stateDict carries `initialLr` (and OneCycleLR's
 * `maxLr`/`minLr`/momentum bounds) in its parameter groups.
 */
import { Optimizer } from './optimizer.js';

type Group = Record<string, unknown> & { lr: number };

/** An optimizer's parameter groups as the schedulers see them (extra keys allowed). */
function groupsOf(optimizer: Optimizer<object>): Group[] {
  return optimizer.paramGroups as unknown as Group[];
}

function num(group: Group, key: string): number {
  const v = group[key];
  if (typeof v !== 'number') throw new TypeError(`lr scheduler: parameter group has no numeric '${key}'`);
  return v;
}

/** Python's `a % b` (the sign of b). */
const pyMod = (a: number, b: number): number => ((a % b) + b) % b;

function checkNonNegInt(name: string, what: string, v: number, min = 0): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name}: expected ${what} to be an integer >= ${min}, got ${v}`);
}

export interface SchedulerOptions {
  /** Index of the last epoch when resuming; -1 (default) starts from the optimizer's current lr. */
  lastEpoch?: number;
}

export abstract class LRScheduler {
  readonly optimizer: Optimizer<object>;
  /** Each group's `initialLr`. */
  baseLrs: number[];
  lastEpoch: number;
  /** Number of step() calls, the initial one included (PyTorch's `_step_count`). */
  stepCount = 0;
  lastLr: number[] = [];

  constructor(optimizer: Optimizer<object>, lastEpoch = -1) {
    if (!(optimizer instanceof Optimizer)) throw new TypeError(`${new.target.name}: ${String(optimizer)} is not an Optimizer`);
    if (!Number.isInteger(lastEpoch) || lastEpoch < -1) throw new RangeError(`${new.target.name}: lastEpoch must be an integer >= -1, got ${lastEpoch}`);
    this.optimizer = optimizer;
    const groups = groupsOf(optimizer);
    if (lastEpoch === -1) {
      for (const g of groups) if (g['initialLr'] === undefined) g['initialLr'] = g.lr;
    } else {
      groups.forEach((g, i) => {
        if (g['initialLr'] === undefined) {
          throw new RangeError(`${new.target.name}: parameter group ${i} has no 'initialLr' while resuming (lastEpoch ${lastEpoch}); load the optimizer's stateDict first`);
        }
      });
    }
    this.baseLrs = groups.map((g) => num(g, 'initialLr'));
    this.lastEpoch = lastEpoch;
  }

  /** The chainable form: the next lrs from the groups' current lr (PyTorch's get_lr). */
  protected abstract getLr(): number[];

  /** The closed form at `lastEpoch`, where the scheduler has one. */
  protected closedFormLr(): number[] | null {
    return null;
  }

  /** Reset the step count and take the first step (run by constructors; by SequentialLR on its first scheduler). */
  initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /**
   * Advance one epoch (or batch), setting every group's lr. With `epoch`, jump to that epoch instead
   * using the closed form where there is one (PyTorch's deprecated step(epoch)).
   */
  step(epoch?: number): void {
    this.stepCount += 1;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch += 1;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr() ?? this.getLr();
    }
    const groups = groupsOf(this.optimizer);
    groups.forEach((g, i) => (g.lr = values[i]!));
    this.lastLr = groups.map((g) => g.lr);
  }

  /** The lrs set by the last step, one per parameter group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Fields that stateDict leaves out (the optimizer; SequentialLR's schedulers, saved by their own stateDict). */
  protected excludedKeys(): readonly string[] {
    return ['optimizer'];
  }

  /** Every field but the optimizer, copied. */
  stateDict(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const excluded = this.excludedKeys();
    for (const [k, v] of Object.entries(this)) {
      if (excluded.includes(k) || typeof v === 'function') continue;
      out[k] = structuredClone(v);
    }
    return out;
  }

  loadStateDict(dict: Record<string, unknown>): void {
    const excluded = this.excludedKeys();
    const rest = Object.fromEntries(Object.entries(dict).filter(([k]) => !excluded.includes(k)));
    Object.assign(this, structuredClone(rest));
  }

  protected get groups(): Group[] {
    return groupsOf(this.optimizer);
  }
}

/* ----------------------------------------------------------------------------- StepLR */

/** Multiply the lr by `gamma` every `stepSize` epochs. */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;

  constructor(optimizer: Optimizer<object>, stepSize: number, options: SchedulerOptions & { gamma?: number } = {}) {
    super(optimizer, options.lastEpoch);
    checkNonNegInt('StepLR', 'stepSize', stepSize, 1);
    this.stepSize = stepSize;
    this.gamma = options.gamma ?? 0.1;
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
}

/* ------------------------------------------------------------------ CosineAnnealingLR */

/** Cosine annealing from the initial lr down to `etaMin` over `tMax` epochs (and back up after, as PyTorch). */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;

  constructor(optimizer: Optimizer<object>, tMax: number, options: SchedulerOptions & { etaMin?: number } = {}) {
    super(optimizer, options.lastEpoch);
    checkNonNegInt('CosineAnnealingLR', 'tMax', tMax, 1);
    this.tMax = tMax;
    this.etaMin = options.etaMin ?? 0;
    this.initialStep();
  }

  protected getLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    if (e === 0) return this.groups.map((g) => g.lr);
    if (this.stepCount === 1 && e > 0) {
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    }
    if (pyMod(e - 1 - T, 2 * T) === 0) {
      return this.groups.map((g, i) => g.lr + ((this.baseLrs[i]! - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    }
    return this.groups.map((g) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (g.lr - etaMin) + etaMin);
  }

  protected override closedFormLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((Math.PI * e) / T))) / 2);
  }
}

/* ----------------------------------------------------------------------------- LinearLR */

export interface LinearLROptions extends SchedulerOptions {
  /** Factor of the initial lr at epoch 0, in (0, 1]. Default 1/3. */
  startFactor?: number;
  /** Factor reached after `totalIters` epochs, in [0, 1]. Default 1. */
  endFactor?: number;
  /** Default 5. */
  totalIters?: number;
}

/** Linear change of the lr's factor from `startFactor` to `endFactor` over `totalIters` epochs (linear warm-up). */
export class LinearLR extends LRScheduler {
  startFactor: number;
  endFactor: number;
  totalIters: number;

  constructor(optimizer: Optimizer<object>, options: LinearLROptions = {}) {
    super(optimizer, options.lastEpoch);
    const startFactor = options.startFactor ?? 1 / 3;
    const endFactor = options.endFactor ?? 1;
    const totalIters = options.totalIters ?? 5;
    if (!(startFactor > 0 && startFactor <= 1)) throw new RangeError(`LinearLR: startFactor expected to be greater than 0 and at most 1, got ${startFactor}`);
    if (!(endFactor >= 0 && endFactor <= 1)) throw new RangeError(`LinearLR: endFactor expected to be between 0 and 1, got ${endFactor}`);
    checkNonNegInt('LinearLR', 'totalIters', totalIters, 1);
    this.startFactor = startFactor;
    this.endFactor = endFactor;
    this.totalIters = totalIters;
    this.initialStep();
  }

  protected getLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    if (e === 0) return this.groups.map((g) => g.lr * s);
    if (e > n) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * (1 + (f - s) / (n * s + (e - 1) * (f - s))));
  }

  protected override closedFormLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((f - s) * Math.min(n, e)) / n));
  }
}

/* ------------------------------------------------------------------------- SequentialLR */

/**
 * Run `schedulers` one after another, switching at the `milestones` epochs (one fewer than
 * schedulers), e.g. LinearLR warm-up for 5 epochs, then CosineAnnealingLR:
 *
 *   const warm = new LinearLR(opt, { startFactor: 0.1, totalIters: 5 });
 *   const cos = new CosineAnnealingLR(opt, 95);
 *   const sched = new SequentialLR(opt, [warm, cos], [5]);
 */
export class SequentialLR extends LRScheduler {
  schedulers: LRScheduler[];
  milestones: number[];

  constructor(optimizer: Optimizer<object>, schedulers: readonly LRScheduler[], milestones: readonly number[], options: SchedulerOptions = {}) {
    const lastEpoch = options.lastEpoch ?? -1;
    super(optimizer, lastEpoch);
    if (schedulers.length === 0) throw new RangeError('SequentialLR: expected at least one scheduler');
    schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) {
        throw new RangeError(`SequentialLR: expects all schedulers to belong to the same optimizer, but the scheduler at index ${i} has a different one`);
      }
    });
    if (milestones.length !== schedulers.length - 1) {
      throw new RangeError(`SequentialLR: expects one milestone fewer than schedulers, got ${schedulers.length} schedulers and ${milestones.length} milestones`);
    }
    milestones.forEach((m, i) => {
      if (!Number.isInteger(m) || (i > 0 && m < milestones[i - 1]!)) throw new RangeError(`SequentialLR: milestones must be increasing integers, got ${JSON.stringify(milestones)}`);
    });
    this.schedulers = [...schedulers];
    this.milestones = [...milestones];
    this.lastEpoch = lastEpoch + 1;
    // Reset the lrs to their initial values, undo the initial step of every scheduler, and take it
    // again for the first one only.
    for (const g of this.groups) g.lr = num(g, 'initialLr');
    for (const s of this.schedulers) s.lastEpoch -= 1;
    this.schedulers[0]!.initialStep();
    this.lastLr = this.schedulers[0]!.getLastLr();
  }

  protected getLr(): number[] {
    return this.groups.map((g) => g.lr);
  }

  override step(): void {
    this.stepCount += 1;
    this.lastEpoch += 1;
    let idx = 0;
    while (idx < this.milestones.length && this.milestones[idx]! <= this.lastEpoch) idx++; // bisect_right
    const scheduler = this.schedulers[idx]!;
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) scheduler.step(0);
    else scheduler.step();
    this.lastLr = scheduler.getLastLr();
  }

  protected override excludedKeys(): readonly string[] {
    return ['optimizer', 'schedulers'];
  }

  override stateDict(): Record<string, unknown> {
    return { ...super.stateDict(), schedulers: this.schedulers.map((s) => s.stateDict()) };
  }

  override loadStateDict(dict: Record<string, unknown>): void {
    super.loadStateDict(dict);
    const list = dict['schedulers'] as Record<string, unknown>[] | undefined;
    if (list) {
      if (list.length !== this.schedulers.length) throw new RangeError(`SequentialLR.loadStateDict: state has ${list.length} schedulers, this one ${this.schedulers.length}`);
      list.forEach((s, i) => this.schedulers[i]!.loadStateDict(s));
    }
  }
}

/* --------------------------------------------------------------------------- OneCycleLR */

export interface OneCycleLROptions extends SchedulerOptions {
  /** Total number of steps of the cycle; or give `epochs` and `stepsPerEpoch`. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  /** Fraction of the cycle spent increasing the lr. Default 0.3. */
  pctStart?: number;
  /** Default 'cos'. */
  annealStrategy?: 'cos' | 'linear';
  /** Cycle momentum (SGD/RMSprop `momentum`, Adam's beta1) inversely to the lr. Default true. */
  cycleMomentum?: boolean;
  /** Default 0.85 (per group with an array). */
  baseMomentum?: number | readonly number[];
  /** Default 0.95 (per group with an array). */
  maxMomentum?: number | readonly number[];
  /** initialLr = maxLr / divFactor. Default 25. */
  divFactor?: number;
  /** minLr = initialLr / finalDivFactor. Default 1e4. */
  finalDivFactor?: number;
  /** Three phases (up, back down to initialLr, then down to minLr) as fastai; default false. */
  threePhase?: boolean;
}

interface Phase {
  endStep: number;
  startLr: string;
  endLr: string;
  startMomentum: string;
  endMomentum: string;
}

/**
 * The 1cycle policy: the lr rises from maxLr/divFactor to maxLr over pctStart of the steps, then
 * anneals to initialLr/finalDivFactor (momentum moves the other way). Step once per batch; stepping
 * more than `totalSteps` times is an error. Not chainable.
 */
export class OneCycleLR extends LRScheduler {
  totalSteps: number;
  schedulePhases: Phase[];
  annealStrategy: 'cos' | 'linear';
  cycleMomentum: boolean;
  useBeta1: boolean;

  constructor(optimizer: Optimizer<object>, maxLr: number | readonly number[], options: OneCycleLROptions = {}) {
    const lastEpoch = options.lastEpoch ?? -1;
    // PyTorch sets the groups' initial/max/min lr before the base constructor reads initialLr.
    OneCycleLR.prepareGroups(optimizer, maxLr, options, lastEpoch);
    super(optimizer, lastEpoch);
    const { totalSteps, epochs, stepsPerEpoch } = options;
    if (totalSteps !== undefined) this.totalSteps = totalSteps;
    else this.totalSteps = epochs! * stepsPerEpoch!;
    const pctStart = options.pctStart ?? 0.3;
    const n = this.totalSteps;
    this.schedulePhases = options.threePhase
      ? [
          { endStep: pctStart * n - 1, startLr: 'initialLr', endLr: 'maxLr', startMomentum: 'maxMomentum', endMomentum: 'baseMomentum' },
          { endStep: 2 * pctStart * n - 2, startLr: 'maxLr', endLr: 'initialLr', startMomentum: 'baseMomentum', endMomentum: 'maxMomentum' },
          { endStep: n - 1, startLr: 'initialLr', endLr: 'minLr', startMomentum: 'maxMomentum', endMomentum: 'maxMomentum' },
        ]
      : [
          { endStep: pctStart * n - 1, startLr: 'initialLr', endLr: 'maxLr', startMomentum: 'maxMomentum', endMomentum: 'baseMomentum' },
          { endStep: n - 1, startLr: 'maxLr', endLr: 'minLr', startMomentum: 'baseMomentum', endMomentum: 'maxMomentum' },
        ];
    this.annealStrategy = options.annealStrategy ?? 'cos';
    this.cycleMomentum = options.cycleMomentum ?? true;
    this.useBeta1 = 'betas' in optimizer.defaults;
    this.initialStep();
  }

  /** Validation and the per-group keys (initialLr, maxLr, minLr, maxMomentum, baseMomentum). */
  private static prepareGroups(optimizer: Optimizer<object>, maxLr: number | readonly number[], o: OneCycleLROptions, lastEpoch: number): void {
    if (!(optimizer instanceof Optimizer)) throw new TypeError(`OneCycleLR: ${String(optimizer)} is not an Optimizer`);
    if (o.totalSteps === undefined && o.epochs === undefined && o.stepsPerEpoch === undefined) {
      throw new RangeError('OneCycleLR: you must define either totalSteps OR (epochs AND stepsPerEpoch)');
    }
    if (o.totalSteps !== undefined) {
      if (!Number.isInteger(o.totalSteps) || o.totalSteps <= 0) throw new RangeError(`OneCycleLR: expected a positive integer totalSteps, got ${o.totalSteps}`);
    } else {
      if (!Number.isInteger(o.epochs) || o.epochs! <= 0) throw new RangeError(`OneCycleLR: expected a positive integer epochs, got ${o.epochs}`);
      if (!Number.isInteger(o.stepsPerEpoch) || o.stepsPerEpoch! <= 0) throw new RangeError(`OneCycleLR: expected a positive integer stepsPerEpoch, got ${o.stepsPerEpoch}`);
    }
    const pct = o.pctStart ?? 0.3;
    if (!(pct >= 0 && pct <= 1)) throw new RangeError(`OneCycleLR: expected pctStart between 0 and 1, got ${pct}`);
    const strategy = o.annealStrategy ?? 'cos';
    if (strategy !== 'cos' && strategy !== 'linear') throw new RangeError(`OneCycleLR: annealStrategy must be 'cos' or 'linear', got '${String(strategy)}'`);
    const groups = groupsOf(optimizer);
    const perGroup = (name: string, v: number | readonly number[]): number[] => {
      if (typeof v === 'number') return groups.map(() => v);
      if (v.length !== groups.length) throw new RangeError(`OneCycleLR: expected ${groups.length} values for ${name}, got ${v.length}`);
      return [...v];
    };
    const maxLrs = perGroup('maxLr', maxLr);
    const divFactor = o.divFactor ?? 25;
    const finalDivFactor = o.finalDivFactor ?? 1e4;
    if (lastEpoch === -1) {
      groups.forEach((g, i) => {
        g['initialLr'] = maxLrs[i]! / divFactor;
        g['maxLr'] = maxLrs[i]!;
        g['minLr'] = (g['initialLr'] as number) / finalDivFactor;
      });
    }
    if (o.cycleMomentum ?? true) {
      const d = optimizer.defaults as Record<string, unknown>;
      if (!('momentum' in d) && !('betas' in d)) throw new RangeError('OneCycleLR: optimizer must support momentum (momentum or betas) with the cycleMomentum option enabled');
      const useBeta1 = 'betas' in d;
      const maxM = perGroup('maxMomentum', o.maxMomentum ?? 0.95);
      const baseM = perGroup('baseMomentum', o.baseMomentum ?? 0.85);
      if (lastEpoch === -1) {
        groups.forEach((g, i) => {
          if (useBeta1) g['betas'] = [maxM[i]!, ...(g['betas'] as number[]).slice(1)];
          else g['momentum'] = maxM[i]!;
          g['maxMomentum'] = maxM[i]!;
          g['baseMomentum'] = baseM[i]!;
        });
      }
    }
  }

  private anneal(start: number, end: number, pct: number): number {
    if (this.annealStrategy === 'cos') {
      const cosOut = Math.cos(Math.PI * pct) + 1;
      return end + ((start - end) / 2.0) * cosOut;
    }
    return (end - start) * pct + start;
  }

  protected getLr(): number[] {
    const stepNum = this.lastEpoch;
    if (stepNum > this.totalSteps) {
      throw new RangeError(`OneCycleLR: tried to step ${stepNum + 1} times. The specified number of total steps is ${this.totalSteps}`);
    }
    const phases = this.schedulePhases;
    return this.groups.map((group) => {
      let startStep = 0;
      let lr = NaN;
      let momentum = NaN;
      for (let i = 0; i < phases.length; i++) {
        const phase = phases[i]!;
        const endStep = phase.endStep;
        if (stepNum <= endStep || i === phases.length - 1) {
          const pct = (stepNum - startStep) / (endStep - startStep);
          lr = this.anneal(num(group, phase.startLr), num(group, phase.endLr), pct);
          if (this.cycleMomentum) momentum = this.anneal(num(group, phase.startMomentum), num(group, phase.endMomentum), pct);
          break;
        }
        startStep = phase.endStep;
      }
      if (this.cycleMomentum) {
        if (this.useBeta1) group['betas'] = [momentum, ...(group['betas'] as number[]).slice(1)];
        else group['momentum'] = momentum;
      }
      return lr;
    });
  }
}
