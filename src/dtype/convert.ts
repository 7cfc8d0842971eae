/**
 * Bit-exact conversions between float32 and the two 16-bit float formats.
 *
 * Narrowing rounds to nearest, ties to even, with float16 subnormals, overflow to ±Inf,
 * -0 kept and NaN kept NaN (quieted). Widening is exact. Everything works on typed arrays
 * through a Uint32 view of the float32 bits: no per-element objects.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 bit pattern -> float16 bit pattern, round to nearest even. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | (mant === 0 ? 0x7c00 : 0x7e00 | (mant >>> 13));
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero) in float16: shift the full significand right, rounding once.
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal: rounds to ±0
    const sig = mant | 0x800000;
    const half = 1 << (shift - 1);
    const rem = sig & ((1 << shift) - 1);
    let r = sig >>> shift;
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++; // a carry into the exponent gives Inf, as it should
  return sign | r;
}

/** float32 bit pattern -> bfloat16 bit pattern, round to nearest even. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40; // NaN: keep sign, make quiet
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  const bits = new Uint32Array(table.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13);
    else if (exp !== 0) bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else table[h] = (sign ? -1 : 1) * mant * 2 ** -24; // subnormal or zero, exact in float32
  }
  return table;
}

/** Every float16 value as float32, indexed by its bit pattern. */
export const F16_TO_F32: Float32Array = buildF16Table();

export function float16ToFloat32<T extends Float32Array<ArrayBufferLike> = Float32Array>(src: Uint16Array<ArrayBufferLike>, dst: T = new Float32Array(src.length) as T): T {
  for (let i = 0; i < src.length; i++) dst[i] = F16_TO_F32[src[i]!]!;
  return dst;
}

export function bfloat16ToFloat32<T extends Float32Array<ArrayBufferLike> = Float32Array>(src: Uint16Array<ArrayBufferLike>, dst: T = new Float32Array(src.length) as T): T {
  const out = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
  return dst;
}

export function float32ToFloat16<T extends Uint16Array<ArrayBufferLike> = Uint16Array>(src: Float32Array<ArrayBufferLike>, dst: T = new Uint16Array(src.length) as T): T {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToF16Bits(bits[i]!);
  return dst;
}

export function float32ToBfloat16<T extends Uint16Array<ArrayBufferLike> = Uint16Array>(src: Float32Array<ArrayBufferLike>, dst: T = new Uint16Array(src.length) as T): T {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToBf16Bits(bits[i]!);
  return dst;
}

/** A JS number rounded to float16 (through float32, as a float32 op would) and widened back. */
export function roundToFloat16(x: number): number {
  f32[0] = x;
  return F16_TO_F32[f32BitsToF16Bits(u32[0]!)]!;
}

/** A JS number rounded to bfloat16 (through float32) and widened back. */
export function roundToBfloat16(x: number): number {
  f32[0] = x;
  u32[0] = f32BitsToBf16Bits(u32[0]!) << 16;
  return f32[0];
}
