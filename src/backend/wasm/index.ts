/**
 * The `wasm` backend: buffers live in one shared WebAssembly memory, kernels are 128-bit SIMD
 * WebAssembly (AssemblyScript, assembly/) run on every core by a worker pool, and float16/bfloat16
 * stay 16-bit in memory (widened in registers).
 *
 * `run` calls the native kernel when there is one for the case (native.ts decides: dtypes,
 * layout, sizes) and otherwise runs the reference kernel (src/backend/reference) over typed-array
 * views of the wasm memory, through the same gather/scatter codec: every kernel works, results are
 * the reference's, and native coverage grows case by case. Everything is synchronous: a kernel's
 * outputs are written when `run` returns, so `readSync` is offered.
 *
 *   await mx.setBackend('wasm')          // MIXPREC_THREADS=n sets the thread count
 *   backend.simd                         // 'relaxed' (fused multiply-add kernels) or 'plain'
 *   backend.kernelStats()                // native / fallback calls per kernel
 *   backend.heapStats()                  // the allocator: heap size, live / cached blocks
 */
import type { Backend, DeviceBuffer, KernelTensor, MemoryStats } from '../backend.js';
import type { KernelName, KernelParams } from '../kernels.js';
import { MemoryCounter } from '../backend.js';
import type { DType, StorageArray } from '../../dtype/dtype.js';
import { F16_TO_F32 } from '../../dtype/convert.js';
import { gatherToF64 } from '../reference/codec.js';
import { REFERENCE_KERNELS, runReferenceKernel } from '../reference/index.js';
import { wasmApi, type WasmModule } from './api.js';
import { WasmHeap, type HeapStats } from './memory.js';
import { KernelPool } from './pool.js';
import { NATIVE_KERNELS, type NativeContext, type NativeKernel, type NativeKernels } from './native.js';
import { INITIAL_PAGES, KERNEL_EXPORTS, MAXIMUM_PAGES, WASM_BASE64, WASM_RELAXED_BASE64 } from './generated/kernels.js';

export { NATIVE_KERNELS, type NativeKernel, type NativeKernels, type NativeContext } from './native.js';
export type { HeapStats } from './memory.js';

class WasmBuffer implements DeviceBuffer {
  freed = false;
  constructor(
    readonly dtype: DType,
    readonly size: number,
    /** Byte address in the wasm memory. */
    readonly addr: number,
    readonly bytes: number,
  ) {}
}

export interface WasmBackendOptions {
  /** Threads in all, the calling thread included. Default: MIXPREC_THREADS, else every core (divided among LOCAL_WORLD_SIZE ranks). */
  threads?: number;
  /** false: run every kernel through the reference fallback (testing). Default: MIXPREC_WASM_NATIVE !== '0'. */
  native?: boolean;
  /** Microseconds a waiting thread spins before it sleeps, whatever the load. Default: MIXPREC_WASM_SPIN_US, else 300 µs while the machine has a core per runnable thread and ~10 µs while it is oversubscribed (pool.ts). */
  spinMicros?: number;
  /** Shared memory (needed for threads). Default: whether SharedArrayBuffer exists. */
  shared?: boolean;
  /** Time every kernel call (kernelStats().*Ms). Default: MIXPREC_WASM_PROFILE === '1'. */
  profile?: boolean;
  /**
   * Which build of the kernels to run: 'relaxed' (relaxed SIMD: fused multiply-add where the CPU has
   * one; an error where the engine cannot run it), 'plain' (SIMD128 only), or 'auto' (relaxed when
   * the engine validates it, else plain). Default: MIXPREC_WASM_SIMD, else 'auto'.
   */
  simd?: WasmSimd | 'auto';
  /** How the kernels are compiled (see `WasmCompile`). Default: MIXPREC_WASM_COMPILE, else 'optimized'. */
  compile?: WasmCompile;
}

/** The kernel builds (tools/build-wasm.mjs): plain SIMD128, or relaxed SIMD (f32x4.relaxed_madd). */
export type WasmSimd = 'relaxed' | 'plain';

export interface KernelCallStats {
  native: number;
  fallback: number;
  /** Milliseconds spent, with `profile` on (MIXPREC_WASM_PROFILE=1). */
  nativeMs?: number;
  fallbackMs?: number;
}

/** The native handler of `kernel`, if it has one. */
const nativeHandler = <K extends KernelName>(kernel: K): NativeKernel<K> | undefined =>
  Object.hasOwn(NATIVE_KERNELS, kernel) ? (NATIVE_KERNELS as NativeKernels)[kernel] : undefined;

type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => StorageArray;

