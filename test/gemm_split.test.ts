/**
 * The wasm GEMM's split of a call into parts (assembly/kernels/gemm.ts): with a sync block each part
 * works through its own range of units, then takes the last units of the others' ranges; without one
 * it takes its fixed range. Whatever the order the parts run in and whoever takes which unit, every
 * output element must be the same bits as the one-part call's (each element's sums are computed the
 * same way by whoever computes them), and the one-part call must agree with the reference backend.
 *
 * The parts are run here one after another on the calling thread, in chosen orders, so that the
 * stealing paths run deterministically: part 0 first takes its whole range and then every other
 * range from its back; the reverse order has the last part steal towards the front. Shapes: the GPT
 * bench's products (forward with B transposed, grad-weight with A transposed, K past one KC block),
 * a batch with broadcast B and a column bias, odd sizes; float32, float16 and bfloat16 storage.
 * Then the same products on a 3-thread backend (concurrent parts, a sync block) against 1 thread.
 *
 * Makes its own backends and switches to them explicitly, whatever MIXPREC_BACKEND says.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import { WasmBackend } from '../src/backend/wasm/index.js';
import { wasmBackends } from './helpers/backends.js';

const [wasm1] = await wasmBackends({ 'gemm-split-t1': { threads: 1, native: true }, 'gemm-split-t3': { threads: 3, native: true } });

const TRANS_A = 1, TRANS_B = 2, BIAS_COL = 2 << 8;
const DTYPES = ['float32', 'float16', 'bfloat16'] as const;
type Dt = (typeof DTYPES)[number];
const code = (dt: Dt): number => DTYPES.indexOf(dt);
const bytes = (dt: Dt): number => (dt === 'float32' ? 4 : 2);

interface Case {
  name: string;
  batch: number;
  M: number;
  N: number;
  K: number;
  flags: number;
  /** B shared by the batch (batch stride 0). */
  broadcastB?: boolean;
}

const CASES: Case[] = [
  { name: 'GPT qkv forward, B transposed', batch: 1, M: 768, N: 384, K: 128, flags: TRANS_B },
  { name: 'GPT MLP grad-weight, A transposed', batch: 1, M: 128, N: 512, K: 768, flags: TRANS_A },
  { name: 'GPT MLP grad-input, K past one KC block', batch: 1, M: 768, N: 128, K: 512, flags: 0 },
  { name: 'batch of 3, broadcast B, column bias', batch: 3, M: 37, N: 90, K: 300, flags: TRANS_B | BIAS_COL, broadcastB: true },
  { name: 'odd sizes', batch: 1, M: 133, N: 29, K: 61, flags: TRANS_A | TRANS_B },
];

/** Deterministic values in [-1, 1) stored as dtype dt's bits. */
function fill(backend: WasmBackend, addr: number, n: number, dt: Dt, seed: number): void {
  const v = backend.heap.views();
  let s = seed >>> 0;
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    f[0] = (s / 2 ** 32) * 2 - 1;
    if (dt === 'float32') v.f32[(addr >> 2) + i] = f[0]!;
    else if (dt === 'bfloat16') v.u16[(addr >> 1) + i] = u[0]! >>> 16; // truncation: any bfloat16 value will do
    else v.u16[(addr >> 1) + i] = float16Bits(f[0]!);
  }
}

/** float16 bits of x (|x| < 1, rounded toward zero: any float16 value will do). */
function float16Bits(x: number): number {
  const sign = x < 0 ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a < 2 ** -14) return sign | Math.floor(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.floor((a / 2 ** e - 1) * 1024);
}

interface Layout {
  a: number; lda: number; sA: number;
  b: number; ldb: number; sB: number;
  c: number; sC: number;
  bias: number;
  cBytes: number;
}

function layout(backend: WasmBackend, k: Case, dt: Dt): Layout {
  const es = bytes(dt);
  const lda = k.flags & TRANS_A ? k.M : k.K, ldb = k.flags & TRANS_B ? k.K : k.N;
  const sA = k.M * k.K, sB = k.broadcastB ? 0 : k.K * k.N, sC = k.M * k.N;
  const a = backend.heap.alloc(k.batch * sA * es), b = backend.heap.alloc(Math.max(k.batch * sB, k.K * k.N) * es);
  const c = backend.heap.alloc(k.batch * sC * es), bias = backend.heap.alloc(k.N * es);
  fill(backend, a, k.batch * sA, dt, 1);
  fill(backend, b, Math.max(k.batch * sB, k.K * k.N), dt, 2);
  fill(backend, bias, k.N, dt, 3);
  return { a, lda, sA, b, ldb, sB, c, sC, bias: k.flags & BIAS_COL ? bias : 0, cBytes: k.batch * sC * es };
}

