/**
 * Arrays of one V8 elements kind in every execution tier. `Array.prototype.map` returns a packed
 * array from the interpreter's builtin but a holey one once TurboFan inlines it into an optimized
 * caller (and `new Array(n)` is always holey): the same op's shapes, operand lists and thread
 * parts then change hidden class (map) in the middle of a training run, every optimized function
 * they reach deoptimizes ("wrong map"), and V8 re-compiles it while the next steps wait for a core.
 * Arrays built by `push` onto `[]` stay packed in every tier, so the per-op path builds its arrays
 * here (bench/README.md, "warm-up"). Numbers and objects have separate builders: V8 tracks the
 * elements kind per array literal, and one literal filled with both would flip between kinds.
 *
 * For the same reason the per-op path reads arrays by index: array destructuring (`const [a, b] =
 * xs`, a handler's `(ctx, [x], [o])` parameters) and for-of run V8's iterator protocol, an
 * iterator and a result object per element (~1 us per destructuring), until TurboFan has compiled
 * the function, i.e. through most of a fresh process's first few hundred steps. The handlers
 * destructure by index instead (`{ 0: x }`, plain property loads in every tier) and loop with
 * counters.
 */

/** `xs.map(f)` for lists of objects (tensors, views, parts), packed in every tier. */
export function mapPacked<T, U extends object>(xs: readonly T[], f: (x: T, i: number) => U): U[] {
  const out: U[] = [];
  for (let i = 0; i < xs.length; i++) out.push(f(xs[i]!, i));
  return out;
}

/** `xs.map(f)` for integer lists (shapes, strides, dims), packed in every tier. */
export function mapNumbers<T>(xs: readonly T[], f: (x: T, i: number) => number): number[] {
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) out.push(f(xs[i]!, i));
  return out;
}

/** `n` copies of the integer `value`, packed (unlike `new Array(n).fill(value)`). */
export function filledNumbers(n: number, value: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(value);
  return out;
}
