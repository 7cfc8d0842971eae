/**
 * reshape of a strided view: a view where the strides allow one (PyTorch's computeStride), a copy
 * otherwise. viewStrides is checked against brute force (the element offsets a view visits in
 * row-major order) over random views made by permute, narrow and transpose; reshape's values,
 * aliasing and gradient on the suite's backend.
 */
import './helpers/backend.js'; // MIXPREC_BACKEND selects the backend (default reference)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import { viewStrides } from '../src/ops/shape.js';
import { contiguousStrides } from '../src/shape/strides.js';
import { rng } from './helpers/rng.js';

/** Offsets of the elements of a (shape, strides) view in row-major order. */
function offsets(shape: readonly number[], strides: readonly number[]): number[] {
  const out: number[] = [];
  const walk = (d: number, at: number) => {
    if (d === shape.length) return void out.push(at);
    for (let i = 0; i < shape[d]!; i++) walk(d + 1, at + i * strides[d]!);
  };
  walk(0, 0);
  return out;
}

/** Every way to write n as an ordered product of up to 4 factors (1s included). */
function shapesOf(n: number): number[][] {
  const out: number[][] = [[n]];
  const grow = (prefix: number[], rest: number) => {
    if (prefix.length >= 4) return;
    for (let f = 1; f <= rest; f++) {
      if (rest % f !== 0) continue;
      const s = [...prefix, f, rest / f];
      out.push(s);
      grow([...prefix, f], rest / f);
    }
  };
  grow([], n);
  return out;
}

test('viewStrides finds strides exactly when the row-major order of the view can be kept (brute force)', () => {
  const r = rng(11);
  let views = 0;
  let nulls = 0;
  for (let trial = 0; trial < 60; trial++) {
    // a random strided view: a contiguous base, permuted, maybe narrowed
    const rank = 1 + Math.floor(r() * 3);
    let shape = Array.from({ length: rank }, () => 1 + Math.floor(r() * 4));
    let strides = contiguousStrides(shape);
    const perm = shape.map((_, i) => i).sort(() => r() - 0.5);
    shape = perm.map((d) => shape[d]!);
    strides = perm.map((d) => strides[d]!);
    const d = Math.floor(r() * rank);
    if (shape[d]! > 1 && r() < 0.4) shape[d] = shape[d]! - 1;
    const n = shape.reduce((a, b) => a * b, 1);
    const want = offsets(shape, strides);
    for (const target of shapesOf(n)) {
      const got = viewStrides(shape, strides, target);
      if (got) {
        views++;
        assert.deepEqual(offsets(target, got), want, `${shape}/${strides} -> ${target}: strides ${got}`);
      } else {
        nulls++;
        // no view exists: the offsets in order are not those of any (target, strides) view. For
        // each dim the stride would be fixed by its first step, so try those strides.
        const guess = target.map((_, i) => {
          const at = target.map((__, j) => (j === i ? 1 : 0));
          let idx = 0;
          for (let j = 0; j < target.length; j++) idx = idx * target[j]! + at[j]!;
          return target[i]! > 1 ? want[idx]! - want[0]! : 0;
        });
        assert.notDeepEqual(offsets(target, guess), want, `${shape}/${strides} -> ${target}: a view exists (${guess})`);
      }
    }
  }
  assert.ok(views > 100 && nulls > 50, `both outcomes exercised (${views} views, ${nulls} copies)`);
});

test('viewStrides: the cases PyTorch documents', () => {
  // a transposed [3,4] weight as [1,4,3] (linear's bmm operand) is a view (a size-1 dim's stride is free)
  assert.deepEqual(viewStrides([4, 3], [1, 4], [1, 4, 3])!.slice(1), [1, 4]);
  // flattening a transpose needs a copy
  assert.equal(viewStrides([4, 3], [1, 4], [12]), null);
  // splitting the outer dim of a column slice is a view; merging across the slice is not
  assert.deepEqual(viewStrides([4, 2], [5, 1], [2, 2, 2]), [10, 5, 1]);
  assert.equal(viewStrides([4, 2], [5, 1], [8]), null);
  // 0-d and empty tensors
  assert.deepEqual(viewStrides([], [], [1, 1]), [1, 1]);
  assert.deepEqual(viewStrides([0, 3], [1, 0], [3, 0]), [0, 1]);
});

test('reshape of a strided view is a view when strides allow (same values, shared storage, gradient), else a copy', async () => {
  const w = mx.arange(0, 12).to('float32').reshape([3, 4]).requiresGrad_();
  const wt = w.t();
  const v = wt.reshape([1, 4, 3]);
  assert.equal(v.storage, wt.storage, 'a view of the same storage');
  assert.deepEqual(Array.from(await v.data()), Array.from(await wt.contiguous().data()));
  const flat = wt.reshape([12]);
  assert.notEqual(flat.storage, wt.storage, 'a copy');
  assert.deepEqual(Array.from(await flat.data()), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  v.mul(mx.arange(0, 12).to('float32').reshape([1, 4, 3])).sum().backward();
  // d/dw of sum(w.t() * m) is m.t()
  assert.deepEqual(Array.from(await w.grad!.data()), [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]);
  // view: the same views, and an error naming shape and strides where reshape would copy
  assert.equal(wt.view([1, 4, 3]).storage, wt.storage);
  assert.throws(() => wt.view([12]), /view: size \[12\] is not compatible with the input's shape \[4,3\] and strides \[1,4\]; use reshape instead/);
  // linear reads the transposed weight through the view: the product is unchanged
  const x = mx.arange(0, 8).to('float32').reshape([2, 4]);
  const lin = mx.nn.functional.linear(x, mx.arange(0, 12).to('float32').reshape([3, 4]));
  assert.deepEqual(Array.from(await lin.data()), [14, 38, 62, 38, 126, 214]);
});
