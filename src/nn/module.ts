/**
 * nn.Module: the base of every layer, PyTorch's torch.nn.Module in camelCase, plus the containers
 * Sequential and ModuleList.
 *
 *   class Net extends mx.nn.Module {
 *     declare readonly fc1: mx.nn.Linear;            // `declare`: no field is emitted, the accessor
 *     declare readonly fc2: mx.nn.Linear;            // defined by registerModule serves it
 *     constructor() {
 *       super();
 *       this.registerModule('fc1', new mx.nn.Linear(4, 8));
 *       this.registerModule('fc2', new mx.nn.Linear(8, 2));
 *     }
 *     forward(x: mx.Tensor): mx.Tensor {
 *       return this.fc2.call(this.fc1.call(x).relu());
 *     }
 *   }
 *
 * Registration is explicit: `registerParameter`, `registerBuffer` and `registerModule` record the
 * member under its name (names compose with dots as in PyTorch: 'features.0.weight') and define an
 * accessor property of that name on the instance, so `this.weight` always reads the registered tensor,
 * also after `to(dtype)` replaced it. Each returns what it registered, so `readonly fc = this.registerModule('fc', ...)`
 * works too. A Module (or an array of Modules) kept in an ordinary enumerable field without being
 * registered is reported as an error by every traversal (parameters(), stateDict(), ...), since its
 * parameters would silently not train; keep non-child modules in a `#private` field.
 *
 * JS has no __call__: `forward` is what a layer implements, `call` is the entry point that also runs
 * the forward pre-hooks and hooks. Containers call their children through `call`.
 *
 * Parameters are leaf tensors that require grad (PyTorch's nn.Parameter); parameters and buffers are
 * passed to `mx.keep` on registration, so a model built inside `mx.scope` outlives it.
 */
import { dtypeOf, float32, type DType, type DTypeName } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { noGrad } from '../autograd/mode.js';
import { castTo, shapeStr } from '../ops/util.js';
import { fromTorchKey, isFromPyTorch } from '../util/torch_names.js';

/** Called before `forward` with the inputs; may return replacement inputs (an array). */
export type ForwardPreHook<M extends Module = Module> = (module: M, inputs: unknown[]) => unknown[] | void;
/** Called after `forward` with the inputs and output; may return a replacement output. */
export type ForwardHook<M extends Module = Module> = (module: M, inputs: unknown[], output: unknown) => unknown;

export interface RemovableHandle {
  remove(): void;
}

/** An ordered name -> tensor record (JS objects keep insertion order for non-integer keys). */
export type StateDict = Record<string, Tensor>;

export interface ModuleToOptions {
  /**
   * Keep the modules that declare `keepFloat32` (BatchNorm1d/2d always, LayerNorm when built with
   * `keepFloat32: true`) in float32 when casting to a 16-bit dtype: their parameters and running
   * statistics stay float32 while the rest of the model is float16/bfloat16 (AMP O2 style).
   */
  keepNormInFloat32?: boolean;
}

export interface LoadStateDictOptions {
  /** Require the keys to match exactly (missing and unexpected keys are errors). Default true. */
  strict?: boolean;
  /**
   * Cast values whose dtype differs from the model's tensor instead of reporting the mismatch.
   * Default false (true for a dict read by `mx.io.loadTorch`, as PyTorch converts): a dtype mismatch
   * is an error naming both dtypes, whatever `strict` says.
   */
  allowDtypeCast?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

const NAME_RE = /^[A-Za-z_$][\w$]*$/;
/** Names that cannot be registered (Module fields, and forward before a subclass defines it). */
const RESERVED = new Set(['training', 'keepFloat32', 'forward']);

type Slot = 'parameter' | 'buffer' | 'module';

export abstract class Module {
  /**
   * Modules of this class are kept in float32 by `to(dtype16, { keepNormInFloat32: true })`.
   * BatchNorm sets it; an instance can override it through its `keepFloat32` field.
   */
  static keepsFloat32 = false;

  /** Training mode (Dropout drops, BatchNorm uses and updates batch statistics); see train()/eval(). */
  training = true;
  /** Instance form of the class's `keepsFloat32` (see ModuleToOptions.keepNormInFloat32). */
  keepFloat32: boolean;

  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #nonPersistent = new Set<string>();
  readonly #modules = new Map<string, Module | null>();
  readonly #preHooks = new Map<number, ForwardPreHook<any>>();
  readonly #hooks = new Map<number, ForwardHook<any>>();
  static #nextHookId = 0;

