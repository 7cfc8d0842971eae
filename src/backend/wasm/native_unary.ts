/**
 * Native handlers of the activations of recurrent cells and GANs (assembly/kernels/unary.ts):
 * tanh, sigmoid, leakyRelu and their gradients, and rsqrt with its gradient (batch norm's
 * 1 / sqrt(var + eps)), float32 / float16 / bfloat16, operands of the output's format; strided
 * inputs (an LSTM gate: a narrow of the gate matrix) are gathered first.
 * Also `cat` of contiguous output: a copy per piece (memcpy, or a strided gather).
 */
import type { KernelTensor } from '../backend.js';
import type { KernelParams, LeakyReluParams } from '../kernels.js';
import { numel } from '../../shape/strides.js';
import { contiguous, fmtOf, unsafeAlias } from './layout.js';
import type { NativeContext, NativeKernel, NativeKernels } from './native.js';
import { gather, withContiguousOperands } from './native_gather.js';
import { COST, elementParts, minPerPart } from './native_rows.js';
import { mapPacked } from '../../shape/packed.js';

const OP = { tanh: 0, sigmoid: 1, leakyRelu: 2, rsqrt: 3 } as const;

/** Relative cost per element (native_rows.ts COST): a float64 exp or tanh. */
const TRANSCENDENTAL_COST = 12;
/** A float64 square root and division. */
const SQRT_COST = 4;

type ActivationKernel = 'tanh' | 'sigmoid' | 'leakyRelu' | 'rsqrt' | 'tanhBackward' | 'sigmoidBackward' | 'leakyReluBackward' | 'rsqrtBackward';

function slopeOf(op: keyof typeof OP, params: KernelParams<ActivationKernel>): number {
  return op === 'leakyRelu' ? (params as LeakyReluParams).negativeSlope : 0;
}

/**
 * An activation (`kernel` unary_<fmt>: operand x) or its gradient (unary_grad_<fmt>: operands x and
 * the incoming gradient g): every operand of the output's format; strided ones gathered first.
 */
function activation(op: keyof typeof OP, kernel: 'unary' | 'unary_grad'): NativeKernel<ActivationKernel> {
  const arity = kernel === 'unary' ? 1 : 2;
  const run: NativeKernel<ActivationKernel> = (ctx, inputs, { 0: o }, params) => {
    const operands = inputs.slice(0, arity);
    if (!o || operands.length !== arity || operands.some((t) => t.dtype !== o.dtype) || !contiguous(o)) return false;
    const fmt = fmtOf(o.dtype);
    if (!fmt || (op === 'leakyRelu' && typeof (params as LeakyReluParams).negativeSlope !== 'number')) return false;
    if (!operands.every(contiguous)) return withContiguousOperands(ctx, operands, o.shape, (xs) => run(ctx, xs, [o], params), contiguous);
    if (operands.some((t) => unsafeAlias(t, o))) return false;
    const size = o.dtype.itemsize;
    const pointers = [...operands.map((t) => ctx.address(t)), ctx.address(o)];
    const cost = op === 'leakyRelu' ? 1 : op === 'rsqrt' ? SQRT_COST : TRANSCENDENTAL_COST;
    const slope = slopeOf(op, params);
    ctx.pool.run(`${kernel}_${fmt}`, mapPacked(elementParts(ctx.pool, numel(o.shape), cost), ({ 0: u0, 1: u1 }) => [OP[op], ...pointers.map((p) => p + u0 * size), u1 - u0, slope]));
    return true;
  };
  return run;
}

/** cat along params.dim into a contiguous output: per piece a memcpy, a strided gather, or copy_rows (a memcpy per outer row, across the threads). */
const cat: NativeKernel<'cat'> = (ctx: NativeContext, inputs: readonly KernelTensor[], { 0: o }, params) => {
  const dim = params.dim;
  if (!o || typeof dim !== 'number' || !contiguous(o) || inputs.some((x) => x.dtype !== o.dtype || unsafeAlias(x, o))) return false;
  const outer = numel(o.shape.slice(0, dim));
  const inner = numel(o.shape.slice(dim + 1));
  const rowElems = o.shape[dim]! * inner;
  if (outer > 1 && inputs.some((x) => !contiguous(x))) return false;
  const size = o.dtype.itemsize;
  let at = 0;
  for (const x of inputs) {
    const piece = x.shape[dim]! * inner;
    if (piece > 0 && outer > 0) {
      const px = ctx.address(x);
      const po = ctx.address(o, at);
      if (outer === 1 && !contiguous(x)) {
        if (!gather(ctx, x, px, po, x.shape)) return false;
      } else if (outer === 1) {
        ctx.heap.views().u8.copyWithin(po, px, px + piece * size);
      } else {
        const parts = ctx.pool.split(outer, Math.ceil(minPerPart(COST.light) / piece));
        ctx.pool.run('copy_rows', mapPacked(parts, ({ 0: r0, 1: r1 }) => [px, piece * size, po, rowElems * size, piece * size, r0, r1]));
      }
    }
    at += piece;
  }
  return true;
};

export const UNARY_KERNELS = {
  tanh: activation('tanh', 'unary'),
  sigmoid: activation('sigmoid', 'unary'),
  leakyRelu: activation('leakyRelu', 'unary'),
  rsqrt: activation('rsqrt', 'unary'),
  tanhBackward: activation('tanh', 'unary_grad'),
  sigmoidBackward: activation('sigmoid', 'unary_grad'),
  leakyReluBackward: activation('leakyRelu', 'unary_grad'),
  rsqrtBackward: activation('rsqrt', 'unary_grad'),
  cat,
} satisfies NativeKernels;