/** Run the call as `parts` parts in `order` on the calling thread (with a zeroed sync block, or static); C's bytes. */
function runParts(backend: WasmBackend, k: Case, dt: Dt, l: Layout, parts: number, order: readonly number[], withSync: boolean): Uint8Array {
  const per = backend.pool.call('gemm_scratch_bytes') as number;
  const ws = backend.heap.alloc(parts * per + 64);
  const sync = withSync ? ws + parts * per : 0;
  const v = backend.heap.views();
  v.u8.fill(0xff, l.c, l.c + l.cBytes); // every element must be written
  if (sync) v.i32.fill(0, sync >> 2, (sync >> 2) + 16);
  const d = code(dt);
  for (const p of order) {
    backend.pool.run('gemm', [[k.flags, d | (d << 4) | (d << 8) | (d << 12), k.batch, k.M, k.N, k.K, l.a, l.lda, l.sA, l.b, l.ldb, l.sB, l.c, k.N, l.sC, l.bias, ws, sync, p, parts]]);
  }
  const out = backend.heap.views().u8.slice(l.c, l.c + l.cBytes);
  backend.heap.release(ws, parts * per + 64);
  return out;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('wasm GEMM: any split, any order, the one-part bits', () => {
  for (const k of CASES) {
    for (const dt of DTYPES) {
      it(`${k.name} (${k.batch}x${k.M}x${k.N}x${k.K}), ${dt}`, () => {
        const l = layout(wasm1, k, dt);
        const one = runParts(wasm1, k, dt, l, 1, [0], false);
        for (const parts of [2, 3]) {
          const forward = Array.from({ length: parts }, (_, p) => p);
          const runs: [string, number[], boolean][] = [
            ['static', forward, false],
            ['sync block, parts in order (part 0 steals every range)', forward, true],
            ['sync block, parts in reverse (the last part steals)', [...forward].reverse(), true],
          ];
          for (const [how, order, withSync] of runs) {
            const got = runParts(wasm1, k, dt, l, parts, order, withSync);
            const at = firstDifference(got, one);
            assert.equal(at, -1, `${parts} parts, ${how}: byte ${at} differs from the one-part result`);
          }
        }
      });
    }
  }
});

describe('wasm GEMM: concurrent parts (3 threads) against 1 thread and the reference', () => {
  for (const dt of DTYPES) {
    it(`GPT-shaped products, ${dt}`, () => {
      for (const [M, K, N] of [[768, 128, 384], [128, 768, 512], [768, 512, 128], [61, 45, 77]] as const) {
        const results = ['gemm-split-t1', 'gemm-split-t3', 'reference'].map((name) => {
          void mx.setBackend(name);
          try {
            return mx.scope(() => {
              mx.manualSeed(7);
              const a = mx.randn([M, K]).to(dt);
              const b = mx.randn([N, K]).to(dt);
              return Float32Array.from(mx.matmul(a, b.transpose(0, 1)).to('float32').dataSync());
            });
          } finally {
            void mx.setBackend('reference');
          }
        });
        const [t1, t3, ref] = results as [Float32Array, Float32Array, Float32Array];
        assert.equal(firstDifference(new Uint8Array(t3.buffer), new Uint8Array(t1.buffer)), -1, `${M}x${K}x${N}: 3 threads differ from 1`);
        // the reference sums in another order: within the float32 accumulation bound, plus the output's rounding
        const outUlp = dt === 'float32' ? 0 : dt === 'float16' ? 2 ** -10 : 2 ** -7;
        for (let i = 0; i < ref.length; i++) {
          const tol = K * 2 ** -23 * Math.sqrt(K) * 4 + Math.abs(ref[i]!) * outUlp;
          assert.ok(Math.abs(t1[i]! - ref[i]!) <= tol, `${M}x${K}x${N} element ${i}: ${t1[i]} vs reference ${ref[i]}`);
        }
      }
    });
  }
});
