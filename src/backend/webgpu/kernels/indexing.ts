/**
 * Index kernels: gather, scatterAdd, indexSelect, indexAdd (one thread per output element; the
 * scatters loop over the index instead of adding atomically, so they are deterministic), and cat
 * (one strided copy per input into its slice of the output). Indices are int32; negative ones
 * count from the end. An index out of range reads 0 and adds nothing (the reference raises
 * RangeError on the host; a GPU kernel cannot).
 */
import type { KernelTensor } from '../../backend.js';
import type { KernelParams } from '../../kernels.js';
import { bind, entry, groups1d, makeDispatch, Meta, numel, shader, tensorOperand, type KernelContext } from './common.js';
import { runElementwise } from './elementwise.js';

/** Unrolled decomposition of `gid` over `rank` dims: md0.. (coords) and o<t> offsets of each operand. */
function coords(rank: number, nOps: number, shapeAt: number, opAt: (t: number) => number): string {
  const lines = ['  var rem = gid;'];
  for (let t = 0; t < nOps; t++) lines.push(`  var o${t} = mi(${opAt(t)}u);`);
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`  let md${d} = rem % mi(${shapeAt + d}u); rem = rem / mi(${shapeAt + d}u);`);
    for (let t = 0; t < nOps; t++) lines.push(`  o${t} = o${t} + md${d} * mi(${opAt(t) + 1 + d}u);`);
  }
  return lines.join('\n');
}

function encodeIndexed(
  ctx: KernelContext,
  key: string,
  shape: readonly number[],
  operands: readonly { t: KernelTensor; strides: readonly number[]; write?: boolean }[],
  extra: number[],
  body: (nm: string[], extraAt: number) => string,
): void {
  const n = numel(shape);
  if (n === 0) return;
  const rank = shape.length;
  const bound = bind(ctx, operands.map((o) => tensorOperand(o.t, o.write ?? false)));
  const meta = new Meta().i(n).ints(shape);
  const opAt: number[] = [];
  for (const o of operands) {
    opAt.push(meta.length);
    meta.i(o.t.offset).ints(o.strides);
  }
  const extraAt = meta.length;
  meta.ints(extra);
  const code = () =>
    shader(ctx, bound.decls, entry() + '  if (gid >= mi(0u)) { return; }\n' + coords(rank, operands.length, 1, (t) => opAt[t]!) + '\n' + body(bound.names, extraAt) + '\n}\n');
  ctx.sched.dispatch(makeDispatch(`${key}|r${rank}`, code, bound, meta, groups1d(n)));
}

const wrap = (v: string, size: string) => `select(${v}, ${v} + ${size}, ${v} < 0)`;