  constructor() {
    this.keepFloat32 = (new.target as typeof Module).keepsFloat32;
  }

  /** The computation of this module. Call it through `call` to run hooks. */
  abstract forward(...args: any[]): any;

  /** Run the forward pre-hooks, `forward`, then the forward hooks (which may replace the output). */
  call(...args: Parameters<this['forward']>): ReturnType<this['forward']> {
    let inputs: unknown[] = args;
    // (copies of the hook lists only when there are hooks: this runs for every module call)
    if (this.#preHooks.size > 0) for (const hook of [...this.#preHooks.values()]) {
      const r = hook(this, inputs);
      if (r !== undefined) inputs = Array.isArray(r) ? r : [r];
    }
    let output: unknown = this.forward(...inputs);
    if (this.#hooks.size > 0) for (const hook of [...this.#hooks.values()]) {
      const r = hook(this, inputs, output);
      if (r !== undefined) output = r;
    }
    return output as ReturnType<this['forward']>;
  }

  registerForwardPreHook(hook: ForwardPreHook<this>): RemovableHandle {
    return this.#addHook(this.#preHooks, hook);
  }

  registerForwardHook(hook: ForwardHook<this>): RemovableHandle {
    return this.#addHook(this.#hooks, hook);
  }

  #addHook<H>(map: Map<number, H>, hook: H): RemovableHandle {
    const id = Module.#nextHookId++;
    map.set(id, hook);
    return { remove: () => void map.delete(id) };
  }

  /* ------------------------------------------------------------------ registration */

  #checkName(kind: Slot, name: string): void {
    if (typeof name !== 'string' || name === '') throw new TypeError(`register ${kind}: name must be a non-empty string`);
    if (name.includes('.')) throw new RangeError(`register ${kind}: name can't contain ".", got '${name}'`);
    if (name in Module.prototype || RESERVED.has(name) || this.#isMethod(name)) throw new RangeError(`register ${kind}: '${name}' is a Module member`);
    const slots: [Slot, Map<string, unknown>][] = [['parameter', this.#parameters], ['buffer', this.#buffers], ['module', this.#modules]];
    for (const [other, map] of slots) {
      if (other !== kind && map.has(name)) throw new RangeError(`register ${kind}: '${name}' is already registered as a ${other}`);
    }
  }

  /** A method (function-valued prototype member) of this module's class, e.g. 'forward'. */
  #isMethod(name: string): boolean {
    for (let proto = Object.getPrototypeOf(this); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
      const desc = Object.getOwnPropertyDescriptor(proto, name);
      if (desc) return typeof desc.value === 'function';
    }
    return false;
  }

  #defineAccessor(name: string, map: Map<string, unknown>, set: (v: any) => void): void {
    if (!NAME_RE.test(name)) return;
    const desc = Object.getOwnPropertyDescriptor(this, name);
    if (desc?.get) return;
    Object.defineProperty(this, name, { get: () => map.get(name), set, enumerable: true, configurable: true });
  }

  /**
   * Register a parameter: a leaf tensor, trained by optimizers (requiresGrad is set to true unless
   * `requiresGrad: false` is asked for). `null` registers an absent parameter (e.g. bias: false).
   */
  registerParameter<T extends Tensor | null>(name: string, param: T, options: { requiresGrad?: boolean } = {}): T {
    this.#checkName('parameter', name);
    if (param !== null) {
      if (!(param instanceof Tensor)) throw new TypeError(`registerParameter: '${name}' must be a Tensor or null`);
      if (!param.isLeaf) throw new TypeError(`registerParameter: '${name}' must be a leaf tensor (use t.detach() to cut it from the graph)`);
      if (!param.dt.isFloating) throw new TypeError(`registerParameter: '${name}' must be floating point, got ${param.dtype}`);
      param.requiresGrad_(options.requiresGrad ?? true);
      keep(param);
    }
    this.#parameters.set(name, param);
    this.#defineAccessor(name, this.#parameters, (v) => this.registerParameter(name, v));
    return param;
  }

