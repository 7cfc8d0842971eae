// AssemblyScript entry of tools/check-lstm-gates.mjs (compiled by that script, not part of the kernels):
// over a range of float32 patterns, compares assembly/kernels/lstm_gates.ts's short sigmoid / tanh
// with the full-length float64 ones (transcendental.ts) they must reproduce.
import { sigmoidShort, tanhShort, acceptedLanes, sigmoid4, tanh4, SIGMOID_TOL, TANH_TOL } from '../assembly/kernels/lstm_gates';
import { sigmoidV, tanhV, lo64, hi64, join32 } from '../assembly/kernels/transcendental';

/** Lanes whose short value passed the rounding test. */
export let accepted: u64 = 0;
/** Lanes that passed the test with a short value that rounds differently from the full-length one (must be 0). */
export let wrongAccepted: u64 = 0;
/** Lanes where sigmoid4 / tanh4 (what lstm.ts runs) differ from the full-length value (must be 0). */
export let wrongFinal: u64 = 0;
/** The first pattern counted in wrongAccepted or wrongFinal (valid when one of them is nonzero). */
export let firstWrong: u32 = 0;

/**
 * fn 0: sigmoid, 1: tanh. Patterns start .. start + count - 1 (count a multiple of 4).
 * tolScale scales the acceptance tolerance (1 = the kernels'; 0 = no test at all, the negative
 * control: wrongAccepted must then come out nonzero).
 */
export function check(fn: i32, tolScale: f64, start: u32, count: u32): void {
  const tol = (fn == 0 ? SIGMOID_TOL : TANH_TOL) * tolScale;
  for (let i: u32 = 0; i < count; i += 4) {
    const p = start + i;
    const v = i32x4(p, p + 1, p + 2, p + 3);
    const lo = fn == 0 ? sigmoidShort(lo64(v)) : tanhShort(lo64(v));
    const hi = fn == 0 ? sigmoidShort(hi64(v)) : tanhShort(hi64(v));
    const full = fn == 0 ? join32(sigmoidV(lo64(v)), sigmoidV(hi64(v))) : join32(tanhV(lo64(v)), tanhV(hi64(v)));
    const final = fn == 0 ? sigmoid4(v) : tanh4(v);
    const ok = acceptedLanes(lo, hi, tol);
    const wrongA = i32x4.bitmask(v128.andnot(ok, i32x4.eq(join32(lo, hi), full)));
    const wrongF = i32x4.bitmask(v128.not(i32x4.eq(final, full)));
    accepted += <u64>popcnt(i32x4.bitmask(ok));
    if ((wrongA | wrongF) != 0) {
      if (wrongAccepted + wrongFinal == 0) firstWrong = p + <u32>ctz(wrongA | wrongF);
      wrongAccepted += <u64>popcnt(wrongA);
      wrongFinal += <u64>popcnt(wrongF);
    }
  }
}
