/**
 * Precision diagnostics: what float16 does to your gradients, which dtype autocast picked for each
 * op, and where an overflow started.
 *
 *   const rec = mx.amp.precisionReport({ model, scaler });
 *   for (...) { ...; scaler.scale(loss).backward(); await rec.step(); scaler.step(opt); scaler.update(); }
 *   await rec.save('precision.json');  rec.close();
 *
 * Per parameter it histograms every gradient it sees (log2 of |g|) and counts the fractions that
 * are zero, would be subnormal in the checked format, would underflow to zero (|g| < 2^-24 for
 * float16) or overflow (|g| > 65504), both at scale 1 (the true gradient) and at the current loss
 * scale: the measurement behind Micikevicius et al. (2018)'s case for loss scaling.
 */
import { writeFile, rename } from 'node:fs/promises';
import type { DTypeName } from '../dtype/dtype.js';
import { dtypeOf } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { addOpObserver } from '../ops/dispatch.js';
import { currentBackwardNode } from '../autograd/engine.js';
import { isGradEnabled } from '../autograd/mode.js';
import type { GradNode } from '../autograd/node.js';
import { addAutocastListener } from './autocast.js';
import type { GradScaler } from './grad_scaler.js';

/** The module surface the recorder needs (mx.nn.Module has it). */
export interface ModuleLike {
  namedParameters(): Iterable<[string, Tensor]>;
  namedModules?(): Iterable<[string, HookableModule]>;
}
interface HookableModule {
  registerForwardPreHook(fn: (...args: any[]) => unknown): { remove(): void };
  registerForwardHook(fn: (...args: any[]) => unknown): { remove(): void };
}

export interface PrecisionReportOptions {
  model?: ModuleLike;
  /** Named parameters to watch (default: the model's). */
  parameters?: Iterable<[string, Tensor]>;
  /** Observed gradients are divided by its scale to get the true ones. */
  scaler?: GradScaler;
  /** The 16-bit format whose range is checked (default float16). */
  format?: 'float16' | 'bfloat16';
  /** Look for the first op whose output is non-finite (reads every op's output: slow). Default true. */
  findOverflow?: boolean;
}

export interface RangeFractions {
  /** Observed values that were already inf/NaN (an overflowing step); excluded from the other classes at scale 1. */
  nonFinite: number;
  zero: number;
  subnormal: number;
  underflow: number;
  overflow: number;
}

export interface ParameterReport {
  dtype: DTypeName;
  numel: number;
  observations: number;
  atScale1: RangeFractions;
  atCurrentScale: RangeFractions;
  /** floor(log2 |g|) of the true nonzero gradients -> count. */
  log2Histogram: Record<string, number>;
}

export interface OpDtypeReport {
  op: string;
  received: DTypeName[];
  ran: DTypeName[];
  calls: number;
}

export interface OverflowReport {
  /** 0-based index of the iteration (calls to step() before it). */
  step: number;
  phase: 'forward' | 'backward';
  /** The op that produced the first non-finite value (in backward: the kernel, and its forward op). */
  op: string;
  forwardOp: string | null;
  modulePath: string | null;
  dtype: DTypeName;
}

export interface PrecisionReport {
  format: 'float16' | 'bfloat16';
  steps: number;
  scale: number;
  limits: { max: number; smallestNormal: number; smallestSubnormal: number };
  parameters: Record<string, ParameterReport>;
  ops: OpDtypeReport[];
  overflows: OverflowReport[];
}

interface Counts {
  total: number;
  nonFinite: number;
  zero: number;
  subnormal: number;
  underflow: number;
  overflow: number;
}

const emptyCounts = (): Counts => ({ total: 0, nonFinite: 0, zero: 0, subnormal: 0, underflow: 0, overflow: 0 });

export class PrecisionRecorder {
  private readonly format: 'float16' | 'bfloat16';
  private readonly limits: { max: number; smallestNormal: number; smallestSubnormal: number };
  private readonly params: [string, Tensor][];
  private readonly pending: { name: string; grad: Tensor; scale: number }[] = [];
  private readonly stats = new Map<string, { dtype: DTypeName; numel: number; observations: number; at1: Counts; atS: Counts; hist: Map<number, number> }>();
  private readonly ops = new Map<string, OpDtypeReport>();
  private readonly overflows: OverflowReport[] = [];
  private readonly nodePaths = new WeakMap<GradNode, string>();
  private readonly pathStack: string[] = [];
  private readonly cleanups: (() => void)[] = [];
  private steps = 0;
  private overflowSeenThisStep = false;

  constructor(private readonly options: PrecisionReportOptions = {}) {
    this.format = options.format ?? 'float16';
    const f = dtypeOf(this.format).finfo!;
    this.limits = { max: f.max, smallestNormal: f.smallestNormal, smallestSubnormal: f.smallestSubnormal };
    this.params = [...(options.parameters ?? options.model?.namedParameters() ?? [])];
    if (this.params.length === 0) throw new Error('precisionReport: give a model or named parameters to watch');
    // The statistics, the loss scale and the overflow search are read on the host as they happen.
    const async = this.params.find(([, p]) => !p.backend.readSync);
    if (async) throw new Error(`precisionReport: needs a backend with synchronous reads (reference, wasm); '${async[1].backend.name}' has none`);

    for (const [name, p] of this.params) {
      const handle = p.registerHook((g) => {
        this.pending.push({ name, grad: keep(g.clone()), scale: this.options.scaler?.getScale() ?? 1 });
      });
      this.cleanups.push(() => handle.remove());
    }
    this.cleanups.push(addAutocastListener((op, received, ran) => this.recordAutocast(op, received, ran)));
    if (options.findOverflow ?? true) this.cleanups.push(addOpObserver((op, _inputs, output) => this.checkOutput(op, output)));
    for (const [path, m] of options.model?.namedModules?.() ?? []) {
      if (!path) continue;
      const pre = m.registerForwardPreHook(() => void this.pathStack.push(path));
      const post = m.registerForwardHook(() => void this.pathStack.pop());
      this.cleanups.push(() => pre.remove(), () => post.remove());
    }
  }

