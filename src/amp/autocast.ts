/**
 * autocast: per-op precision policy, PyTorch's torch.autocast in camelCase.
 *
 *   const loss = mx.amp.autocast({ dtype: 'float16' }, () => lossFn(model.forward(x), y));
 *   { using _ = mx.amp.autocast({ dtype: 'bfloat16' }); ... }
 *
 * Each op's category comes from the op table (`mx.amp.policy`): 'lower' ops run in the autocast
 * dtype, 'float32' ops in float32, 'promote' ops in the widest floating input type, 'none' ops as
 * called. Only floating tensors other than float64 are cast. Leaf tensors that require grad
 * (weights) are cast once per outermost region and cached; but a cast made for an op whose backward
 * makes it again (OpDef.recastsWeights: conv2d) is freed as soon as that op has run, so the 16-bit
 * weight copies of a network are not all held from the forward to the backward (PyTorch keeps
 * them: its autograd saves the cast weight). The backward's cast rounds the same values the same
 * way, so gradients are unchanged; it costs one more cast of each such weight per step.
 */
import { dtypeOf, float32, promoteTypes, type DType } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { setAutocastHook, type AutocastDone, type AutocastHook } from '../ops/dispatch.js';
import { allOps, type AutocastCategory, type OpDef } from '../ops/registry.js';
import { castTo } from '../ops/util.js';

export interface AutocastOptions {
  dtype?: 'float16' | 'bfloat16';
  enabled?: boolean;
  cacheEnabled?: boolean;
  /** Accepted for PyTorch parity; the policy is the same on every backend. */
  deviceType?: string;
}

interface Region {
  enabled: boolean;
  dtype: DType;
  cacheEnabled: boolean;
}

const regions: Region[] = [];
/** Casts of leaf weights, per target dtype, for the outermost region. */
let weightCache = new Map<DType, WeakMap<Tensor, Tensor>>();

function current(): Region | undefined {
  return regions[regions.length - 1];
}

export function isAutocastEnabled(): boolean {
  return current()?.enabled ?? false;
}

export function getAutocastDtype(): 'float16' | 'bfloat16' | null {
  const r = current();
  return r?.enabled ? (r.dtype.name as 'float16' | 'bfloat16') : null;
}

const castable = (x: Tensor) => x.dt.isFloating && x.dt.bits < 64 && !x.wrappedNumber;

/** Weight casts made for the op now running, which its backward makes again: freed once it has run. */
let freeAfterOp: { weight: Tensor; cast: Tensor }[] = [];

function castInput(x: Tensor, target: DType, region: Region, recasts: boolean): Tensor {
  if (!castable(x) || x.dt === target) return x;
  const weight = x.requiresGrad && x.isLeaf;
  if (!weight || !region.cacheEnabled) {
    const cast = castTo(x, target);
    if (weight && recasts) freeAfterOp.push({ weight: x, cast });
    return cast;
  }
  let perDtype = weightCache.get(target);
  if (!perDtype) weightCache.set(target, (perDtype = new WeakMap()));
  let cached = perDtype.get(x);
  if (!cached || cached.storage.disposed) {
    cached = castTo(x, target);
    perDtype.set(x, cached);
    // (a cast already cached for an op that keeps it stays)
    if (recasts) freeAfterOp.push({ weight: x, cast: cached });
  }
  return cached;
}

const done: AutocastDone = (_def, ran) => {
  if (freeAfterOp.length === 0) return;
  const casts = freeAfterOp;
  freeAfterOp = [];
  for (const { weight, cast } of casts) {
    if (!ran.includes(cast)) continue; // not what the kernel ran on (prepare cast it again): keep
    for (const perDtype of weightCache.values()) if (perDtype.get(weight) === cast) perDtype.delete(weight);
    cast.dispose();
  }
};

