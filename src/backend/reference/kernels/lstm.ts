/**
 * The fused LSTM layer kernels (op 'lstmLayerFused', src/nn/lstm_layer.ts) in plain TypeScript: the
 * definition the native one (wasm, assembly/kernels/lstm.ts) is tested against. Gate order i, f, g, o.
 *
 *   lstmForward(gx [T,B,4H], h0 [B,H], c0 [B,H], w [4H,H], [bias [4H]]) -> out [T,B,2H] (h | c),
 *     acts [T,B,5H] (i, f, g, o, tanh(c) of every step)
 *   lstmBackward(gOut [T,B,2H], out, c0, w, acts) -> dGates [T,B,4H], dh0 [B,H], dc0 [B,H],
 *     [dBias [B,4H]: each row's gate gradients summed over the steps, before rounding]
 *
 * Each step rounds as the op-by-op definition (op 'lstmLayer') does: the gate product h w^T
 * (accumulated in float64) is rounded to the storage dtype; the gate inputs, nonlinearities and
 * state update are float32 ops (float64 for float64 tensors), each rounded; h and c are rounded to
 * the storage dtype after every step. The backward's gate gradients are rounded to the storage
 * dtype for its product with w, whose result is rounded too.
 */
import type { DType } from '../../../dtype/dtype.js';
import type { LstmParams } from '../../kernels.js';
import { roundToBfloat16, roundToFloat16 } from '../../../dtype/convert.js';
import { arithmeticRounding, type RefKernel, type RefKernels } from './types.js';

/** Rounding of a value computed in float64 to the storage dtype (through float32 for 16-bit). */
function storageRounding(dt: DType): (x: number) => number {
  if (dt.name === 'float16') return roundToFloat16;
  if (dt.name === 'bfloat16') return roundToBfloat16;
  if (dt.name === 'float32') return Math.fround;
  return (x) => x;
}

const timeOf = (k: number, T: number, reverse: boolean) => (reverse ? T - 1 - k : k);

const lstmForward: RefKernel<LstmParams> = ([gx, h0, c0, w, bias], p) => {
  const [T, B, G] = gx!.shape as [number, number, number];
  const H = G / 4;
  const ar = arithmeticRounding(gx!);
  const rd = storageRounding(gx!.dtype);
  const sigmoid = (x: number) => ar(1 / (1 + Math.exp(-x)));
  const tanh = (x: number) => ar(Math.tanh(x));
  const out = new Float64Array(T * B * 2 * H);
  const acts = new Float64Array(T * B * 5 * H);
  let h = Float64Array.from(h0!.data);
  const c = Float64Array.from(c0!.data);
  const W = w!.data;
  const pre = new Float64Array(4);
  for (let k = 0; k < T; k++) {
    const t = timeOf(k, T, p.reverse);
    const hNext = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      const row = t * B + b;
      for (let n = 0; n < H; n++) {
        for (let q = 0; q < 4; q++) {
          const col = q * H + n;
          let dot = 0;
          for (let j = 0; j < H; j++) dot += h[b * H + j]! * W[col * H + j]!;
          let x = gx!.data[row * G + col]!;
          if (p.hasBias) x = ar(x + bias!.data[col]!);
          pre[q] = ar(x + rd(dot));
        }
        const [i, f, g, o] = [sigmoid(pre[0]!), sigmoid(pre[1]!), tanh(pre[2]!), sigmoid(pre[3]!)];
        const cNew = ar(ar(f * c[b * H + n]!) + ar(i * g));
        const tc = tanh(cNew);
        const hv = rd(ar(o * tc));
        const cv = rd(cNew);
        c[b * H + n] = cv;
        hNext[b * H + n] = hv;
        out[row * 2 * H + n] = hv;
        out[row * 2 * H + H + n] = cv;
        const at = row * 5 * H + n;
        [acts[at], acts[at + H], acts[at + 2 * H], acts[at + 3 * H], acts[at + 4 * H]] = [i, f, g, o, tc];
      }
    }
    h = hNext;
  }
  return [out, acts];
};

const lstmBackward: RefKernel<LstmParams> = ([gOut, out, c0, w, acts], p) => {
  const [T, B, H2] = out!.shape as [number, number, number];
  const H = H2 / 2;
  const ar = arithmeticRounding(out!);
  const rd = storageRounding(out!.dtype);
  const W = w!.data;
  const A = acts!.data;
  const dGates = new Float64Array(T * B * 4 * H);
  const dBias = new Float64Array(B * 4 * H);
  let dhNext: Float64Array | null = null;
  let dcNext: Float64Array | null = null;
  for (let k = T - 1; k >= 0; k--) {
    const t = timeOf(k, T, p.reverse);
    const tPrev = k > 0 ? timeOf(k - 1, T, p.reverse) : -1;
    const dcHere = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      const row = t * B + b;
      for (let n = 0; n < H; n++) {
        const a = (q: number) => A[row * 5 * H + q * H + n]!;
        const [i, f, g, o, tc] = [a(0), a(1), a(2), a(3), a(4)];
        const cPrev = tPrev >= 0 ? out!.data[(tPrev * B + b) * 2 * H + H + n]! : c0!.data[b * H + n]!;
        let dh = gOut!.data[row * 2 * H + n]!;
        if (dhNext) dh = ar(dh + dhNext[b * H + n]!);
        const dcdh = ar(o * ar(1 - ar(tc * tc)));
        let dc = ar(gOut!.data[row * 2 * H + H + n]! + ar(dh * dcdh));
        if (dcNext) dc = ar(dc + dcNext[b * H + n]!);
        const d = [
          ar(dc * ar(g * ar(i * ar(1 - i)))),
          ar(dc * ar(cPrev * ar(f * ar(1 - f)))),
          ar(dc * ar(i * ar(1 - ar(g * g)))),
          ar(dh * ar(tc * ar(o * ar(1 - o)))),
        ];
        for (let q = 0; q < 4; q++) {
          dGates[row * 4 * H + q * H + n] = rd(d[q]!);
          dBias[b * 4 * H + q * H + n] += d[q]!;
        }
        dcHere[b * H + n] = ar(dc * f);
      }
    }
    // dh' = round(dGates w): [B, 4H] x [4H, H]
    const dh = new Float64Array(B * H);
    for (let b = 0; b < B; b++) {
      for (let n = 0; n < H; n++) {
        let dot = 0;
        for (let j = 0; j < 4 * H; j++) dot += dGates[(t * B + b) * 4 * H + j]! * W[j * H + n]!;
        dh[b * H + n] = rd(dot);
      }
    }
    dhNext = dh;
    dcNext = dcHere;
  }
  const grads = [dGates, dhNext!, dcNext!];
  if (p.hasBias) grads.push(dBias);
  return grads;
};

export const lstmKernels = { lstmForward, lstmBackward } satisfies RefKernels;