  private recordAutocast(op: string, received: readonly Tensor[], ran: readonly Tensor[]): void {
    const r = received.map((t) => t.dtype);
    const d = ran.map((t) => t.dtype);
    const key = `${op}(${r.join(',')})->(${d.join(',')})`;
    const entry = this.ops.get(key);
    if (entry) entry.calls++;
    else this.ops.set(key, { op, received: r, ran: d, calls: 1 });
  }

  private checkOutput(op: string, output: Tensor): void {
    const node = currentBackwardNode();
    const path = this.pathStack[this.pathStack.length - 1] ?? null;
    if (!node && output.gradFn && path) this.nodePaths.set(output.gradFn, path);
    // Only the model's own forward (grad mode on) and backward: not optimizer or scaler arithmetic.
    if (!node && !isGradEnabled()) return;
    if (this.overflowSeenThisStep || !output.dt.isFloating || !output.backend.readSync) return;
    const values = output.dataSync();
    let finite = true;
    for (let i = 0; i < values.length && finite; i++) finite = Number.isFinite(values[i]!);
    if (finite) return;
    this.overflowSeenThisStep = true;
    this.overflows.push({
      step: this.steps,
      phase: node ? 'backward' : 'forward',
      op,
      forwardOp: node ? node.op : null,
      modulePath: node ? (this.nodePaths.get(node) ?? null) : path,
      dtype: output.dtype,
    });
  }

  /** End of an iteration: fold the gradients seen since the last call into the statistics. */
  async step(): Promise<void> {
    const batch = this.pending.splice(0);
    for (const { name, grad, scale } of batch) {
      const values = await grad.data();
      const entry = this.statsFor(name, grad);
      entry.observations++;
      for (let i = 0; i < values.length; i++) {
        const observed = values[i]!;
        const trueValue = observed / scale;
        this.count(entry.at1, trueValue);
        this.count(entry.atS, observed);
        if (trueValue !== 0 && Number.isFinite(trueValue)) {
          const bucket = Math.floor(Math.log2(Math.abs(trueValue)));
          entry.hist.set(bucket, (entry.hist.get(bucket) ?? 0) + 1);
        }
      }
      grad.dispose();
    }
    this.steps++;
    this.overflowSeenThisStep = false;
  }

  private statsFor(name: string, grad: Tensor) {
    let s = this.stats.get(name);
    if (!s) {
      s = { dtype: grad.dtype, numel: grad.numel, observations: 0, at1: emptyCounts(), atS: emptyCounts(), hist: new Map() };
      this.stats.set(name, s);
    }
    return s;
  }

  private count(c: Counts, v: number): void {
    c.total++;
    const a = Math.abs(v);
    if (!Number.isFinite(v)) c.nonFinite++;
    else if (a === 0) c.zero++;
    else if (a > this.limits.max) c.overflow++;
    else if (a < this.limits.smallestSubnormal) c.underflow++;
    else if (a < this.limits.smallestNormal) c.subnormal++;
  }

  report(): PrecisionReport {
    const frac = (c: Counts): RangeFractions => {
      const n = Math.max(c.total, 1);
      return { nonFinite: c.nonFinite / n, zero: c.zero / n, subnormal: c.subnormal / n, underflow: c.underflow / n, overflow: c.overflow / n };
    };
    const parameters: Record<string, ParameterReport> = {};
    for (const [name, s] of this.stats) {
      const hist = [...s.hist.entries()].sort((a, b) => a[0] - b[0]);
      parameters[name] = {
        dtype: s.dtype,
        numel: s.numel,
        observations: s.observations,
        atScale1: frac(s.at1),
        atCurrentScale: frac(s.atS),
        log2Histogram: Object.fromEntries(hist.map(([k, v]) => [String(k), v])),
      };
    }
    return {
      format: this.format,
      steps: this.steps,
      scale: this.options.scaler?.getScale() ?? 1,
      limits: this.limits,
      parameters,
      ops: [...this.ops.values()],
      overflows: [...this.overflows],
    };
  }

  toJSON(): PrecisionReport {
    return this.report();
  }

  /** Write the report as JSON, atomically (temporary file, then rename). */
  async save(path: string): Promise<void> {
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(this.report(), null, 2));
    await rename(tmp, path);
  }

  /** Remove every hook and observer. */
  close(): void {
    for (const c of this.cleanups.splice(0)) c();
    for (const p of this.pending.splice(0)) p.grad.dispose();
  }
}

export function precisionReport(options: PrecisionReportOptions): PrecisionRecorder {
  return new PrecisionRecorder(options);
}
