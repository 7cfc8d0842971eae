// Correctness of the gemm kernel against a float64 triple loop.
//   node bench/standalone/test-gemm.mjs [--threads 2] [--variant simd|relaxed]
import { testPool } from "./harness.mjs";
import { toBits, DT, makeTensor, readTensor, readBits, compare, setSeed, rand, randInt, f64ToF16Bits, f16BitsToF64, f64ToBf16Bits } from "./ref.mjs";

const { pool, threads, variant } = await testPool();
const E = pool.exports;
const scratch = pool.alloc(E.gemm_scratch_bytes() * threads);
const base = pool.heap;
const U = 2 ** -24;
let failures = 0, passes = 0, orderExact = 0, orderMismatch = 0, nondet = 0, calls = 0;

function runCase({ M, N, K, batch = 1, tA = false, tB = false, acc = false, biasMode = 0, aDt, bDt, cDt, biasDt = DT.f32, padA = 0, padB = 0, padC = 0, bcastB = false }) {
  pool.reset(base);
  const lda = (tA ? M : K) + padA, ldb = (tB ? K : N) + padB, ldc = N + padC;
  const sA = (tA ? K : M) * lda, sB = bcastB ? 0 : (tB ? N : K) * ldb, sC = M * ldc;
  const A = makeTensor(pool, aDt, batch * sA), B = makeTensor(pool, bDt, Math.max(1, batch * sB || (tB ? N : K) * ldb));
  const C = makeTensor(pool, cDt, batch * sC);
  const biasLen = biasMode === 1 ? M : N;
  const bias = biasMode ? makeTensor(pool, biasDt, biasLen) : null;
  const C0 = C.vals.slice();
  const flags = (tA ? 1 : 0) | (tB ? 2 : 0) | (acc ? 4 : 0) | (biasMode << 8);
  const dtypes = aDt | (bDt << 4) | (cDt << 8) | (biasDt << 12);
  // alternate the dynamic split (a zeroed sync block) and the static one (sync = 0)
  const sync = calls++ % 2 === 0 ? pool.sync() : 0;
  pool.call("gemm", flags, dtypes, batch, M, N, K, A.p, lda, sA, B.p, ldb, sB, C.p, ldc, sC, bias ? bias.p : 0, scratch, sync);
  const got = readTensor(pool, C), gotBits = readBits(pool, C);
  // determinism: the same call on one thread (parts = 1) must give identical bits
  if (threads > 1) {
    const es = cDt === DT.f32 ? 4 : 2;
    const after = new Uint8Array(pool.memory.buffer, C.p, C.n * es).slice();
    if (cDt === DT.f32) pool.f32(C.p, C.n).set(C0); else pool.u16(C.p, C.n).set(C0.map((v) => toBits(cDt, v)));
    E.gemm(flags, dtypes, batch, M, N, K, A.p, lda, sA, B.p, ldb, sB, C.p, ldc, sC, bias ? bias.p : 0, scratch, 0, 0, 1);
    const single = new Uint8Array(pool.memory.buffer, C.p, C.n * es);
    if (!single.every((v, i) => v === after[i])) { nondet++; console.log("NONDETERMINISTIC", M, N, K); }
  }
  const ref = [], bound = [], gv = [], gb = [];
  for (let b = 0; b < batch; b++) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0, sa = 0, e = 0;
    const fr = Math.fround;
    for (let k = 0; k < K; k++) {
      const a = A.vals[b * sA + (tA ? k * lda + i : i * lda + k)];
      const bb = B.vals[b * sB + (tB ? j * ldb + k : k * ldb + j)];
      s += a * bb; sa += Math.abs(a * bb); e = fr(e + fr(a * bb));
    }
    const ci = b * sC + i * ldc + j;
    if (acc) { s += C0[ci]; sa += Math.abs(C0[ci]); e = fr(e + C0[ci]); }
    if (biasMode) { const bv = bias.vals[biasMode === 1 ? i : j]; s += bv; sa += Math.abs(bv); e = fr(e + bv); }
    // same-order float32 emulation (exact match expected for K <= KC without FMA)
    if (K <= 256 && variant === "simd") {
      const g = got[ci];
      const ok = cDt === DT.f32 ? (g === e || (Number.isNaN(g) && Number.isNaN(e))) : gotBits[ci] === toBits(cDt, e) || (e === 0 && g === 0);
      if (ok) orderExact++; else orderMismatch++;
    }
    ref.push(s); bound.push((K + 3) * U * sa);
    gv.push(got[ci]); if (gotBits) gb.push(gotBits[ci]);
  }
  // padding columns must be untouched
  let padBad = 0;
  for (let b = 0; b < batch; b++) for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) {
    const ci = b * sC + i * ldc + j;
    if (!(got[ci] === C0[ci] || (Number.isNaN(got[ci]) && Number.isNaN(C0[ci])))) padBad++;
  }
  const r = compare(cDt, gv, gb, ref, bound);
  const name = `M${M} N${N} K${K} b${batch}${tA ? " tA" : ""}${tB ? " tB" : ""}${acc ? " acc" : ""}${biasMode ? " bias" + biasMode : ""} ${["f32", "f16", "bf16"][aDt]}x${["f32", "f16", "bf16"][bDt]}->${["f32", "f16", "bf16"][cDt]}${bcastB ? " bcastB" : ""}`;
  if (r.bad || padBad) { failures++; console.log("FAIL", name, JSON.stringify(r), "padBad", padBad); }
  else passes++;
  return r;
}