  /**
   * Register a buffer: state that is not trained (running statistics). Persistent buffers are part
   * of stateDict(). `null` registers an absent buffer.
   */
  registerBuffer<T extends Tensor | null>(name: string, buffer: T, persistent = true): T {
    this.#checkName('buffer', name);
    if (buffer !== null) {
      if (!(buffer instanceof Tensor)) throw new TypeError(`registerBuffer: '${name}' must be a Tensor or null`);
      keep(buffer);
    }
    this.#buffers.set(name, buffer);
    if (persistent) this.#nonPersistent.delete(name);
    else this.#nonPersistent.add(name);
    this.#defineAccessor(name, this.#buffers, (v) => this.registerBuffer(name, v, !this.#nonPersistent.has(name)));
    return buffer;
  }

  /** Register a child module (or null). */
  registerModule<M extends Module | null>(name: string, module: M): M {
    this.#checkName('module', name);
    if (module !== null && !(module instanceof Module)) throw new TypeError(`registerModule: '${name}' must be a Module or null`);
    this.#modules.set(name, module);
    this.#defineAccessor(name, this.#modules, (v) => this.registerModule(name, v));
    return module;
  }

  /** Alias of registerModule (PyTorch's add_module). */
  addModule<M extends Module | null>(name: string, module: M): M {
    return this.registerModule(name, module);
  }

