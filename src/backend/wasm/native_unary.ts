/**
 * Native handlers of the activations of recurrent cells and GANs (assembly/kernels/unary.ts):
 * tanh, sigmoid, leakyRelu and their gradients, float32 / float16 / bfloat16, operands of the
 * output's format; strided inputs (an LSTM gate: a narrow of the gate matrix) are gathered first.
 * Also `cat` of contiguous output: a copy per piece (memcpy, or a strided gather).
 */
import type { KernelTensor } from '../backend.js';
import { numel } from '../reference/codec.js';
import { contiguous, fmtOf, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel } from './native.js';
import { gather, withContiguousOperands } from './native_gather.js';
import { elementParts } from './native_rows.js';

const OP = { tanh: 0, sigmoid: 1, leakyRelu: 2 } as const;

/** Relative cost per element (native_rows.ts COST): a float64 exp or tanh. */
const TRANSCENDENTAL_COST = 12;

function slopeOf(op: keyof typeof OP, params: Record<string, unknown>): number {
  return op === 'leakyRelu' ? (params['negativeSlope'] as number) : 0;
}

function unary(op: keyof typeof OP): NativeKernel {
  const run: NativeKernel = (ctx, [x], [o], params) => {
    if (!x || !o || x.dtype !== o.dtype || !contiguous(o)) return false;
    const fmt = fmtOf(o.dtype);
    if (!fmt || (op === 'leakyRelu' && typeof params['negativeSlope'] !== 'number')) return false;
    if (!contiguous(x)) return withContiguousOperands(ctx, [x], o.shape, (xs) => run(ctx, xs, [o], params), contiguous);
    if (unsafeAlias(x, o)) return false;
    const n = numel(o.shape);
    const size = o.dtype.itemsize;
    const px = ctx.address(x);
    const po = ctx.address(o);
    const cost = op === 'leakyRelu' ? 1 : TRANSCENDENTAL_COST;
    const slope = slopeOf(op, params);
    ctx.pool.run(`unary_${fmt}`, elementParts(ctx.pool, n, cost).map(([u0, u1]) => [OP[op], px + u0 * size, po + u0 * size, u1 - u0, slope]));
    return true;
  };
  return run;
}

function unaryGrad(op: keyof typeof OP): NativeKernel {
  const run: NativeKernel = (ctx, [x, g], [o], params) => {
    if (!x || !g || !o || x.dtype !== o.dtype || g.dtype !== o.dtype || !contiguous(o)) return false;
    const fmt = fmtOf(o.dtype);
    if (!fmt || (op === 'leakyRelu' && typeof params['negativeSlope'] !== 'number')) return false;
    if (!contiguous(x) || !contiguous(g)) return withContiguousOperands(ctx, [x, g], o.shape, (xs) => run(ctx, xs, [o], params), contiguous);
    if (unsafeAlias(x, o) || unsafeAlias(g, o)) return false;
    const n = numel(o.shape);
    const size = o.dtype.itemsize;
    const px = ctx.address(x);
    const pg = ctx.address(g);
    const po = ctx.address(o);
    const cost = op === 'leakyRelu' ? 1 : TRANSCENDENTAL_COST;
    const slope = slopeOf(op, params);
    ctx.pool.run(`unary_grad_${fmt}`, elementParts(ctx.pool, n, cost).map(([u0, u1]) => [OP[op], px + u0 * size, pg + u0 * size, po + u0 * size, u1 - u0, slope]));
    return true;
  };
  return run;
}

/** Row copies cat makes on the calling thread at most (one memcpy each) before leaving it to the reference. */
const MAX_CAT_ROW_COPIES = 65536;

/** cat along params.dim into a contiguous output: per piece a memcpy (or gather) of each outer row. */
const cat: NativeKernel = (ctx: NativeContext, inputs: readonly KernelTensor[], [o], params) => {
  const dim = params['dim'];
  if (!o || typeof dim !== 'number' || !contiguous(o) || inputs.some((x) => x.dtype !== o.dtype || unsafeAlias(x, o))) return false;
  const outer = numel(o.shape.slice(0, dim));
  const inner = numel(o.shape.slice(dim + 1));
  const rowElems = o.shape[dim]! * inner;
  if (outer > 1 && (inputs.some((x) => !contiguous(x)) || outer * inputs.length > MAX_CAT_ROW_COPIES)) return false;
  const size = o.dtype.itemsize;
  const u8 = ctx.heap.views().u8;
  let at = 0;
  for (const x of inputs) {
    const piece = x.shape[dim]! * inner;
    if (piece > 0 && outer > 0) {
      const px = ctx.address(x);
      const po = ctx.address(o, at);
      if (outer === 1 && !contiguous(x)) {
        if (!gather(ctx, x, px, po, x.shape)) return false;
      } else {
        for (let r = 0; r < outer; r++) u8.copyWithin(po + r * rowElems * size, px + r * piece * size, px + (r + 1) * piece * size);
      }
    }
    at += piece;
  }
  return true;
};

export const UNARY_KERNELS: Record<string, NativeKernel> = {
  tanh: unary('tanh'),
  sigmoid: unary('sigmoid'),
  leakyRelu: unary('leakyRelu'),
  tanhBackward: unaryGrad('tanh'),
  sigmoidBackward: unaryGrad('sigmoid'),
  leakyReluBackward: unaryGrad('leakyRelu'),
  cat,
};
