/**
 * A counter-based random stream: the value at element `index` is a pure function of (seed, index),
 * with 32-bit integer arithmetic only (multiplication modulo 2^32, shifts, xor), so TypeScript
 * (Math.imul), AssemblyScript (i32 mul) and WGSL (u32 mul) compute the same bits.
 *
 * Attention dropout uses it: the composite definition builds its keep mask with it and the fused
 * kernels regenerate the same mask tile by tile, in the forward and again in the backward, without
 * storing it (FlashAttention's dropout).
 *
 *   x = fmix32(index * 0x9E3779B9 + seed0)    (a bijection of the index for a fixed seed0)
 *   x = fmix32(x ^ seed1)
 *   keep(index) = (x >>> 8) >= threshold,  threshold = ceil(p * 2^24)  (keep probability 1 - p)
 *
 * fmix32 is MurmurHash3's finaliser. Indices are taken modulo 2^32.
 */

/** MurmurHash3's 32-bit finaliser: every input bit affects every output bit. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The stream's uint32 at `index` for the seed (seed0, seed1). */
export function counterHash(seed0: number, seed1: number, index: number): number {
  const x = fmix32((Math.imul(index >>> 0, 0x9e3779b9) + seed0) >>> 0);
  return fmix32((x ^ seed1) >>> 0);
}

/** The 24-bit threshold of a drop probability p in [0, 1): an element is kept when (hash >>> 8) >= it. */
export function dropoutThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropoutThreshold: p must be in [0, 1), got ${p}`);
  return Math.ceil(p * 2 ** 24);
}

/** Whether element `index` is kept (not dropped). */
export function dropoutKeep(seed0: number, seed1: number, threshold: number, index: number): boolean {
  return counterHash(seed0, seed1, index) >>> 8 >= threshold;
}
