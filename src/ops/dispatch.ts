/**
 * `apply`: the one path every op takes. Autocast, then input preparation, then either the
 * composite definition, a view, or a backend kernel; then the autograd node.
 */
import type { KernelTensor } from '../backend/backend.js';
import type { KernelName, KernelParams } from '../backend/kernels.js';
import type { DType } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { isGradEnabled, noGrad } from '../autograd/mode.js';
import { GradNode } from '../autograd/node.js';
import { getOp, kernelOf, type OpDef } from './registry.js';
import { mapPacked } from '../shape/packed.js';

/** Set by the amp module while an autocast region is active. */
export type AutocastHook = (def: OpDef, inputs: readonly Tensor[]) => readonly Tensor[];
let autocastHook: AutocastHook | null = null;
/** Told, after a primitive op whose inputs the hook cast has run, which inputs it ran on (autocast frees casts it need not keep). */
export type AutocastDone = (def: OpDef, ran: readonly Tensor[]) => void;
let autocastDone: AutocastDone | null = null;

export function setAutocastHook(hook: AutocastHook | null, done: AutocastDone | null = null): AutocastHook | null {
  const prev = autocastHook;
  autocastHook = hook;
  autocastDone = done;
  return prev;
}

/**
 * Run `fn` with autocast suspended: inside an autocast-cast composite op (PyTorch casts once at the
 * op's entry, not again inside it) and during backward (backward ops run in their forward op's dtype).
 */
export function withoutAutocast<T>(fn: () => T): T {
  if (!autocastHook) return fn();
  const prev = autocastHook;
  autocastHook = null;
  try {
    return fn();
  } finally {
    autocastHook = prev;
  }
}

/** Observers of every primitive op (precision diagnostics). */
export type OpObserver = (op: string, inputs: readonly Tensor[], output: Tensor) => void;
const observers = new Set<OpObserver>();
export function addOpObserver(fn: OpObserver): () => void {
  observers.add(fn);
  return () => observers.delete(fn);
}

export function kernelView(t: Tensor): KernelTensor {
  return { buffer: t.storage.buffer, dtype: t.dt, shape: t.shape, strides: t.strides, offset: t.offset };
}

/*
 * The per-op path loops by index: a for-of loop (and some/every with a closure) allocates an
 * iterator and a result object per element until TurboFan has compiled the function, which on a
 * fresh process is most of the first few hundred steps (bench/README.md, "warm-up").
 */

function anyRequiresGrad(inputs: readonly Tensor[]): boolean {
  for (let i = 0; i < inputs.length; i++) if (inputs[i]!.requiresGrad) return true;
  return false;
}

function assertAllAlive(inputs: readonly Tensor[], op: string): void {
  for (let i = 0; i < inputs.length; i++) inputs[i]!.assertAlive(op);
}

function record(def: OpDef, inputs: readonly Tensor[], output: Tensor, params: unknown): void {
  if (!def.backward || !isGradEnabled() || !output.dt.isFloating) return;
  if (!anyRequiresGrad(inputs)) return;
  const backward = def.backward;
  output.requiresGrad = true;
  const slice = def.gradientSlice ? def.gradientSlice(params as never) : null;
  output.gradFn = new GradNode(def.name, inputs, (g) => backward(g, { inputs, output, params }), slice);
}

export function apply<P extends object>(name: string, inputs: readonly Tensor[], params: P = {} as P): Tensor {
  const def = getOp(name) as OpDef<P>;
  assertAllAlive(inputs, name);
  const autocasting = autocastHook !== null && def.autocast !== 'none';
  let xs: readonly Tensor[] = autocasting ? autocastHook!(def, inputs) : inputs;
  if (def.prepare) xs = def.prepare(xs, params);
  if (def.compose) {
    const compose = def.compose;
    const run = () => (autocastHook && def.autocast !== 'none' ? withoutAutocast(() => compose(xs, params)) : compose(xs, params));
    if (!def.backward) return run();
    // a composite with its own gradient (a recurrent layer's backpropagation through time): the
    // definition runs without recording, then one node holds the explicit backward rule
    const out = noGrad(run);
    record(def, xs, out, params); // (observers have seen the definition's ops)
    return out;
  }

  const backend = xs[0]?.backend;
  for (let i = 1; i < xs.length; i++) {
    const x = xs[i]!;
    if (x.backend !== backend) throw new Error(`${name}: tensors are on different backends (${backend?.name} and ${x.backend.name})`);
  }

  let out: Tensor;
  if (def.view) {
    const x = xs[0]!;
    const g = def.view(x, params);
    out = new Tensor(x.storage, g.shape, g.strides, g.offset);
  } else {
    const { shape, dtype } = def.infer!(xs, params);
    out = Tensor.empty(shape, dtype, backend);
    // the op's params are a superset of its kernel's (src/backend/kernels.ts)
    if (out.numel > 0) out.backend.run(kernelOf(def), mapPacked(xs, kernelView), [kernelView(out)], params as KernelParams);
  }
  record(def, xs, out, params);
  if (!def.view && observers.size > 0) for (const fn of observers) fn(name, xs, out);
  if (autocasting && autocastDone) autocastDone(def, xs);
  return out;
}

/** Run a kernel writing into an existing tensor view (in-place updates without autograd). */
export function applyInto<K extends KernelName>(kernel: K, inputs: readonly Tensor[], target: Tensor, params: KernelParams<K>): void {
  target.assertAlive(kernel);
  assertAllAlive(inputs, kernel);
  target.backend.run(kernel, mapPacked(inputs, kernelView), [kernelView(target)], params);
}

/**
 * Run a kernel with several outputs into fresh contiguous tensors on the inputs' backend (no
 * autograd: a composite op with its own backward records one node for the whole call).
 */
export function applyOutputs<K extends KernelName>(kernel: K, inputs: readonly Tensor[], outputs: readonly { shape: readonly number[]; dtype: DType }[], params: KernelParams<K>): Tensor[] {
  assertAllAlive(inputs, kernel);
  const backend = inputs[0]!.backend;
  const outs = mapPacked(outputs, (o) => Tensor.empty(o.shape, o.dtype, backend));
  let empty = false;
  for (let i = 0; i < outs.length; i++) empty ||= outs[i]!.numel === 0;
  if (!empty) backend.run(kernel, mapPacked(inputs, kernelView), mapPacked(outs, kernelView), params);
  return outs;
}