const bitsF32 = new Float32Array(1);
const bitsU32 = new Uint32Array(bitsF32.buffer);

function env(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

function decodeBase64(b64: string): Uint8Array {
  const B = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } }).Buffer;
  if (B) return new Uint8Array(B.from(b64, 'base64'));
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** MIXPREC_WASM_SPIN_US: how long waiting threads spin before they sleep, µs (undefined: the pool's default). */
function spinFromEnv(): number | undefined {
  const v = env('MIXPREC_WASM_SPIN_US');
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`MIXPREC_WASM_SPIN_US must be a number of microseconds >= 0, got '${v}'`);
  return n;
}

async function defaultThreads(): Promise<number> {
  const fromEnv = env('MIXPREC_THREADS');
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`MIXPREC_THREADS must be a positive integer, got '${fromEnv}'`);
    return n;
  }
  // Only Node has node:os (a browser would log the failed module load as an error).
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (isNode) {
    try {
      const os = await import('node:os');
      const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
      // Under a launcher (mixprec run, torchrun) LOCAL_WORLD_SIZE ranks share this machine's cores.
      const ranks = Number(env('LOCAL_WORLD_SIZE'));
      return Number.isInteger(ranks) && ranks > 1 ? Math.max(1, Math.floor(cores / ranks)) : cores;
    } catch {
      // fall through: a Node-like engine without node:os
    }
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/**
 * The module with its memory import declared unshared. The kernels use no atomics, so the same code
 * runs single-threaded on an ordinary memory where SharedArrayBuffer is unavailable (a browser page
 * that is not cross-origin isolated). Only the import's limits flags byte changes.
 */
export function unsharedModuleBytes(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  let p = 8; // magic and version
  const leb = (): number => {
    let r = 0;
    let shift = 0;
    let b: number;
    do {
      b = out[p++]!;
      r += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return r;
  };
  while (p < out.length) {
    const id = out[p++]!;
    const size = leb();
    const end = p + size;
    if (id === 2) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        const moduleName = leb();
        p += moduleName;
        const fieldName = leb();
        p += fieldName;
        const kind = out[p++]!;
        if (kind === 0) leb(); // function: type index
        else if (kind === 1 || kind === 2) {
          if (kind === 1) p++; // table: element type
          const flagsAt = p;
          const flags = leb();
          if (kind === 2) {
            out[flagsAt] = flags & ~2; // drop "shared"
            return out;
          }
          leb();
          if (flags & 1) leb();
        } else if (kind === 3) p += 2; // global: type, mutability
        else throw new Error(`wasm backend: unexpected import kind ${kind}`);
      }
    }
    p = end;
  }
  throw new Error('wasm backend: the kernel module imports no memory');
}

/**
 * (module (func (param v128 v128 v128) (result v128)
 *   local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
 */
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253,
  133, 2, 11,
]);