export function runIndexing(ctx: KernelContext, kernel: IndexingKernel, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<IndexingKernel>): void {
  const out = outputs[0]!;
  const dim = params.dim;
  switch (kernel) {
    case 'cat': {
      let start = 0;
      for (const x of inputs) {
        const n = x.shape[dim]!;
        if (numel(x.shape) > 0) {
          const view: KernelTensor = { buffer: out.buffer, dtype: out.dtype, shape: x.shape, strides: out.strides, offset: out.offset + start * out.strides[dim]! };
          runElementwise(ctx, 'copy', [x], [view], {});
        }
        start += n;
      }
      return;
    }
    case 'gather': {
      // out[md] = x[md with dim -> index[md]]
      const [x, index] = inputs as [KernelTensor, KernelTensor];
      const xs = x.strides.map((s, d) => (d === dim ? 0 : s));
      encodeIndexed(ctx, 'gather', index.shape, [{ t: index, strides: index.strides }, { t: x, strides: xs }, { t: out, strides: out.strides, write: true }], [x.shape[dim]!, x.strides[dim]!], (nm, e) =>
        `  let size = mi(${e}u);\n  var i = ldi_${nm[0]}(o0);\n  i = ${wrap('i', 'size')};\n` +
        `  if (i < 0 || i >= size) { st_${nm[2]}(o2, 0.0); return; }\n` +
        `  str_${nm[2]}(o2, ldr_${nm[1]}(o1 + i * mi(${e + 1}u)));`,
      );
      return;
    }
    case 'indexSelect': {
      // out[.., k, ..] = x[.., index[k], ..]
      const [x, index] = inputs as [KernelTensor, KernelTensor];
      const xs = x.strides.map((s, d) => (d === dim ? 0 : s));
      const is = out.shape.map((_, d) => (d === dim ? index.strides[0] ?? 0 : 0));
      encodeIndexed(ctx, 'indexSelect', out.shape, [{ t: index, strides: is }, { t: x, strides: xs }, { t: out, strides: out.strides, write: true }], [x.shape[dim]!, x.strides[dim]!], (nm, e) =>
        `  let size = mi(${e}u);\n  var i = ldi_${nm[0]}(o0);\n  i = ${wrap('i', 'size')};\n` +
        `  if (i < 0 || i >= size) { st_${nm[2]}(o2, 0.0); return; }\n` +
        `  str_${nm[2]}(o2, ldr_${nm[1]}(o1 + i * mi(${e + 1}u)));`,
      );
      return;
    }
    case 'indexAdd': {
      // out[.., j, ..] = sum over k with index[k] == j of src[.., k, ..]
      const [src, index] = inputs as [KernelTensor, KernelTensor];
      const ss = src.strides.map((s, d) => (d === dim ? 0 : s));
      const K = index.shape[0] ?? 1;
      encodeIndexed(
        ctx,
        `indexAdd:${dim}`,
        out.shape,
        [{ t: src, strides: ss }, { t: out, strides: out.strides, write: true }, { t: index, strides: out.shape.map(() => 0) }],
        [K, src.strides[dim]!, index.strides[0] ?? 0, out.shape[dim]!],
        (nm, e) =>
          `  let j = md${dim};\n  let size = mi(${e + 3}u);\n  var acc = 0.0;\n` +
          `  for (var k = 0; k < mi(${e}u); k = k + 1) {\n    var i = ldi_${nm[2]}(o2 + k * mi(${e + 2}u));\n    i = ${wrap('i', 'size')};\n` +
          `    if (i == j) { acc = acc + ld_${nm[0]}(o0 + k * mi(${e + 1}u)); }\n  }\n  st_${nm[1]}(o1, acc);`,
      );
      return;
    }
    case 'scatterAdd': {
      // out[md] = sum over k (positions of index along dim, other coords = md's) with index == md[dim]
      const [src, index] = inputs as [KernelTensor, KernelTensor];
      const rank = out.shape.length;
      const ss = src.strides.map((s, d) => (d === dim ? 0 : s));
      const is = index.strides.map((s, d) => (d === dim ? 0 : s));
      const inRange = (e: number) => [...Array(rank).keys()].filter((d) => d !== dim).map((d) => `md${d} < mi(${e + 4 + d}u)`);
      encodeIndexed(
        ctx,
        `scatterAdd:${dim}`,
        out.shape,
        [{ t: src, strides: ss }, { t: index, strides: is }, { t: out, strides: out.strides, write: true }],
        [index.shape[dim]!, src.strides[dim]!, index.strides[dim]!, out.shape[dim]!, ...index.shape],
        (nm, e) =>
          `  var acc = 0.0;\n  let size = mi(${e + 3}u);\n` +
          `  if (${inRange(e).length ? inRange(e).join(' && ') : 'true'}) {\n` +
          `    for (var k = 0; k < mi(${e}u); k = k + 1) {\n      var i = ldi_${nm[1]}(o1 + k * mi(${e + 2}u));\n      i = ${wrap('i', 'size')};\n` +
          `      if (i == md${dim}) { acc = acc + ld_${nm[0]}(o0 + k * mi(${e + 1}u)); }\n    }\n  }\n  st_${nm[2]}(o2, acc);`,
      );
      return;
    }
  }
  throw new Error(`webgpu: no indexing kernel '${kernel}'`);
}

export const INDEXING_KERNELS = ['cat', 'gather', 'indexSelect', 'indexAdd', 'scatterAdd'] as const;
export type IndexingKernel = (typeof INDEXING_KERNELS)[number];

/** The GPU kernels index with int32 tensors; anything else goes to the host. */
export function indexingSupports(kernel: IndexingKernel, inputs: readonly KernelTensor[]): boolean {
  if (kernel === 'cat') return true;
  return inputs[1]?.dtype.name === 'int32';
}