setSeed(1);
const dtCombos = [[0, 0, 0], [1, 1, 1], [2, 2, 2], [1, 1, 0], [2, 2, 0], [0, 1, 1], [0, 0, 2]];
let boundaryTotal = 0, exactTotal = 0;
const shapes = [[1, 1, 1], [6, 8, 1], [7, 9, 3], [13, 17, 5], [1, 64, 33], [64, 1, 19], [5, 100, 256], [121, 20, 257], [30, 513, 40], [37, 45, 600], [2, 2000, 3],
  // LeNet's Linear layers (batch 64), blocks split below MC x NC, B panels past B_CAP / nb
  [64, 120, 400], [400, 120, 64], [64, 84, 120], [64, 10, 84], [130, 300, 1100], [9, 40, 2100]];
for (let i = 0; i < 25; i++) shapes.push([randInt(1, 70), randInt(1, 70), randInt(1, 70)]);
for (const [M, N, K] of shapes) {
  for (const [aDt, bDt, cDt] of dtCombos) {
    const tA = rand() < 0.5, tB = rand() < 0.5, acc = rand() < 0.3, biasMode = randInt(0, 2);
    const batch = M * N * K < 20000 ? randInt(1, 3) : 1;
    const r = runCase({ M, N, K, batch, tA, tB, acc, biasMode, aDt, bDt, cDt, biasDt: randInt(0, 2), padA: randInt(0, 3), padB: randInt(0, 3), padC: randInt(0, 2), bcastB: rand() < 0.3 });
    boundaryTotal += r.boundary; exactTotal += r.exact;
  }
}
// K = 0: C = bias (+ C)
runCase({ M: 5, N: 9, K: 0, aDt: 0, bDt: 0, cDt: 0, biasMode: 2, acc: true });
runCase({ M: 5, N: 9, K: 0, aDt: 1, bDt: 1, cDt: 1, biasMode: 1 });

// exhaustive conversions through gemm: C = 1 * B with K = 1
{
  pool.reset(base);
  const N = 65536;
  const one = pool.alloc(4); pool.f32(one, 1)[0] = 1;
  const b16 = pool.alloc(N * 2); const bv = pool.u16(b16, N); for (let i = 0; i < N; i++) bv[i] = i;
  const c32 = pool.alloc(N * 4);
  let bad = 0;
  for (const dt of [DT.f16, DT.bf16]) {
    pool.call("gemm", 0, 0 | (dt << 4) | (0 << 8), 1, 1, N, 1, one, 1, 0, b16, N, 0, c32, N, 0, 0, scratch, pool.sync());
    const c = pool.f32(c32, N);
    const u = new Uint32Array(c.buffer, c32, N);
    for (let i = 0; i < N; i++) {
      const want = dt === DT.f16 ? f16BitsToF64(i) : new Float32Array(new Uint32Array([i << 16]).buffer)[0];
      if (Number.isNaN(want) ? !Number.isNaN(c[i]) : !(c[i] === want)) { if (bad++ < 5) console.log("widen", dt, i.toString(16), c[i], want); }
    }
    void u;
  }
  // narrowing: random f32 bit patterns (all exponents) and the 16-bit boundary region
  const n2 = 1 << 20;
  const b32 = pool.alloc(n2 * 4); const bu = new Uint32Array(pool.memory.buffer, b32, n2); const bf = pool.f32(b32, n2);
  for (let i = 0; i < n2; i++) bu[i] = (rand() * 4294967296) >>> 0;
  for (let i = 0; i < 65536; i++) { bu[i] = (0x33000000 + i * 0x2c0) >>> 0; bu[65536 + i] = 0x477f0000 + i * 0x10; } // f16 subnormal..normal, overflow edge
  const c16 = pool.alloc(n2 * 2);
  for (const dt of [DT.f16, DT.bf16]) {
    pool.call("gemm", 0, 0 | (0 << 4) | (dt << 8), 1, 1, n2, 1, one, 1, 0, b32, n2, 0, c16, n2, 0, 0, scratch, pool.sync());
    const c = pool.u16(c16, n2);
    for (let i = 0; i < n2; i++) {
      const x = bf[i];
      const want = dt === DT.f16 ? f64ToF16Bits(x) : f64ToBf16Bits(x);
      const ok = Number.isNaN(x) ? (dt === DT.f16 ? (c[i] & 0x7c00) === 0x7c00 && (c[i] & 0x3ff) : (c[i] & 0x7f80) === 0x7f80 && (c[i] & 0x7f))
        : c[i] === want || (x === 0 && (c[i] & 0x7fff) === 0);
      if (!ok) { if (bad++ < 5) console.log("narrow", dt, bu[i].toString(16), c[i].toString(16), want.toString(16)); }
    }
  }
  if (bad) { failures++; console.log("FAIL conversions", bad); } else passes++;
}
console.log(`gemm (${variant}, ${threads} threads): ${exactTotal} elements exact/within bound, ${boundaryTotal} at a rounding boundary (accepted)`);
if (threads > 1) {
  console.log(`bitwise identical to the 1-thread result: ${nondet ? "NO (" + nondet + " cases)" : "yes, all cases"}`);
  if (nondet) failures++;
}
if (variant === "simd") {
  console.log(`bit-exact vs same-order float32 emulation (K <= 256): ${orderExact} match, ${orderMismatch} differ`);
  if (orderMismatch) failures++;
}
console.log(`${passes} passed, ${failures} failed`);
await pool.close();
process.exit(failures ? 1 : 0);