  /** Modules held in plain enumerable fields but never registered: almost always a bug. */
  #checkUnregistered(): void {
    const registered = new Set<unknown>([...this.#modules.values()].filter((m) => m !== null));
    for (const key of Object.keys(this)) {
      const desc = Object.getOwnPropertyDescriptor(this, key)!;
      if (desc.get || desc.set) continue;
      const v = desc.value as unknown;
      const bad = (v instanceof Module && !registered.has(v)) || (Array.isArray(v) && v.some((x) => x instanceof Module && !registered.has(x)));
      if (bad) {
        throw new Error(
          `${this.constructor.name}: field '${key}' holds ${Array.isArray(v) ? 'Modules' : 'a Module'} that ${Array.isArray(v) ? 'are' : 'is'} not registered, ` +
            `so ${Array.isArray(v) ? 'their' : 'its'} parameters would be invisible to parameters() and stateDict(): ` +
            (Array.isArray(v) ? `use this.registerModule('${key}', new ModuleList(...))` : `use this.registerModule('${key}', ...)`) +
            ` (or keep it in a #private field if it is deliberately not a child)`,
        );
      }
    }
  }

  /* ------------------------------------------------------------------ traversal */

  /** The registered (non-null) children in order, without removing repeats (Sequential runs a repeated module twice). */
  protected registeredModules(): [string, Module][] {
    this.#checkUnregistered();
    return [...this.#modules].filter((e): e is [string, Module] => e[1] !== null);
  }

  /** Direct children, [name, module], in registration order, each once. */
  namedChildren(): [string, Module][] {
    this.#checkUnregistered();
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    for (const [name, m] of this.#modules) {
      if (m && !seen.has(m)) {
        seen.add(m);
        out.push([name, m]);
      }
    }
    return out;
  }

  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and all below it, pre-order, each once; this module's name is `prefix` (''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      m.#checkUnregistered();
      for (const [childName, child] of m.#modules) if (child) visit(child, name ? `${name}.${childName}` : childName);
    };
    visit(this, prefix);
    return out;
  }

  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Parameters, [dotted name, tensor], in registration order; a tensor registered twice appears once. */
  namedParameters(options: { prefix?: string; recurse?: boolean } = {}): [string, Tensor][] {
    return this.#namedMembers((m) => m.#parameters, options);
  }

  parameters(recurse = true): Tensor[] {
    return this.namedParameters({ recurse }).map(([, p]) => p);
  }

  /** Buffers (persistent or not), [dotted name, tensor], in registration order. */
  namedBuffers(options: { prefix?: string; recurse?: boolean } = {}): [string, Tensor][] {
    return this.#namedMembers((m) => m.#buffers, options);
  }

  buffers(recurse = true): Tensor[] {
    return this.namedBuffers({ recurse }).map(([, b]) => b);
  }

  #namedMembers(of: (m: Module) => Map<string, Tensor | null>, options: { prefix?: string; recurse?: boolean }): [string, Tensor][] {
    const prefix = options.prefix ?? '';
    const mods: [string, Module][] = options.recurse ?? true ? this.namedModules(prefix) : [[prefix, this]];
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    for (const [modName, m] of mods) {
      for (const [name, t] of of(m)) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([modName ? `${modName}.${name}` : name, t]);
      }
    }
    return out;
  }

  /** The submodule at a dotted path ('features.0'); '' is this module. */
  getSubmodule(target: string): Module {
    if (target === '') return this;
    let m: Module = this;
    const walked: string[] = [];
    for (const part of target.split('.')) {
      const next = m.#modules.get(part);
      if (!next) throw new RangeError(`getSubmodule: ${walked.length ? `'${walked.join('.')}' (${m.constructor.name})` : m.constructor.name} has no submodule '${part}'`);
      walked.push(part);
      m = next;
    }
    return m;
  }

  /** The parameter at a dotted path ('features.0.weight'). */
  getParameter(target: string): Tensor {
    const i = target.lastIndexOf('.');
    const m = this.getSubmodule(i < 0 ? '' : target.slice(0, i));
    const p = m.#parameters.get(target.slice(i + 1));
    if (!p) throw new RangeError(`getParameter: no parameter '${target}'`);
    return p;
  }

  /** The buffer at a dotted path ('bn.runningMean'). */
  getBuffer(target: string): Tensor {
    const i = target.lastIndexOf('.');
    const m = this.getSubmodule(i < 0 ? '' : target.slice(0, i));
    const b = m.#buffers.get(target.slice(i + 1));
    if (!b) throw new RangeError(`getBuffer: no buffer '${target}'`);
    return b;
  }

  /** Call `fn` on every submodule (children first) and on this module, e.g. for custom initialisation. */
  apply(fn: (module: Module) => void): this {
    for (const child of this.children()) child.apply(fn);
    fn(this);
    return this;
  }

  /* ------------------------------------------------------------------ modes and gradients */

  /** Set training mode on this module and every submodule. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Evaluation mode: train(false). */
  eval(): this {
    return this.train(false);
  }

  /** Set requiresGrad on every parameter (freeze with false). */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }

  /** Clear the parameters' gradients: dispose and drop them (default), or zero them in place. */
  zeroGrad(setToNone = true): void {
    for (const p of this.parameters()) {
      if (!p.grad) continue;
      if (setToNone) {
        p.grad.dispose();
        p.grad = null;
      } else p.grad.zero_();
    }
  }

  /* ------------------------------------------------------------------ dtype */

  /**
   * Cast the floating parameters and buffers to a floating dtype, in place (returns this).
   * Tensors are replaced by new ones of the new dtype (dtypes are immutable): a parameter becomes a
   * new leaf with the same requiresGrad, and its gradient is cast too. Tensors shared between modules
   * stay shared. Anyone still holding an old tensor (an optimizer built earlier) keeps the old one, so
   * create optimizers after `to`. Integer buffers (numBatchesTracked) are left alone. With
   * `keepNormInFloat32` and a 16-bit target, the modules flagged `keepFloat32` (BatchNorm) are cast
   * to float32 instead.
   */
  to(dtype: DTypeName | DType, options: ModuleToOptions = {}): this {
    const dt = dtypeOf(dtype);
    if (!dt.isFloating) throw new TypeError(`Module.to: only floating point dtypes are accepted, got ${dt.name}`);
    const replaced = new Map<Tensor, Tensor>();
    noGrad(() => {
      for (const m of this.modules()) {
        const target = options.keepNormInFloat32 && dt.isHalf && m.keepFloat32 ? float32 : dt;
        for (const [name, p] of m.#parameters) {
          if (!p || !p.dt.isFloating || p.dt === target) continue;
          let q = replaced.get(p);
          if (!q) {
            q = keep(castTo(p, target).detach()).requiresGrad_(p.requiresGrad);
            if (p.grad) q.grad = keep(castTo(p.grad, target).detach());
            replaced.set(p, q);
          }
          m.#parameters.set(name, q);
          m.#updateField(name, p, q);
        }
        for (const [name, b] of m.#buffers) {
          if (!b || !b.dt.isFloating || b.dt === target) continue;
          let q = replaced.get(b);
          if (!q) {
            q = keep(castTo(b, target).detach());
            replaced.set(b, q);
          }
          m.#buffers.set(name, q);
          m.#updateField(name, b, q);
        }
      }
    });
    return this;
  }

  /** A plain data field holding a replaced tensor (field-initializer style registration) follows it. */
  #updateField(name: string, old: Tensor, now: Tensor): void {
    const desc = Object.getOwnPropertyDescriptor(this, name);
    if (desc && !desc.get && desc.value === old) (this as Record<string, unknown>)[name] = now;
  }

  half(options?: ModuleToOptions): this {
    return this.to('float16', options);
  }
  bfloat16(options?: ModuleToOptions): this {
    return this.to('bfloat16', options);
  }
  float(): this {
    return this.to('float32');
  }
  double(): this {
    return this.to('float64');
  }

  /* ------------------------------------------------------------------ state */

  /**
   * Parameters and persistent buffers by dotted name, in registration order (own members first, then
   * each child's). Values are detached tensors sharing the model's memory (snapshot with clone()).
   */
  stateDict(options: { prefix?: string; keepVars?: boolean } = {}): StateDict {
    const out: StateDict = {};
    for (const [modName, m] of this.namedModules(options.prefix ?? '')) {
      const pre = modName ? `${modName}.` : '';
      for (const [name, p] of m.#parameters) if (p) out[pre + name] = options.keepVars ? p : p.detach();
      for (const [name, b] of m.#buffers) if (b && !m.#nonPersistent.has(name)) out[pre + name] = options.keepVars ? b : b.detach();
    }
    return out;
  }

  /**
   * Copy values from `dict` (a record or Map of dotted names, e.g. another model's stateDict()) into
   * this model's parameters and buffers, in place. Every problem is collected first and reported in
   * ONE error, before anything is copied: missing and unexpected keys (when `strict`, the default),
   * shape mismatches ('conv1.weight: shape mismatch: expected [6,3,5,5], got [6,1,5,5]') and dtype
   * mismatches ('fc.weight: dtype mismatch: expected float32, got float16'). Dtypes must match exactly
   * unless `allowDtypeCast` is set (then values are cast); this catches loading a float16 checkpoint
   * into a float32 model (or the reverse) by accident. Returns the missing and unexpected keys.
   *
   * PyTorch's state dicts load as they are: their names for the members mixprec names in camelCase
   * (`bn1.running_mean`, `bn1.num_batches_tracked`: util/torch_names.ts) are taken for the module's
   * own, and a dict read by `mx.io.loadTorch` has its values converted into the module's dtypes as
   * PyTorch's `load_state_dict` does (`allowDtypeCast` defaults to true for it; its int64 counters
   * arrive as int32 already).
   */
  loadStateDict(dict: StateDict | ReadonlyMap<string, Tensor> | Record<string, unknown>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const allowDtypeCast = options.allowDtypeCast ?? isFromPyTorch(dict);
    const own = new Map<string, Tensor>();
    for (const [modName, m] of this.namedModules()) {
      const pre = modName ? `${modName}.` : '';
      for (const [name, p] of m.#parameters) if (p) own.set(pre + name, p);
      for (const [name, b] of m.#buffers) if (b && !m.#nonPersistent.has(name)) own.set(pre + name, b);
    }
    const problems: string[] = [];
    // Keys as given, each taken under the module's own name (PyTorch's running_mean -> runningMean).
    const entries = new Map<string, unknown>();
    const givenAs = new Map<string, string>();
    for (const [key, v] of dict instanceof Map ? dict : Object.entries(dict as StateDict)) {
      const alias = fromTorchKey(key);
      const name = !own.has(key) && own.has(alias) ? alias : key;
      const earlier = givenAs.get(name);
      if (earlier !== undefined) problems.push(`'${earlier}' and '${key}' both give '${name}'`);
      givenAs.set(name, key);
      entries.set(name, v);
    }
    const missingKeys = [...own.keys()].filter((k) => !entries.has(k));
    const unexpectedKeys = [...entries.keys()].filter((k) => !own.has(k)).map((k) => givenAs.get(k)!);
    if (strict) {
      for (const k of missingKeys) problems.push(`missing key: '${k}'`);
      for (const k of unexpectedKeys) problems.push(`unexpected key: '${k}'`);
    }
    const copies: [Tensor, Tensor][] = [];
    for (const [k, target] of own) {
      if (!entries.has(k)) continue;
      const v = entries.get(k);
      const label = givenAs.get(k)!;
      if (!(v instanceof Tensor)) {
        problems.push(`${label}: expected a Tensor, got ${v === null ? 'null' : typeof v}`);
        continue;
      }
      if (v.storage.disposed) {
        problems.push(`${label}: the given tensor was disposed`);
        continue;
      }
      let ok = true;
      if (v.ndim !== target.ndim || v.shape.some((d, i) => d !== target.shape[i])) {
        problems.push(`${label}: shape mismatch: expected ${shapeStr(target.shape)}, got ${shapeStr(v.shape)}`);
        ok = false;
      }
      if (v.dt !== target.dt && !(allowDtypeCast && v.dt.kind !== 'bool' && target.dt.kind !== 'bool')) {
        problems.push(`${label}: dtype mismatch: expected ${target.dtype}, got ${v.dtype}`);
        ok = false;
      }
      if (ok) copies.push([target, v]);
    }
    if (problems.length > 0) {
      throw new Error(
        `loadStateDict: ${problems.length} problem${problems.length === 1 ? '' : 's'} loading the state dict into ${this.constructor.name} (nothing was copied):\n  ` +
          problems.join('\n  '),
      );
    }
    noGrad(() => {
      for (const [target, v] of copies) if (target !== v) target.copy_(v);
    });
    return { missingKeys, unexpectedKeys };
  }

  /* ------------------------------------------------------------------ printing */

  /** Extra text inside this module's line of toString(), e.g. 'inFeatures=4, outFeatures=2'. */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const children = [...this.#modules].filter((e): e is [string, Module] => e[1] !== null);
    const extra = this.extraRepr();
    if (children.length === 0) return `${this.constructor.name}(${extra})`;
    const lines = children.map(([name, m]) => `  (${name}): ${m.toString().split('\n').join('\n  ')}`);
    if (extra) lines.unshift(`  ${extra}`);
    return `${this.constructor.name}(\n${lines.join('\n')}\n)`;
  }
}

/* ------------------------------------------------------------------ containers */

/**
 * Children called in order, each on the previous one's output (through `call`, so hooks fire).
 * `new Sequential(a, b, c)` names them '0', '1', '2'; `new Sequential({ conv: a, act: b })` uses the keys.
 */
export class Sequential extends Module {
  constructor(...modules: Module[] | [Record<string, Module>]) {
    super();
    const first = modules[0];
    if (modules.length === 1 && first !== undefined && !(first instanceof Module)) {
      for (const [name, m] of Object.entries(first)) this.registerModule(name, m);
    } else {
      (modules as Module[]).forEach((m, i) => this.registerModule(String(i), m));
    }
  }

  get length(): number {
    return this.registeredModules().length;
  }

  /** The i-th child (negative counts from the end). */
  at(i: number): Module {
    const list = this.registeredModules().map(([, m]) => m);
    const m = list[i < 0 ? i + list.length : i];
    if (!m) throw new RangeError(`Sequential.at: index ${i} is out of range for ${list.length} modules`);
    return m;
  }

  append(module: Module): this {
    this.registerModule(String(this.length), module);
    return this;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.registeredModules().map(([, m]) => m)[Symbol.iterator]();
  }

  forward(input: Tensor): Tensor {
    let x: unknown = input;
    for (const [, m] of this.registeredModules()) x = m.call(x);
    return x as Tensor;
  }
}

/** A list of child modules, indexed '0', '1', ...; it has no forward of its own. */
export class ModuleList extends Module {
  constructor(modules: Iterable<Module> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  get length(): number {
    return this.registeredModules().length;
  }

  at(i: number): Module {
    const list = this.registeredModules().map(([, m]) => m);
    const m = list[i < 0 ? i + list.length : i];
    if (!m) throw new RangeError(`ModuleList.at: index ${i} is out of range for ${list.length} modules`);
    return m;
  }

  append(module: Module): this {
    this.registerModule(String(this.length), module);
    return this;
  }

  extend(modules: Iterable<Module>): this {
    for (const m of modules) this.append(m);
    return this;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.registeredModules().map(([, m]) => m)[Symbol.iterator]();
  }

  forward(): never {
    throw new Error('ModuleList has no forward: iterate over it and call its modules');
  }
}
