/**
 * Adaptive average pooling over float32, float16 and bfloat16 storage (ResNet's global average
 * pool), forward and backward, as the reference kernels (src/backend/reference/kernels/pool.ts)
 * define them: output (oh, ow) of an H x W plane averages rows floor(oh H / OH) .. ceil((oh+1) H /
 * OH) and the columns likewise, the windows overlapping where the sizes do not divide. Each value
 * is accumulated in float64 in the reference's order (window rows, then columns; for the gradient,
 * the windows holding an input in increasing order) and rounded once through float32, so results
 * are the reference's bit for bit.
 *
 *   adaptive_avgpool_<fmt>(x, y, H, W, OH, OW, p0, p1)        planes p0..p1 of contiguous
 *   adaptive_avgpool_grad_<fmt>(gy, dx, H, W, OH, OW, p0, p1)  [planes, H, W] / [planes, OH, OW]
 */
import { F32, F16, BF16, shiftOf, load1, store1 } from './convert16';

// @ts-ignore: decorator
@inline function winStart(i: i32, n: i32, on: i32): i32 {
  return <i32>((<i64>i * <i64>n) / <i64>on);
}
// @ts-ignore: decorator
@inline function winEnd(i: i32, n: i32, on: i32): i32 {
  return <i32>(((<i64>(i + 1)) * <i64>n + <i64>on - 1) / <i64>on);
}

// @ts-ignore: decorator
@inline function forward(fmt: i32, x: usize, y: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  const sh = shiftOf(fmt);
  for (let p = p0; p < p1; p++) {
    const xp = x + ((<usize>p * <usize>H * <usize>W) << sh);
    const yp = y + ((<usize>p * <usize>OH * <usize>OW) << sh);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = winStart(oh, H, OH);
      const h1 = winEnd(oh, H, OH);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = winStart(ow, W, OW);
        const w1 = winEnd(ow, W, OW);
        const weight: f64 = 1.0 / <f64>((h1 - h0) * (w1 - w0));
        let acc: f64 = 0;
        for (let ih = h0; ih < h1; ih++) {
          const row = xp + ((<usize>ih * <usize>W) << sh);
          for (let iw = w0; iw < w1; iw++) acc += <f64>load1(fmt, row + (<usize>iw << sh)) * weight;
        }
        store1(fmt, yp + ((<usize>(oh * OW + ow)) << sh), <f32>acc);
      }
    }
  }
}

// @ts-ignore: decorator
@inline function backward(fmt: i32, gy: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  const sh = shiftOf(fmt);
  for (let p = p0; p < p1; p++) {
    const gp = gy + ((<usize>p * <usize>OH * <usize>OW) << sh);
    const dp = dx + ((<usize>p * <usize>H * <usize>W) << sh);
    // the windows holding row ih are a run of oh (windows advance monotonically): find it once per row
    let ohFirst = 0;
    for (let ih = 0; ih < H; ih++) {
      while (winEnd(ohFirst, H, OH) <= ih) ohFirst++;
      let owFirst = 0;
      for (let iw = 0; iw < W; iw++) {
        while (winEnd(owFirst, W, OW) <= iw) owFirst++;
        let acc: f64 = 0;
        for (let oh = ohFirst; oh < OH && winStart(oh, H, OH) <= ih; oh++) {
          const rows = <f64>(winEnd(oh, H, OH) - winStart(oh, H, OH));
          for (let ow = owFirst; ow < OW && winStart(ow, W, OW) <= iw; ow++) {
            const weight: f64 = 1.0 / (rows * <f64>(winEnd(ow, W, OW) - winStart(ow, W, OW)));
            acc += <f64>load1(fmt, gp + ((<usize>(oh * OW + ow)) << sh)) * weight;
          }
        }
        store1(fmt, dp + ((<usize>(ih * W + iw)) << sh), <f32>acc);
      }
    }
  }
}

export function adaptive_avgpool_f32(x: usize, y: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  forward(F32, x, y, H, W, OH, OW, p0, p1);
}
export function adaptive_avgpool_f16(x: usize, y: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  forward(F16, x, y, H, W, OH, OW, p0, p1);
}
export function adaptive_avgpool_bf16(x: usize, y: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  forward(BF16, x, y, H, W, OH, OW, p0, p1);
}
export function adaptive_avgpool_grad_f32(gy: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  backward(F32, gy, dx, H, W, OH, OW, p0, p1);
}
export function adaptive_avgpool_grad_f16(gy: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  backward(F16, gy, dx, H, W, OH, OW, p0, p1);
}
export function adaptive_avgpool_grad_bf16(gy: usize, dx: usize, H: i32, W: i32, OH: i32, OW: i32, p0: i32, p1: i32): void {
  backward(BF16, gy, dx, H, W, OH, OW, p0, p1);
}
