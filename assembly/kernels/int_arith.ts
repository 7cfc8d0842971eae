/**
 * int32 addition and subtraction (a BatchNorm's batch counter, index arithmetic), in the rows layout
 * of the float kernels (elementwise.ts: `<op>_<fmt>` and `<op>s_<fmt>`). The reference computes a
 * +- b exactly in float64 and stores it into an Int32Array, which wraps modulo 2^32: the same bits
 * as wrapping int32 arithmetic here.
 *
 *   add_i32 / sub_i32(a, b, out, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi)
 *   adds_i32 / subs_i32(a, s, out, r0, r1, n1, inner, as0, as1, swap)      s: an int32 scalar
 */
const ADD: i32 = 0;

// @ts-ignore: decorator
@inline function op1(op: i32, a: i32, b: i32): i32 {
  return op == ADD ? a + b : a - b;
}

// @ts-ignore: decorator
@inline function row(op: i32, pa: usize, pb: usize, po: usize, inner: i32, ai: i32, bi: i32): void {
  let j = 0;
  if (ai != 0 && bi != 0) {
    for (; j + 4 <= inner; j += 4) {
      const off = <usize>j << 2;
      const a = v128.load(pa + off);
      const b = v128.load(pb + off);
      v128.store(po + off, op == ADD ? i32x4.add(a, b) : i32x4.sub(a, b));
    }
  }
  for (; j < inner; j++) {
    const a = load<i32>(pa + ((<usize>(j * ai)) << 2));
    const b = load<i32>(pb + ((<usize>(j * bi)) << 2));
    store<i32>(po + (<usize>j << 2), op1(op, a, b));
  }
}

// @ts-ignore: decorator
@inline function rows(
  op: i32, a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32,
  as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32,
): void {
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const pa = a + ((<usize>i0 * <usize>as0 + <usize>i1 * <usize>as1) << 2);
    const pb = b + ((<usize>i0 * <usize>bs0 + <usize>i1 * <usize>bs1) << 2);
    row(op, pa, pb, o + ((<usize>r * <usize>inner) << 2), inner, ai, bi);
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

// @ts-ignore: decorator
@inline function scalarRows(op: i32, a: usize, s: i32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  let i0 = r0 / n1;
  let i1 = r0 % n1;
  for (let r = r0; r < r1; r++) {
    const pa = a + ((<usize>i0 * <usize>as0 + <usize>i1 * <usize>as1) << 2);
    const po = o + ((<usize>r * <usize>inner) << 2);
    for (let j = 0; j < inner; j++) {
      const v = load<i32>(pa + (<usize>j << 2));
      store<i32>(po + (<usize>j << 2), swap != 0 ? op1(op, s, v) : op1(op, v, s));
    }
    if (++i1 == n1) {
      i1 = 0;
      i0++;
    }
  }
}

export function add_i32(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  rows(ADD, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function sub_i32(a: usize, b: usize, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, ai: i32, bs0: i32, bs1: i32, bi: i32): void {
  rows(1, a, b, o, r0, r1, n1, inner, as0, as1, ai, bs0, bs1, bi);
}
export function adds_i32(a: usize, s: i32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(ADD, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
export function subs_i32(a: usize, s: i32, o: usize, r0: i32, r1: i32, n1: i32, inner: i32, as0: i32, as1: i32, swap: i32): void {
  scalarRows(1, a, s, o, r0, r1, n1, inner, as0, as1, swap);
}
