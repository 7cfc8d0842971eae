// Float64 references and 16-bit encodings for the kernel tests.
export const DT = { f32: 0, f16: 1, bf16: 2 };

function roundHalfEven(q) {
  const f = Math.floor(q), d = q - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
/** Round a float64 to float16 bits (RNE, overflow -> Inf, subnormals, NaN -> 0x7e00). */
export function f64ToF16Bits(x) {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  let a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24); // 0x400 = smallest normal, fine
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) { m = 0; e++; }
  return sign | ((e + 15) << 10) | m;
}
export function f16BitsToF64(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
/** Round a float64 to bfloat16 bits (RNE, overflow -> Inf, NaN -> 0x7fc0). */
export function f64ToBf16Bits(x) {
  if (Number.isNaN(x)) return 0x7fc0;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= (2 - 2 ** -8) * 2 ** 127) return sign | 0x7f80;
  if (a < 2 ** -126) return sign | roundHalfEven(a / 2 ** -133);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 128);
  if (m === 128) { m = 0; e++; }
  return sign | ((e + 127) << 7) | m;
}
const f32b = new Float32Array(1), u32b = new Uint32Array(f32b.buffer);
export function bf16BitsToF64(h) { u32b[0] = h << 16; return f32b[0]; }
export function toBits(dt, x) { return dt === DT.f16 ? f64ToF16Bits(x) : f64ToBf16Bits(x); }
export function fromBits(dt, h) { return dt === DT.f16 ? f16BitsToF64(h) : bf16BitsToF64(h); }
/** Value spacing (ulp) of the 16-bit/f32 format at x. */
export function ulp(dt, x) {
  const a = Math.abs(x);
  const [mant, emin] = dt === DT.f16 ? [10, -14] : dt === DT.bf16 ? [7, -126] : [23, -126];
  const e = Math.max(emin, a > 0 ? Math.floor(Math.log2(a)) : emin);
  return 2 ** (e - mant);
}

let seed = 12345;
export function setSeed(s) { seed = s >>> 0; }
export function rand() { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return seed / 4294967296; }
export function randInt(lo, hi) { return lo + Math.floor(rand() * (hi - lo + 1)); }

/** Host-side tensor: float64 values exactly representable in dtype dt, written to wasm memory at p. */
export function makeTensor(pool, dt, n, gen = () => rand() * 2 - 1) {
  const es = dt === DT.f32 ? 4 : 2;
  const p = pool.alloc(n * es + 16);
  const vals = new Float64Array(n);
  if (dt === DT.f32) {
    const v = pool.f32(p, n);
    for (let i = 0; i < n; i++) { v[i] = gen(i); vals[i] = v[i]; }
  } else {
    const v = pool.u16(p, n);
    for (let i = 0; i < n; i++) { v[i] = toBits(dt, gen(i)); vals[i] = fromBits(dt, v[i]); }
  }
  return { p, vals, dt, n };
}
export function readTensor(pool, t) {
  if (t.dt === DT.f32) return Float64Array.from(pool.f32(t.p, t.n));
  const v = pool.u16(t.p, t.n);
  return Float64Array.from(v, (h) => fromBits(t.dt, h));
}
export function readBits(pool, t) { return t.dt === DT.f32 ? null : Uint16Array.from(pool.u16(t.p, t.n)); }

/**
 * Compare kernel output `got` (values) / `gotBits` against exact float64 `ref`,
 * with `bound[i]` = accumulation-error bound (float32 accumulation) of element i.
 * f32 output: |got - ref| <= bound + ulp. 16-bit output: bits must equal the
 * once-rounded float64 reference unless ref is within `bound` of a rounding
 * boundary (then either neighbour is accepted).
 */
export function compare(dt, got, gotBits, ref, bound) {
  // (16-bit: "boundary" counts results that differ from the once-rounded exact
  // value but lie within the float32 accumulation-error bound of it)
  let bad = 0, exact = 0, boundary = 0, maxErr = 0, firstBad = null;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    if (dt === DT.f32) {
      const err = Math.abs(got[i] - r);
      maxErr = Math.max(maxErr, err / (bound[i] + 1e-30));
      if (!(err <= bound[i] + ulp(DT.f32, r)) && !(Number.isNaN(r) && Number.isNaN(got[i]))) { bad++; firstBad ??= { i, got: got[i], ref: r, bound: bound[i] }; }
      else exact++;
    } else {
      const want = toBits(dt, r);
      if (gotBits[i] === want || (Number.isNaN(r) && Number.isNaN(got[i]))) { exact++; continue; }
      const lo = toBits(dt, r - bound[i]), hi = toBits(dt, r + bound[i]);
      const g = gotBits[i];
      const gv = fromBits(dt, g);
      if (g === lo || g === hi || (gv >= fromBits(dt, lo) && gv <= fromBits(dt, hi))) { boundary++; continue; }
      bad++; firstBad ??= { i, got: got[i], gotBits: g, want, ref: r, bound: bound[i] };
    }
  }
  return { bad, exact, boundary, maxErrOverBound: maxErr, firstBad };
}
