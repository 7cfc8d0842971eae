/**
 * Convolution and pooling ops (NCHW). conv2d has two gradient kernels, conv2dBackwardInput (which is
 * also convTranspose2d's forward) and conv2dBackwardWeight; each is an op with its own backward, so
 * convTranspose2d is differentiable through the same three kernels.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { Conv2dParams, Pool2dParams } from '../backend/kernels.js';
import { apply } from './dispatch.js';
import { isGradEnabled } from '../autograd/mode.js';
import { defineOp } from './registry.js';
import { resultType } from '../dtype/dtype.js';
import { castTo, recastIfFreed, shapeStr } from './util.js';
import { mapPacked } from '../shape/packed.js';

/** The convolution ops' params: their kernels' (src/backend/kernels.ts). */
export type ConvParams = Conv2dParams;

/** Output length of a convolution or pooling window sweep along one axis (PyTorch's formula). */
export function slidingOutput(size: number, kernel: number, stride: number, pad: number, dilation: number, ceilMode = false): number {
  const span = size + 2 * pad - dilation * (kernel - 1) - 1;
  let out = Math.floor((span + (ceilMode ? stride - 1 : 0)) / stride) + 1;
  if (ceilMode && (out - 1) * stride >= size + pad) out--;
  return out;
}

function checkConvInputs(op: string, x: Tensor, w: Tensor, b: Tensor | undefined, groups: number, wInChannelsAxis: 0 | 1): void {
  if (x.ndim !== 4) throw new RangeError(`${op}: expected a 4-D input [N,C,H,W], got ${shapeStr(x.shape)}`);
  if (w.ndim !== 4) throw new RangeError(`${op}: expected a 4-D weight, got ${shapeStr(w.shape)}`);
  const perGroup = w.shape[wInChannelsAxis]!;
  const expected = wInChannelsAxis === 1 ? perGroup * groups : perGroup;
  if (x.shape[1] !== expected) {
    throw new RangeError(`${op}: input ${shapeStr(x.shape)} has ${x.shape[1]} channels but weight ${shapeStr(w.shape)} with groups=${groups} expects ${expected}`);
  }
  const outCh = wInChannelsAxis === 1 ? w.shape[0]! : w.shape[1]! * groups;
  if (w.shape[0]! % groups !== 0) throw new RangeError(`${op}: weight ${shapeStr(w.shape)}: ${w.shape[0]} channels are not divisible by groups=${groups}`);
  if (b && (b.ndim !== 1 || b.shape[0] !== outCh)) throw new RangeError(`${op}: bias ${shapeStr(b.shape)} does not match ${outCh} output channels`);
}

const promote = (xs: readonly Tensor[]) => {
  const dt = resultType(xs);
  return mapPacked(xs, (x) => castTo(x, dt));
};

defineOp<ConvParams>({
  name: 'conv2d', autocast: 'lower', prepare: promote, recastsWeights: true,
  infer: ({ 0: x, 1: w, 2: b }, p) => {
    checkConvInputs('conv2d', x!, w!, b, p.groups, 1);
    const [N, , H, W] = x!.shape as number[];
    const [O, , KH, KW] = w!.shape as number[];
    const OH = slidingOutput(H!, KH!, p.stride[0], p.padding[0], p.dilation[0]);
    const OW = slidingOutput(W!, KW!, p.stride[1], p.padding[1], p.dilation[1]);
    if (OH < 1 || OW < 1) {
      throw new RangeError(`conv2d: input ${shapeStr(x!.shape)} with padding ${shapeStr(p.padding)} is smaller than the (dilated) kernel ${KH}x${KW}`);
    }
    return { shape: [N!, O!, OH, OW], dtype: x!.dt };
  },
  backward: (g, { inputs: { 0: x, 1: w, 2: b }, params }) => {
    let dx: Tensor | null = null;
    if (x!.requiresGrad) {
      // autocast may have freed its 16-bit weight cast after the forward: made again here, freed after use
      const wv = recastIfFreed(w!);
      dx = apply('conv2dBackwardInput', [g, wv], { ...params, inputShape: x!.shape });
      if (wv !== w && !isGradEnabled()) wv.dispose();
    }
    return [
      dx,
      w!.requiresGrad ? apply('conv2dBackwardWeight', [x!, g], { ...params, weightShape: w!.shape }) : null,
      b?.requiresGrad ? apply('sum', [g], { dims: [0, 2, 3], keepdim: false }) : null,
    ];
  },
});