/** Listeners told which dtypes each autocast op received and ran in (precision diagnostics). */
export type AutocastListener = (op: string, received: readonly Tensor[], ran: readonly Tensor[]) => void;
const listeners = new Set<AutocastListener>();
export function addAutocastListener(fn: AutocastListener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const hook: AutocastHook = (def: OpDef, inputs: readonly Tensor[]) => {
  if (freeAfterOp.length > 0) freeAfterOp = [];
  const ran = castForPolicy(def, inputs);
  if (listeners.size > 0) for (const fn of listeners) fn(def.name, inputs, ran);
  return ran;
};

/**
 * `inputs` cast for the op: the same array when nothing needed a cast. Plain indexed loops (no
 * closures, no iterators): this runs on every op of an autocast region, in the interpreter too
 * during a process's first steps (bench/README.md, "warm-up").
 */
function castAll(inputs: readonly Tensor[], target: DType, region: Region, recasts: boolean): readonly Tensor[] {
  let out: Tensor[] | null = null;
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i]!;
    const c = castInput(x, target, region, recasts);
    if (c !== x && out === null) {
      out = [];
      for (let j = 0; j < i; j++) out.push(inputs[j]!);
    }
    if (out !== null) out.push(c);
  }
  return out ?? inputs;
}

function castForPolicy(def: OpDef, inputs: readonly Tensor[]): readonly Tensor[] {
  const region = current();
  if (!region || !region.enabled) return inputs;
  if (def.autocastBanned && region.dtype.name === 'float16') throw new Error(def.autocastBanned);
  const recasts = def.recastsWeights === true;
  switch (def.autocast) {
    case 'lower':
      return castAll(inputs, region.dtype, region, recasts);
    case 'float32':
      return castAll(inputs, float32, region, recasts);
    case 'promote': {
      let widest: DType | null = null;
      for (let i = 0; i < inputs.length; i++) {
        const x = inputs[i]!;
        if (castable(x)) widest = widest === null ? x.dt : promoteTypes(widest, x.dt);
      }
      return widest === null ? inputs : castAll(inputs, widest, region, recasts);
    }
    default:
      return inputs;
  }
}

function enter(options: AutocastOptions): void {
  const dtypeName = options.dtype ?? 'float16';
  if (dtypeName !== 'float16' && dtypeName !== 'bfloat16') {
    throw new TypeError(`autocast: dtype must be 'float16' or 'bfloat16', got '${String(dtypeName)}'`);
  }
  const dtype = dtypeOf(dtypeName);
  if (regions.length === 0) weightCache = new Map();
  regions.push({ enabled: options.enabled ?? true, dtype, cacheEnabled: options.cacheEnabled ?? true });
  setAutocastHook(hook, done);
}

let lastDtype: 'float16' | 'bfloat16' | null = null;

/** The dtype of the innermost enabled region now, or else of the last one that closed. */
export function recentAutocastDtype(): 'float16' | 'bfloat16' | null {
  return getAutocastDtype() ?? lastDtype;
}

function exit(): void {
  const closing = regions.pop();
  if (closing?.enabled) lastDtype = closing.dtype.name as 'float16' | 'bfloat16';
  if (regions.length === 0) {
    weightCache = new Map();
    setAutocastHook(null);
  }
}

/** Returned by the disposable form: `using _ = mx.amp.autocast({...})`. */
export interface AutocastRegion extends Disposable {
  exit(): void;
}

export function autocast(options: AutocastOptions): AutocastRegion;
export function autocast<T>(options: AutocastOptions, fn: () => T): T;
export function autocast<T>(options: AutocastOptions, fn?: () => T): T | AutocastRegion {
  enter(options);
  if (!fn) {
    let open = true;
    const close = () => {
      if (open) {
        open = false;
        exit();
      }
    };
    return { exit: close, [Symbol.dispose]: close };
  }
  let result: T;
  try {
    result = fn();
  } catch (e) {
    exit();
    throw e;
  }
  if (result instanceof Promise) {
    // An async region stays open until the promise settles, then restores the previous state.
    return result.finally(exit) as T;
  }
  exit();
  return result;
}

/** Op name to autocast category: a live, read-only view of the op table. */
export const policy: Readonly<Record<string, AutocastCategory>> = new Proxy({} as Record<string, AutocastCategory>, {
  get: (_target, name) => (typeof name === 'string' ? allOps().find((op) => op.name === name)?.autocast : undefined),
  has: (_target, name) => allOps().some((op) => op.name === name),
  ownKeys: () => allOps().map((op) => op.name),
  getOwnPropertyDescriptor: (_target, name) => {
    const op = allOps().find((o) => o.name === name);
    return op ? { value: op.autocast, enumerable: true, configurable: true, writable: false } : undefined;
  },
  set: () => false,
});