function validates(bytes: Uint8Array): boolean {
  try {
    return (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

let relaxedProbe: Promise<boolean> | null = null;

/**
 * Whether this engine runs relaxed SIMD. Browsers that have it validate it by default (Chrome 114+).
 * Node 20 (V8 11.3) has it behind --experimental-wasm-relaxed-simd: in Node, when the probe fails, the
 * flag is set with v8.setFlagsFromString (process-wide, so the pool's workers see it too) and the
 * probe repeated. V8 is never touched outside Node.
 */
export function relaxedSimdAvailable(): Promise<boolean> {
  return (relaxedProbe ??= (async () => {
    if (validates(RELAXED_PROBE)) return true;
    const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
    if (!isNode) return false;
    try {
      const v8 = await import('node:v8');
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      return false;
    }
    return validates(RELAXED_PROBE);
  })());
}

/** The kernel build to use: an explicit choice, else MIXPREC_WASM_SIMD, else relaxed where available. */
export async function selectSimd(choice: WasmSimd | 'auto' | undefined = undefined): Promise<WasmSimd> {
  const known = (v: string): v is WasmSimd | 'auto' => v === 'plain' || v === 'relaxed' || v === 'auto';
  let want = choice;
  if (want !== undefined && !known(want)) throw new RangeError(`wasm backend: simd must be 'plain', 'relaxed' or 'auto', got '${String(want)}'`);
  if (want === undefined) {
    const e = env('MIXPREC_WASM_SIMD');
    if (e !== undefined && e !== '') {
      if (!known(e)) throw new RangeError(`MIXPREC_WASM_SIMD must be 'plain', 'relaxed' or 'auto', got '${e}'`);
      want = e;
    }
  }
  if (want === 'plain') return 'plain';
  const ok = await relaxedSimdAvailable();
  if (want === 'relaxed' && !ok) throw new Error('wasm backend: relaxed SIMD was asked for, but this JavaScript engine cannot run it');
  return ok ? 'relaxed' : 'plain';
}

const compiled = new Map<string, Promise<WasmModule>>();

/**
 * How the kernel module is compiled: 'optimized' (every function by the optimizing compiler, up
 * front) or 'lazy' (the engine's default). Default: MIXPREC_WASM_COMPILE, else 'optimized'.
 */
export type WasmCompile = 'optimized' | 'lazy';

function compileMode(choice: WasmCompile | undefined): WasmCompile {
  const want = choice ?? env('MIXPREC_WASM_COMPILE') ?? 'optimized';
  if (want !== 'optimized' && want !== 'lazy') throw new RangeError(`wasm backend: compile must be 'optimized' or 'lazy' (MIXPREC_WASM_COMPILE), got '${want}'`);
  return want;
}

/**
 * Compile with V8's optimizing compiler (TurboFan) for every function, before the first kernel runs.
 * By default V8 (Node 20) compiles a wasm function on its first call with its baseline compiler
 * (Liftoff, 2-3x slower code) and re-compiles it with TurboFan only once it has run a while: the
 * kernels of a training step reach full speed only after a few hundred steps, while the optimizing
 * compiles run on the same cores. Liftoff's code brings nothing else here (Node 20 does no
 * feedback-driven wasm inlining), so the flags are set for this compile only and then restored.
 * Outside Node (browsers) the engine's default applies.
 */
async function compileOptimized(bytes: Uint8Array): Promise<WasmModule> {
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  let v8: { setFlagsFromString(flags: string): void } | null = null;
  if (isNode) {
    try {
      v8 = await import('node:v8');
    } catch {
      v8 = null;
    }
  }
  if (!v8) return wasmApi().compile(bytes);
  v8.setFlagsFromString('--no-liftoff');
  v8.setFlagsFromString('--no-wasm-lazy-compilation');
  try {
    return await wasmApi().compile(bytes);
  } finally {
    v8.setFlagsFromString('--liftoff');
    v8.setFlagsFromString('--wasm-lazy-compilation');
  }
}

/**
 * The kernel module (for a shared or an ordinary memory; the plain or relaxed SIMD build), compiled
 * once per process. The relaxed build needs `relaxedSimdAvailable()` to have resolved true.
 */
export function kernelModule(shared = true, simd: WasmSimd = 'plain', compile?: WasmCompile): Promise<WasmModule> {
  const mode = compileMode(compile);
  const key = `${shared}:${simd}:${mode}`;
  let m = compiled.get(key);
  if (!m) {
    const raw = decodeBase64(simd === 'relaxed' ? WASM_RELAXED_BASE64 : WASM_BASE64);
    const bytes = shared ? raw : unsharedModuleBytes(raw);
    compiled.set(key, (m = mode === 'optimized' ? compileOptimized(bytes) : wasmApi().compile(bytes)));
  }
  return m;
}

export class WasmBackend implements Backend {
  readonly name: string = 'wasm';
  private readonly counter = new MemoryCounter();
  private readonly calls = new Map<string, KernelCallStats>();
  private readonly ctx: NativeContext;

  private constructor(
    readonly heap: WasmHeap,
    readonly pool: KernelPool,
    /** Whether native kernels are used (false: everything through the reference fallback). */
    public native: boolean,
    /** Whether kernel calls are timed. */
    public profile: boolean,
    /** The kernel build running: 'relaxed' (fused multiply-add) or 'plain' SIMD128. */
    readonly simd: WasmSimd,
  ) {
    this.ctx = {
      pool,
      heap,
      address: (t, index = 0) => (t.buffer as WasmBuffer).addr + (t.offset + index) * t.dtype.itemsize,
      readScalar: (t) => this.readScalar(t),
    };
  }

  static async create(options: WasmBackendOptions = {}): Promise<WasmBackend> {
    const threads = options.threads ?? (await defaultThreads());
    const native = options.native ?? env('MIXPREC_WASM_NATIVE') !== '0';
    const shared = options.shared ?? typeof SharedArrayBuffer !== 'undefined';
    const simd = await selectSimd(options.simd);
    const module = await kernelModule(shared, simd, options.compile);
    const memory = new (wasmApi().Memory)({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared });
    const instance = await wasmApi().instantiate(module, {
      env: {
        memory,
        abort: () => {
          throw new Error('wasm kernel aborted');
        },
      },
    });
    const exports = instance.exports;
    const heap = new WasmHeap(memory, (exports['heapBase'] as () => number)(), MAXIMUM_PAGES);
    const pool = await KernelPool.create(module, memory, exports, KERNEL_EXPORTS, { threads, spinMicros: options.spinMicros ?? spinFromEnv() });
    return new WasmBackend(heap, pool, native, options.profile ?? env('MIXPREC_WASM_PROFILE') === '1', simd);
  }

  /** Threads that run kernels (1 when single-threaded). */
  get threads(): number {
    return this.pool.threads;
  }

  allocate(dtype: DType, size: number): DeviceBuffer {
    const bytes = size * dtype.itemsize;
    const addr = bytes > 0 ? this.heap.alloc(bytes) : this.heap.base;
    this.counter.onAllocate(bytes);
    return new WasmBuffer(dtype, size, addr, bytes);
  }

  free(buffer: DeviceBuffer): void {
    const b = buffer as WasmBuffer;
    if (b.freed) return;
    b.freed = true;
    if (b.bytes > 0) this.heap.release(b.addr, b.bytes);
    this.counter.onFree(b.bytes);
  }

  /** A typed array over the buffer's bytes in the wasm memory (valid until the memory grows). */
  view(buffer: DeviceBuffer): StorageArray {
    const b = buffer as WasmBuffer;
    if (b.freed) throw new Error('wasm backend: buffer used after free');
    return new (b.dtype.storage as unknown as ViewCtor)(this.heap.views().buffer, b.addr, b.size);
  }

  write(buffer: DeviceBuffer, data: StorageArray): void {
    this.view(buffer).set(data);
  }

  readSync(buffer: DeviceBuffer): StorageArray {
    return this.view(buffer).slice();
  }

  async read(buffer: DeviceBuffer): Promise<StorageArray> {
    return this.readSync(buffer);
  }

  hasKernel(kernel: KernelName): boolean {
    return Object.hasOwn(REFERENCE_KERNELS, kernel);
  }

  /** Whether `kernel` has a native handler here (composites with a fused form, e.g. attention, take it then). */
  nativeKernel(kernel: KernelName): boolean {
    return this.native && nativeHandler(kernel) !== undefined;
  }

  run<K extends KernelName>(kernel: K, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<K>): void {
    let stats = this.calls.get(kernel);
    if (!stats) this.calls.set(kernel, (stats = { native: 0, fallback: 0 }));
    const t0 = this.profile ? performance.now() : 0;
    const nativeKernel = this.native ? nativeHandler(kernel) : undefined;
    if (nativeKernel && nativeKernel(this.ctx, inputs, outputs, params)) {
      stats.native++;
      if (this.profile) stats.nativeMs = (stats.nativeMs ?? 0) + performance.now() - t0;
      return;
    }
    const fn = Object.hasOwn(REFERENCE_KERNELS, kernel) ? REFERENCE_KERNELS[kernel] : undefined;
    if (!fn) throw new Error(`wasm backend: no kernel named '${kernel}'`);
    stats.fallback++;
    runReferenceKernel(fn, inputs, outputs, params, (b) => this.view(b));
    if (this.profile) stats.fallbackMs = (stats.fallbackMs ?? 0) + performance.now() - t0;
  }

  memory(): MemoryStats {
    return this.counter.stats();
  }

  resetPeak(): void {
    this.counter.resetPeak();
  }

  heapStats(): HeapStats {
    return this.heap.stats();
  }

  /** Native and fallback calls per kernel name since the backend was created (or `resetKernelStats`). */
  kernelStats(): Record<string, KernelCallStats> {
    return Object.fromEntries([...this.calls].map(({ 0: k, 1: v }) => [k, { ...v }]));
  }

  resetKernelStats(): void {
    this.calls.clear();
  }

  /** Stop the worker threads; later kernels run on the calling thread. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  private readScalar(t: KernelTensor): number {
    const b = t.buffer as WasmBuffer;
    const v = this.heap.views();
    const addr = b.addr + t.offset * t.dtype.itemsize;
    switch (t.dtype.name) {
      case 'float32':
        return v.f32[addr >> 2]!;
      case 'float16':
        return F16_TO_F32[v.u16[addr >> 1]!]!;
      case 'bfloat16':
        bitsU32[0] = v.u16[addr >> 1]! << 16;
        return bitsF32[0]!;
      default:
        return gatherToF64(this.view(b), t.dtype, [], [], t.offset)[0]!;
    }
  }
}

/** The registry's factory (src/backend/registry.ts). */
export function createWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackend> {
  return WasmBackend.create(options);
}
