/**
 * GEMM throughput: C = A·B for random N×N A and B of one dtype through `matmul` on the current
 * backend. One rep is matmul and then waiting until C is computed: a synchronous (CPU) backend —
 * one offering `readSync`, such as wasm and reference — has written C when matmul returns; on any
 * other backend the rep reads C back (`await c.data()`), which waits for the queued work. C stays
 * on the device as in the jax-js peer (bench/gemm-peer.mjs: matmul + blockUntilReady), so a rep does
 * not time a host copy of C. The warm-up reads C back and checks one element. Reps are timed one by
 * one after the warm-up.
 */
import type { DTypeName } from '../dtype/dtype.js';
import { getBackend } from '../backend/registry.js';
import { Generator } from '../random/generator.js';
import { randn } from '../ops/creation.js';
import { matmul } from '../ops/linalg.js';
import { scope } from '../tensor/scope.js';
import { adapterDescription, assertNoDeviceErrors, deviceErrors, subgroupMatrixDescription, backendThreads, kernelCalls, load1, resetKernelCalls, sig } from './common.js';

export const GEMM_DTYPES = ['float32', 'float16', 'bfloat16'] as const satisfies readonly DTypeName[];
export type GemmDtype = (typeof GEMM_DTYPES)[number];

export interface GemmBenchOptions {
  /** N: A, B and C are N×N. */
  size: number;
  dtype?: GemmDtype;
  /** Untimed reps first (default 1). */
  warmup?: number;
  /** At least this many timed reps (default 3)... */
  reps?: number;
  /** ...and at least this many seconds of them (default 1). */
  minTime?: number;
  /** Seeds the inputs (default 0). */
  seed?: number;
}

export interface GemmBenchResult {
  /** 2·N³ / mean seconds per rep, in 10⁹ per second. */
  gflops: number;
  /** 2·N³ / the fastest rep. */
  gflops_best: number;
  size: number;
  dtype: GemmDtype;
  backend: string;
  threads: number;
  /** Mean seconds per rep. */
  seconds: number;
  best_seconds: number;
  reps: number;
  warmup: number;
  /** |C[N-1][3] - the float64 dot product of the same (rounded) inputs|, a sanity check. */
  check_abs_err: number;
  /** 1-minute load average when the run ended. */
  load_avg_1m: number;
  /** GPU backends: the adapter ("vendor architecture device description"). */
  adapter?: string;
  /** GPU backends: the subgroup-matrix (tensor core) shape the backend uses ("f16 16x16x16 -> f32"), or null. */
  subgroup_matrix?: string | null;
  /** Whether a timed rep also copied C back to the host (backends that are not synchronous). */
  readback: boolean;
  /** The wasm backend's kernel build: 'relaxed' (relaxed SIMD, fused multiply-add) or 'plain'. */
  simd?: string;
  /** Native / fallback kernel calls (wasm backend), for the timed reps. */
  kernels?: Record<string, { native: number; fallback: number }>;
}

export async function benchGemm(options: GemmBenchOptions): Promise<GemmBenchResult> {
  const n = options.size;
  const dtype = options.dtype ?? 'float32';
  const warmup = options.warmup ?? 1;
  const minReps = Math.max(1, options.reps ?? 3);
  const minTime = options.minTime ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`benchGemm: size must be a positive integer, got ${n}`);
  const backend = getBackend();
  const errorsBefore = deviceErrors(backend);
  const gen = new Generator(options.seed ?? 0);
  const a = randn([n, n], { dtype, generator: gen });
  const b = randn([n, n], { dtype, generator: gen });
  // A synchronous backend has finished a kernel when `run` returns (Backend.readSync: CPU backends only).
  const readback = typeof backend.readSync !== 'function';
  const rep = async (read: boolean): Promise<ArrayLike<number> | null> => {
    const c = scope(() => matmul(a, b));
    try {
      return read ? ((await c.data()) as ArrayLike<number>) : null;
    } finally {
      c.dispose();
    }
  };
  try {
    // Warm-up (JIT, allocator, worker start-up), and a check of one element of the product.
    let c0: ArrayLike<number> | null = null;
    for (let i = 0; i < Math.max(1, warmup); i++) c0 = await rep(true);
    const A = (await a.data()) as ArrayLike<number>;
    const B = (await b.data()) as ArrayLike<number>;
    const col = Math.min(3, n - 1);
    let ref = 0;
    for (let k = 0; k < n; k++) ref += Number(A[(n - 1) * n + k]) * Number(B[k * n + col]);
    const checkAbsErr = Math.abs(Number(c0![(n - 1) * n + col]) - ref);

    resetKernelCalls(backend);
    const times: number[] = [];
    const t0 = performance.now();
    while (times.length < minReps || performance.now() - t0 < minTime * 1000) {
      const t = performance.now();
      await rep(readback);
      times.push((performance.now() - t) / 1000);
    }
    const mean = times.reduce((s, x) => s + x, 0) / times.length;
    const best = Math.min(...times);
    const flop = 2 * n ** 3;
    assertNoDeviceErrors(backend, errorsBefore, 'bench gemm');
    const result: GemmBenchResult = {
      gflops: sig(flop / mean / 1e9),
      gflops_best: sig(flop / best / 1e9),
      size: n,
      dtype,
      backend: backend.name,
      threads: backendThreads(backend),
      seconds: sig(mean),
      best_seconds: sig(best),
      reps: times.length,
      warmup: Math.max(1, warmup),
      check_abs_err: Number(checkAbsErr.toExponential(3)),
      load_avg_1m: load1(),
      readback,
    };
    const simd = (backend as { simd?: unknown }).simd;
    if (typeof simd === 'string') result.simd = simd;
    const adapter = adapterDescription(backend);
    if (adapter) result.adapter = adapter;
    const subgroupMatrix = subgroupMatrixDescription(backend);
    if (subgroupMatrix !== undefined) result.subgroup_matrix = subgroupMatrix;
    const kernels = kernelCalls(backend);
    if (kernels) result.kernels = kernels;
    return result;
  } finally {
    a.dispose();
    b.dispose();
  }
}
