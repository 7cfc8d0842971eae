/**
 * Error messages. From the issue: "Shape errors name the op and both shapes; dtype errors name the
 * dtypes; bad arguments (dim out of range, stride 0, negative padding) say what was given and what
 * is allowed." One group of tests per class, plus host-data and lifetime errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';

const F = mx.nn.functional;
const i32 = (data: number[] | number) => mx.tensor(data, { dtype: 'int32' });
const z = (shape: number[], dtype: mx.DTypeName = 'float32') => mx.zeros(shape, { dtype });

/** assert.throws with the error class and a message regex. */
function throwsWith(fn: () => unknown, cls: new (...a: any[]) => Error, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

/* ------------------------------------------------------------------ shape errors: op and both shapes */

test('shape: matmul names both shapes exactly', () => {
  assert.throws(() => mx.matmul(z([64, 1568]), z([6272, 10])), { name: 'RangeError', message: 'matmul: cannot multiply [64,1568] by [6272,10]' });
  assert.throws(() => z([64, 1568]).matmul(z([6272, 10])), { message: 'matmul: cannot multiply [64,1568] by [6272,10]' });
  // batched, with non-broadcastable batch dims, and 1-D operands
  assert.throws(() => mx.matmul(z([2, 3, 4]), z([3, 4, 5])), { message: 'matmul: cannot multiply [2,3,4] by [3,4,5]' });
  assert.throws(() => mx.matmul(z([3]), z([4, 2])), { message: 'matmul: cannot multiply [3] by [4,2]' });
  throwsWith(() => mx.matmul(z([]), z([2])), RangeError, /matmul: .*at least 1 dimension.*\[\] and \[2\]/);
  throwsWith(() => mx.bmm(z([2, 3, 4]), z([2, 5, 6])), RangeError, /^bmm: cannot multiply \[2,3,4\] by \[2,5,6\]$/);
  throwsWith(() => mx.mm(z([2, 3]), z([5, 6])), RangeError, /cannot multiply \[2,3\] by \[5,6\]/);
  throwsWith(() => F.linear(z([2, 3]), z([4, 5])), RangeError, /^linear: input \[2,3\] does not match weight \[4,5\]/);
});

test('shape: broadcasting failures name the op and both shapes', () => {
  throwsWith(() => z([2, 3]).add(z([4])), RangeError, /^add: shapes \[2,3\] and \[4\] cannot be broadcast together$/);
  throwsWith(() => mx.mul(z([2, 3]), z([3, 2])), RangeError, /^mul: shapes \[2,3\] and \[3,2\] cannot be broadcast together$/);
  throwsWith(() => mx.sub(z([5]), z([2, 4])), RangeError, /^sub: .*\[5\].*\[2,4\]/);
  throwsWith(() => mx.maximum(z([2]), z([3])), RangeError, /^maximum: .*\[2\].*\[3\]/);
  throwsWith(() => mx.where(mx.tensor([true, false]), z([3]), 0), RangeError, /^where: .*\[2\].*\[3\]/);
  throwsWith(() => z([2, 3]).expand(4, 3), RangeError, /expand: .*\(4\).*\(2\).*\[4,3\].*\[2,3\]/);
  throwsWith(() => z([2, 3]).expand(3), RangeError, /expand: target \[3\] has fewer dimensions than the tensor \[2,3\]/);
});

test('shape: conv2d channel mismatch names the input and weight shapes', () => {
  throwsWith(() => F.conv2d(z([1, 3, 5, 5]), z([4, 2, 3, 3])), RangeError, /^conv2d: input \[1,3,5,5\] has 3 channels but weight \[4,2,3,3\] with groups=1 expects 2$/);
  throwsWith(() => F.conv2d(z([1, 4, 5, 5]), z([4, 1, 3, 3]), null, { groups: 2 }), RangeError, /conv2d: input \[1,4,5,5\].*weight \[4,1,3,3\].*groups=2 expects 2/);
  throwsWith(() => F.conv2d(z([3, 5, 5]), z([4, 3, 3, 3])), RangeError, /conv2d: expected a 4-D input \[N,C,H,W\], got \[3,5,5\]/);
  throwsWith(() => F.conv2d(z([1, 3, 5, 5]), z([4, 3, 3])), RangeError, /conv2d: expected a 4-D weight, got \[4,3,3\]/);
  throwsWith(() => F.conv2d(z([1, 3, 5, 5]), z([4, 3, 3, 3]), z([5])), RangeError, /conv2d: bias \[5\] does not match 4 output channels/);
  throwsWith(() => F.conv2d(z([1, 3, 2, 2]), z([4, 3, 3, 3])), RangeError, /conv2d: input \[1,3,2,2\].*smaller than the \(dilated\) kernel 3x3/);
  throwsWith(() => F.convTranspose2d(z([1, 3, 5, 5]), z([4, 3, 3, 3])), RangeError, /convTranspose2d: input \[1,3,5,5\] has 3 channels but weight \[4,3,3,3\] expects 4/);
  throwsWith(() => F.convTranspose2d(z([1, 2, 3, 3]), z([2, 3, 2, 2]), z([2])), RangeError, /convTranspose2d: bias \[2\] does not match 3 output channels/);
});

test('shape: cat, stack, reshape, view', () => {
  throwsWith(() => mx.cat([z([2, 3]), z([2, 4])], 0), RangeError, /^cat: sizes of tensors must match except in dimension 0: got \[2,3\] and \[2,4\]$/);
  throwsWith(() => mx.cat([z([2]), z([3, 1])]), RangeError, /cat: .*\[2\] and \[3,1\]/);
  throwsWith(() => mx.stack([z([2]), z([3])]), RangeError, /^stack: expects each tensor to be equal size, but got \[2\] and \[3\]$/);
  throwsWith(() => z([2, 3]).reshape(4, 2), RangeError, /^reshape: shape \[4,2\] is invalid for input of size 6 \(shape \[2,3\]\)$/);
  throwsWith(() => z([2, 3]).reshape(-1, 4), RangeError, /^reshape: shape \[-1,4\] is invalid for input of size 6/);
  throwsWith(() => z([6]).reshape(-1, -1), RangeError, /reshape: invalid shape \[-1,-1\].*at most one -1/);
  throwsWith(() => z([2, 3]).view(5), RangeError, /^view: shape \[5\] is invalid for input of size 6/);
  throwsWith(() => z([2, 3]).t().view(6), Error, /view: size \[6\] is not compatible with the input.s shape \[3,2\] and strides \[1,3\]; use reshape/);
  throwsWith(() => z([2, 3]).permute(0, 0), RangeError, /permute: dims \[0,0\] must be a permutation of the 2 dims of \[2,3\]/);
  throwsWith(() => z([2, 2, 2]).t(), RangeError, /t: expects a tensor with <= 2 dimensions, got \[2,2,2\]/);
});

test('shape: losses, normalisation and indexing', () => {
  throwsWith(() => F.nllLoss(z([2, 3]), i32([0, 1, 2])), RangeError, /nllLoss: target \[3\] does not match input \[2,3\] \(expected target \[2\]\)/);
  throwsWith(() => F.crossEntropy(z([2, 3]), i32([0, 1, 2])), RangeError, /crossEntropy: target \[3\] does not match input \[2,3\]/);
  throwsWith(() => F.crossEntropy(z([2, 3]), z([2, 4])), RangeError, /crossEntropy: target \[2,4\] float32 must be int32 class indices of shape \[2\] or class probabilities of the input's shape \[2,3\]/);
  throwsWith(() => F.binaryCrossEntropyWithLogits(z([2, 3]), z([3])), RangeError, /binaryCrossEntropyWithLogits: input \[2,3\] and target \[3\] must have the same shape/);
  throwsWith(() => F.layerNorm(z([2, 3]), [4]), RangeError, /layerNorm: normalizedShape \[4\] does not match the trailing dims of input \[2,3\]/);
  throwsWith(() => F.layerNorm(z([2, 3]), 3, { weight: z([4]) }), RangeError, /layerNorm: weight \[4\] must have shape \[3\]/);
  throwsWith(() => F.batchNorm(z([2, 3]), z([4]), z([3])), RangeError, /batchNorm: runningMean \[4\] must have shape \[3\]/);
  throwsWith(() => F.batchNorm(z([1, 3]), null, null, { training: true }), RangeError, /batchNorm: expected more than 1 value per channel when training, got input \[1,3\]/);
  throwsWith(() => mx.gather(z([3, 3]), 0, i32([0, 1, 2])), RangeError, /gather: index \[3\] must have the input's rank .*input \[3,3\]/);
  throwsWith(() => mx.indexSelect(z([3]), 0, mx.zeros([1, 1], { dtype: 'int32' })), RangeError, /indexSelect: index must be 0-D or 1-D, got shape \[1,1\]/);
  throwsWith(() => F.maxPool2d(z([1, 1, 2, 2]), 3), RangeError, /maxPool2d: input \[1,1,2,2\] is too small for kernel \[3,3\]/);
  throwsWith(() => F.adaptiveAvgPool2d(z([3, 3]), 1), RangeError, /adaptiveAvgPool2d: expected a 3-D or 4-D input, got \[3,3\]/);
  throwsWith(() => mx.ones([2], { requiresGrad: true }).mul(2).backward(mx.ones([3])), RangeError, /backward: gradient \[3\] does not match tensor \[2\]/);
});

test('shape: loss shape mismatches name the loss', () => {
  throwsWith(() => F.mseLoss(z([2]), z([3])), RangeError, /^mseLoss: .*\[2\].*\[3\]/);
  throwsWith(() => F.l1Loss(z([2]), z([3])), RangeError, /^l1Loss: .*\[2\].*\[3\]/);
  throwsWith(() => F.binaryCrossEntropy(z([2]), z([3])), RangeError, /^binaryCrossEntropy: .*\[2\].*\[3\]/);
});

test('shape: linear with a 1-D weight says the weight must be 2-D', () => {
  throwsWith(() => F.linear(z([2, 3]), z([3])), RangeError, /^linear: .*\[3\]/);
  assert.throws(() => F.linear(z([2, 3]), z([3])), (e: Error) => !/undefined/.test(e.message));
});

/* ------------------------------------------------------------------ dtype errors: name the dtypes */

test('dtype: index tensors of the wrong dtype name the dtype', () => {
  throwsWith(() => mx.indexSelect(z([2, 3]), 0, mx.tensor([0])), TypeError, /^indexSelect: index must be an int32 tensor, got float32/);
  throwsWith(() => mx.gather(z([2, 3]), 0, mx.tensor([[0]], { dtype: 'float16' })), TypeError, /^gather: index must be an int32 tensor, got float16/);
  throwsWith(() => F.embedding(mx.tensor([0, 1]), z([3, 2])), TypeError, /embedding: input must be an int32 tensor of indices, got float32/);
  throwsWith(() => F.nllLoss(z([2, 3]), mx.tensor([0, 1], { dtype: 'float64' })), TypeError, /nllLoss: target must be an int32 tensor of class indices, got float64/);
  throwsWith(() => F.crossEntropy(z([2, 3]), mx.tensor([true, false])), TypeError, /crossEntropy: target must be an int32 tensor.*got bool/);
});

test('dtype: requiresGrad on a non-floating tensor names the dtype', () => {
  throwsWith(() => mx.tensor([1, 2], { dtype: 'int32', requiresGrad: true }), TypeError, /^only floating point tensors can require gradients, got int32$/);
  throwsWith(() => mx.zeros([2], { dtype: 'bool', requiresGrad: true }), TypeError, /got bool/);
  throwsWith(() => mx.arange(3).requiresGrad_(), TypeError, /got int32/);
});

test('dtype: unknown dtype strings list the known ones', () => {
  const known = /expected one of float32, float16, bfloat16, float64, int32, bool/;
  throwsWith(() => mx.zeros([2], { dtype: 'float8' as mx.DTypeName }), TypeError, /^unknown dtype 'float8'/);
  throwsWith(() => mx.zeros([2], { dtype: 'float8' as mx.DTypeName }), TypeError, known);
  throwsWith(() => mx.tensor([1], { dtype: 'half' as mx.DTypeName }), TypeError, /unknown dtype 'half'/);
  throwsWith(() => mx.ones([1]).to('Float32' as mx.DTypeName), TypeError, /unknown dtype 'Float32'/);
  throwsWith(() => mx.dtypes.finfo('fp16' as mx.DTypeName), TypeError, known);
});

test('dtype: ops that need floating point name the dtype they got', () => {
  throwsWith(() => mx.tensor([1, 2], { dtype: 'int32' }).mean(), TypeError, /^mean: input dtype must be floating point, got int32$/);
  throwsWith(() => mx.tensor([true]).mean(), TypeError, /mean: .*got bool/);
  throwsWith(() => mx.tensor([1, 2], { dtype: 'int32' }).var(), TypeError, /var: .*got int32/);
  throwsWith(() => F.maxPool2d(z([1, 1, 4, 4], 'int32'), 2), TypeError, /maxPool2d: expected a floating point input, got int32/);
  throwsWith(() => F.avgPool2d(z([1, 1, 4, 4], 'bool'), 2), TypeError, /avgPool2d: expected a floating point input, got bool/);
  throwsWith(() => mx.randn([2], { dtype: 'int32' }), TypeError, /randn: dtype must be floating point, got int32/);
  throwsWith(() => mx.rand([2], { dtype: 'bool' }), TypeError, /rand: dtype must be floating point, got bool/);
  throwsWith(() => mx.dtypes.finfo('int32'), TypeError, /finfo: int32 is not a floating dtype/);
  throwsWith(() => mx.tensor([true]).neg(), TypeError, /neg: not supported for bool tensors/);
});

test('dtype: gradcheck names the dtype of an input that is not float64', async () => {
  await assert.rejects(mx.gradcheck((x) => x, [mx.ones([2], { dtype: 'float16', requiresGrad: true })]), /gradcheck: inputs that require grad must be float64, got float16/);
});

test('dtype: crossEntropy with float class indices says targets must be int32 or probabilities', () => {
  throwsWith(() => F.crossEntropy(z([2, 3]), mx.tensor([0, 1])), RangeError, /int32/);
});

/* ------------------------------------------------------------------ bad arguments: what was given, what is allowed */

test('args: dim out of range gives the dim and the allowed range', () => {
  throwsWith(() => z([2, 3]).sum(5), RangeError, /^sum: dimension out of range \(expected to be in range of \[-2, 1\], but got 5\)$/);
  throwsWith(() => z([2, 3]).mean(-3), RangeError, /^mean: .*\[-2, 1\].*got -3/);
  throwsWith(() => mx.softmax(z([2]), 1), RangeError, /^softmax: .*\[-1, 0\].*got 1/);
  throwsWith(() => mx.logSoftmax(z([2, 2]), 2), RangeError, /^logSoftmax: .*\[-2, 1\].*got 2/);
  throwsWith(() => z([2, 3]).unsqueeze(4), RangeError, /^unsqueeze: .*\[-3, 2\].*got 4/);
  throwsWith(() => z([2, 3]).squeeze(3), RangeError, /^squeeze: .*\[-2, 1\].*got 3/);
  throwsWith(() => z([2]).transpose(0, 2), RangeError, /^transpose: .*\[-1, 0\].*got 2/);
  throwsWith(() => mx.cat([z([2]), z([3])], 1), RangeError, /^cat: .*\[-1, 0\].*got 1/);
  throwsWith(() => mx.stack([z([2])], 3), RangeError, /^stack: .*\[-2, 1\].*got 3/);
  throwsWith(() => z([2, 3]).max(2), RangeError, /^max: .*got 2/);
  throwsWith(() => z([2, 3]).argmax(-3), RangeError, /^argmax: .*got -3/);
  throwsWith(() => z([2, 3]).narrow(2, 0, 1), RangeError, /^narrow: .*got 2/);
  throwsWith(() => z([2, 3]).flatten(0, 5), RangeError, /^flatten: .*got 5/);
  throwsWith(() => z([2, 3]).permute(0, 2), RangeError, /^permute: .*\[-2, 1\].*got 2/);
  throwsWith(() => mx.indexSelect(z([2]), 1, i32([0])), RangeError, /^indexSelect: .*got 1/);
  throwsWith(() => z([2]).size(3), RangeError, /^size: .*got 3/);
  throwsWith(() => z([]).sum(1), RangeError, /^sum: .*\[-1, 0\].*got 1/);
  throwsWith(() => z([2, 3]).sum([0, 0]), RangeError, /sum: dim \[0,0\] appears more than once/);
});

test('args: conv stride 0, negative padding, dilation 0, groups 0', () => {
  const x = z([1, 3, 5, 5]);
  const w = z([4, 3, 3, 3]);
  throwsWith(() => F.conv2d(x, w, null, { stride: 0 }), RangeError, /^conv2d: stride must be an integer or a pair of integers >= 1, got 0$/);
  throwsWith(() => F.conv2d(x, w, null, { stride: [1, 0] }), RangeError, /conv2d: stride .*>= 1, got \[1,0\]/);
  throwsWith(() => F.conv2d(x, w, null, { padding: -1 }), RangeError, /^conv2d: padding must be an integer or a pair of integers >= 0, got -1$/);
  throwsWith(() => F.conv2d(x, w, null, { padding: [0, -2] }), RangeError, /conv2d: padding .*>= 0, got \[0,-2\]/);
  throwsWith(() => F.conv2d(x, w, null, { dilation: 0 }), RangeError, /conv2d: dilation .*>= 1, got 0/);
  throwsWith(() => F.conv2d(x, w, null, { stride: [1, 1, 1] as unknown as [number, number] }), RangeError, /conv2d: stride must be an integer or a pair.*got \[1,1,1\]/);
  throwsWith(() => F.conv2d(x, w, null, { groups: 0 }), RangeError, /conv2d: groups must be a positive integer, got 0/);
  throwsWith(() => F.convTranspose2d(x, z([3, 4, 3, 3]), null, { stride: 0 }), RangeError, /convTranspose2d: stride .*>= 1, got 0/);
  throwsWith(() => F.convTranspose2d(x, z([3, 4, 3, 3]), null, { padding: -1 }), RangeError, /convTranspose2d: padding .*>= 0, got -1/);
  throwsWith(() => F.convTranspose2d(x, z([3, 4, 3, 3]), null, { outputPadding: 1 }), RangeError, /convTranspose2d: outputPadding \[1,1\] must be smaller than stride \[1,1\] or dilation \[1,1\]/);
});

test('args: pooling stride 0, negative padding, kernel 0, padding over half the kernel', () => {
  const x = z([1, 3, 5, 5]);
  throwsWith(() => F.maxPool2d(x, 2, { stride: 0 }), RangeError, /^maxPool2d: stride must be an integer or a pair of integers >= 1, got 0$/);
  throwsWith(() => F.maxPool2d(x, 2, { padding: -1 }), RangeError, /^maxPool2d: padding .*>= 0, got -1$/);
  throwsWith(() => F.maxPool2d(x, 0), RangeError, /maxPool2d: kernelSize .*>= 1, got 0/);
  throwsWith(() => F.maxPool2d(x, 2, { dilation: 0 }), RangeError, /maxPool2d: dilation .*>= 1, got 0/);
  throwsWith(() => F.maxPool2d(x, 2, { padding: 2 }), RangeError, /maxPool2d: padding \[2,2\] should be at most half of the kernel \[2,2\]/);
  throwsWith(() => F.avgPool2d(x, 2, { stride: 0 }), RangeError, /avgPool2d: stride .*>= 1, got 0/);
  throwsWith(() => F.avgPool2d(x, 2, { padding: -1 }), RangeError, /avgPool2d: padding .*>= 0, got -1/);
  throwsWith(() => F.avgPool2d(x, 2, { divisorOverride: 0 }), RangeError, /avgPool2d: divisorOverride must be a positive integer, got 0/);
  throwsWith(() => F.adaptiveAvgPool2d(x, 0), RangeError, /adaptiveAvgPool2d: outputSize must be positive integers, got 0/);
});

test('args: other option values say what was given and what is allowed', () => {
  throwsWith(() => mx.gelu(z([1]), { approximate: 'fast' as 'tanh' }), RangeError, /gelu: approximate must be 'none' or 'tanh', got 'fast'/);
  throwsWith(() => mx.clamp(z([1])), TypeError, /clamp: at least one of min and max must be given/);
  throwsWith(() => F.dropout(z([1]), { p: 2 }), RangeError, /dropout: probability has to be between 0 and 1, but got 2/);
  throwsWith(() => F.crossEntropy(z([2, 3]), i32([0, 1]), { labelSmoothing: 2 }), RangeError, /crossEntropy: labelSmoothing must be in \[0, 1\], got 2/);
  throwsWith(() => F.mseLoss(z([2]), z([2]), { reduction: 'avg' as 'mean' }), RangeError, /mseLoss: reduction must be 'mean', 'sum' or 'none', got 'avg'/);
  throwsWith(() => F.crossEntropy(z([2, 3]), i32([0, 5])), RangeError, /^crossEntropy: target 5 is out of bounds for 3 classes$/);
  throwsWith(() => F.nllLoss(z([2, 3]), i32([-2, 0])), RangeError, /nllLoss: target -2 is out of bounds for 3 classes/);
  throwsWith(() => mx.indexSelect(z([2, 3]), 0, i32([5])), RangeError, /indexSelect: index 5 is out of range for dimension of size 2/);
  throwsWith(() => mx.gather(z([2, 3]), 1, mx.tensor([[7]], { dtype: 'int32' })), RangeError, /gather: index 7 is out of range for dimension of size 3/);
  throwsWith(() => z([3]).narrow(0, 2, 3), RangeError, /narrow: start \(2\) \+ length \(3\) exceeds dimension size \(3\)/);
  throwsWith(() => z([2, 3]).flatten(1, 0), RangeError, /flatten: startDim 1 comes after endDim 0/);
  throwsWith(() => mx.cat([]), RangeError, /cat: expected a non-empty list of tensors/);
  throwsWith(() => mx.arange(0, 5, 0), RangeError, /arange: step must be finite and non-zero, got 0/);
  throwsWith(() => mx.arange(0, 5, -1), RangeError, /arange: .*inconsistent with step sign \(start 0, end 5, step -1\)/);
  throwsWith(() => mx.linspace(0, 1, -1), RangeError, /linspace: steps must be a non-negative integer, got -1/);
  throwsWith(() => mx.randint(5, 2, [2]), RangeError, /randint: expected integers low < high, got low=5, high=2/);
  throwsWith(() => mx.full([2, -1], 3), RangeError, /full: shape must be a list of non-negative integers, got \[2,-1\]/);
  throwsWith(() => mx.rand([1.5]), RangeError, /rand: shape must be .*got \[1.5\]/);
  throwsWith(() => mx.eye(-1), RangeError, /eye: shape must be .*got \[-1,-1\]/);
  throwsWith(() => mx.manualSeed(1.5), TypeError, /manualSeed: seed must be an integer, got 1.5/);
  throwsWith(() => new mx.Generator(0).setState([1, 2]), TypeError, /Generator.setState: expected 5 numbers, got 2/);
  throwsWith(() => mx.getBackend('nope'), Error, /backend 'nope' is not initialised.*available: reference/);
});

test('args: setBackend with an unknown name lists the available ones', async () => {
  await assert.rejects(mx.setBackend('nope'), /unknown backend 'nope': available are reference/);
});

/* ------------------------------------------------------------------ host data */

test('tensor() from a ragged or non-numeric nested array says where', () => {
  throwsWith(() => mx.tensor([[1, 2], [3]]), TypeError, /^tensor: ragged nested array at \[1\]: expected length 2 at depth 1$/);
  throwsWith(() => mx.tensor([[1, 2], 3]), TypeError, /tensor: ragged nested array at \[1\]/);
  throwsWith(() => mx.tensor([[[1], [2]], [[3], [4, 5]]]), TypeError, /ragged nested array at \[1\]\[1\]: expected length 1 at depth 2/);
  throwsWith(() => mx.tensor([1, 'a'] as unknown as number[]), TypeError, /tensor: element at \[1\] is string, expected a number or boolean/);
  throwsWith(() => mx.tensor([[1], [undefined]] as unknown as number[][]), TypeError, /element at \[1\]\[0\] is undefined/);
  throwsWith(() => mx.tensor([1, 2, 3], { shape: [2, 2] }), RangeError, /tensor: shape \[2,2\] does not hold 3 values/);
  throwsWith(() => mx.tensor(new Float32Array(5), { shape: [2, 2] }), RangeError, /tensor: shape \[2,2\] does not hold 5 values/);
});

test('item on a tensor with several elements names its shape', async () => {
  await assert.rejects(mx.tensor([1, 2]).item(), /item: tensor of shape \[2\] has 2 elements, expected 1/);
});

/* ------------------------------------------------------------------ autograd misuse */

test('autograd misuse: clear messages', () => {
  throwsWith(() => mx.ones([2]).sum().backward(), Error, /backward: tensor does not require grad and has no gradFn/);
  throwsWith(() => mx.ones([2], { requiresGrad: true }).mul(2).backward(), Error, /backward: grad can be implicitly created only for scalar outputs, got shape \[2\]/);
  throwsWith(() => mx.ones([2]).registerHook(() => undefined), Error, /registerHook: cannot register a hook on a tensor that does not require grad/);
  throwsWith(() => mx.ones([2], { requiresGrad: true }).mul(2).requiresGrad_(), Error, /requiresGrad_: only leaf tensors can change requiresGrad; use detach\(\) first/);
  const x = mx.ones([2], { requiresGrad: true });
  const y = x.exp().sum();
  y.backward();
  throwsWith(() => y.backward(), Error, /Trying to backward through the graph a second time \(op 'sum'\): pass \{ retainGraph: true \}/);
});

/* ------------------------------------------------------------------ lifetime */

test('reading a tensor disposed by a closed scope says so and how to keep it', async () => {
  let leaked: Tensor | undefined;
  mx.scope(() => {
    leaked = mx.ones([2, 3]);
  });
  const t = leaked!;
  const hint = /tensor \[2,3\] float32 was disposed \(its scope closed\); return it from the scope or mx\.keep\(\) it/;
  await assert.rejects(t.data(), (e: Error) => /^data: /.test(e.message) && hint.test(e.message));
  let scalar: Tensor | undefined;
  mx.scope(() => {
    scalar = mx.tensor(1);
  });
  await assert.rejects(scalar!.item(), /tensor \[\] float32 was disposed/);
  await assert.rejects(t.toArray(), hint);
  throwsWith(() => t.dataSync(), Error, /^dataSync: .*disposed/);
  throwsWith(() => t.add(1), Error, /^add: tensor \[2,3\] float32 was disposed/);
  throwsWith(() => mx.matmul(mx.ones([1, 2]), t), Error, /^matmul: .*disposed/);
  throwsWith(() => t.copy_(mx.zeros([2, 3])), Error, /disposed/);
  throwsWith(() => t.t(), Error, /^permute: .*disposed/);
});

test('an explicitly disposed tensor fails the same way', async () => {
  const t = mx.ones([4], { dtype: 'float16' });
  t.dispose();
  await assert.rejects(t.data(), /data: tensor \[4\] float16 was disposed/);
  t.dispose(); // idempotent
});

test('backward through a graph whose saved tensors were disposed fails with a disposal error', () => {
  const x = mx.ones([2], { requiresGrad: true });
  let loss: Tensor | undefined;
  mx.scope(() => {
    loss = x.exp().sum();
  });
  // The message names the backward-rule op that touched a freed tensor ('mul' for exp), not exp or backward.
  throwsWith(() => loss!.backward(), Error, /was disposed \(its scope closed\)/);
});

test('dtype: where needs a bool condition, bool matmul and negative integer powers are refused (as PyTorch)', () => {
  const a = mx.tensor([1, 2]);
  throwsWith(() => mx.where(mx.tensor([1, 0]), a, a), TypeError, /where: expected condition to be a bool tensor, got float32/);
  throwsWith(() => mx.matmul(mx.tensor([[true]]), mx.tensor([[false]])), TypeError, /bmm: not supported for bool tensors/);
  throwsWith(() => mx.pow(mx.tensor([2, 3], { dtype: 'int32' }), -1), RangeError, /integers to negative integer powers are not allowed/);
  assert.equal(mx.pow(mx.tensor([2, 3], { dtype: 'int32' }), 2).dtype, 'int32');
});