defineOp<ConvParams & { inputShape: readonly number[] }>({
  name: 'conv2dBackwardInput', autocast: 'lower', prepare: promote,
  infer: ({ 0: g }, p) => ({ shape: p.inputShape, dtype: g!.dt }),
  backward: (grad, { inputs: { 0: g, 1: w }, params }) => [
    g!.requiresGrad ? apply('conv2d', [grad, w!], params) : null,
    w!.requiresGrad ? apply('conv2dBackwardWeight', [grad, g!], { ...params, weightShape: w!.shape }) : null,
  ],
});

defineOp<ConvParams & { weightShape: readonly number[] }>({
  name: 'conv2dBackwardWeight', autocast: 'lower', prepare: promote,
  infer: ({ 0: x }, p) => ({ shape: p.weightShape, dtype: x!.dt }),
  backward: (grad, { inputs: { 0: x, 1: g }, params }) => [
    x!.requiresGrad ? apply('conv2dBackwardInput', [g!, grad], { ...params, inputShape: x!.shape }) : null,
    g!.requiresGrad ? apply('conv2d', [x!, grad], params) : null,
  ],
});

/** The pooling ops' params: their kernels', and ceilMode (which only sizes the output). */
export interface PoolParams extends Pool2dParams {
  ceilMode: boolean;
}

function poolShape(op: string, x: Tensor, p: PoolParams): number[] {
  if (x.ndim !== 3 && x.ndim !== 4) throw new RangeError(`${op}: expected a 3-D or 4-D input, got ${shapeStr(x.shape)}`);
  for (let i = 0; i < 2; i++) {
    const eff = p.dilation[i]! * (p.kernel[i]! - 1) + 1;
    if (p.padding[i]! * 2 > eff) {
      throw new RangeError(`${op}: padding ${shapeStr(p.padding)} should be at most half of the kernel ${shapeStr(p.kernel)}`);
    }
  }
  const H = x.shape[x.ndim - 2]!;
  const W = x.shape[x.ndim - 1]!;
  const OH = slidingOutput(H, p.kernel[0], p.stride[0], p.padding[0], p.dilation[0], p.ceilMode);
  const OW = slidingOutput(W, p.kernel[1], p.stride[1], p.padding[1], p.dilation[1], p.ceilMode);
  if (OH < 1 || OW < 1) throw new RangeError(`${op}: input ${shapeStr(x.shape)} is too small for kernel ${shapeStr(p.kernel)}`);
  return [...x.shape.slice(0, -2), OH, OW];
}

const floatOnly = (op: string) => (xs: readonly Tensor[]) => {
  if (!xs[0]!.dt.isFloating) throw new TypeError(`${op}: expected a floating point input, got ${xs[0]!.dtype}`);
  return [...xs];
};

defineOp<PoolParams>({
  name: 'maxPool2d', autocast: 'none', prepare: floatOnly('maxPool2d'),
  infer: ({ 0: x }, p) => ({ shape: poolShape('maxPool2d', x!, p), dtype: x!.dt }),
  backward: (g, { inputs: { 0: x }, params }) => [apply('maxPool2dBackward', [x!, g], params)],
});
defineOp<PoolParams>({ name: 'maxPool2dBackward', autocast: 'none', infer: ({ 0: x, 1: g }) => ({ shape: x!.shape, dtype: g!.dt }) });

defineOp<PoolParams>({
  name: 'avgPool2d', autocast: 'none', prepare: floatOnly('avgPool2d'),
  infer: ({ 0: x }, p) => ({ shape: poolShape('avgPool2d', x!, p), dtype: x!.dt }),
  backward: (g, { inputs: { 0: x }, params }) => [apply('avgPool2dBackward', [g], { ...params, inputShape: x!.shape })],
});
defineOp<PoolParams & { inputShape: readonly number[] }>({
  name: 'avgPool2dBackward', autocast: 'none', infer: ({ 0: g }, p) => ({ shape: p.inputShape, dtype: g!.dt }),
  backward: (grad, { params }) => [apply('avgPool2d', [grad], params)],
});

defineOp<{ outputSize: [number, number] }>({
  name: 'adaptiveAvgPool2d', autocast: 'none', prepare: floatOnly('adaptiveAvgPool2d'),
  infer: ({ 0: x }, p) => {
    if (x!.ndim !== 3 && x!.ndim !== 4) throw new RangeError(`adaptiveAvgPool2d: expected a 3-D or 4-D input, got ${shapeStr(x!.shape)}`);
    return { shape: [...x!.shape.slice(0, -2), ...p.outputSize], dtype: x!.dt };
  },
  backward: (g, { inputs: { 0: x } }) => [apply('adaptiveAvgPool2dBackward', [g], { inputShape: x!.shape })],
});
defineOp<{ inputShape: readonly number[] }>({
  name: 'adaptiveAvgPool2dBackward', autocast: 'none', infer: ({ 0: g }, p) => ({ shape: p.inputShape, dtype: g!.dt }),
});
