/**
 * Reductions and the kernels that walk slices: sum, max, min, prod, argmax, argmin, softmax,
 * logSoftmax and their backwards, cumsum, norm, normBackward, prodBackward.
 *
 * Every one is a "segmented" kernel: the input's dimensions split into kept dimensions (one slot
 * per output element) and reduced ones (the slice a slot walks), each operand described by its
 * offset and its strides over both. Sums/extrema/products over long slices use one workgroup per
 * slot with a tree in workgroup memory; everything else uses one thread per slot. Accumulation is
 * float32; each output is rounded once.
 */
import type { KernelTensor } from '../../backend.js';
import type { KernelParams } from '../../kernels.js';
import { bind, entry, groups1d, makeDispatch, Meta, numel, shader, tensorOperand, WG, type KernelContext } from './common.js';

interface SegOperand {
  readonly t: KernelTensor;
  readonly kept: readonly number[];
  readonly red: readonly number[];
  readonly write?: boolean;
}

/** Strides of `t` over the kept and reduced dims of an input of rank `rank` reduced over `dims`. */
function splitStrides(t: KernelTensor, rank: number, dims: readonly number[], role: 'full' | 'reduced'): { kept: number[]; red: number[] } {
  const keptDims = [...Array(rank).keys()].filter((d) => !dims.includes(d));
  if (role === 'full') return { kept: keptDims.map((d) => t.strides[d]!), red: dims.map((d) => t.strides[d]!) };
  // a reduced-shape tensor: with keepdim its rank is `rank`, else the kept dims in order
  const kept = t.shape.length === rank ? keptDims.map((d) => t.strides[d]!) : keptDims.map((_, i) => t.strides[i]!);
  return { kept, red: dims.map(() => 0) };
}

function decompose(name: string, n: number, shapeAt: number, offAt: number, strideAt: number): string {
  if (n === 0) return `fn ${name}(i: i32) -> i32 { return mi(${offAt}u); }`;
  const body: string[] = [`fn ${name}(i: i32) -> i32 {`, '  var rem = i;', `  var o = mi(${offAt}u);`];
  for (let d = n - 1; d >= 0; d--) {
    body.push(`  { let sz = mi(${shapeAt + d}u); o = o + (rem % sz) * mi(${strideAt + d}u); rem = rem / sz; }`);
  }
  body.push('  return o;', '}');
  return body.join('\n');
}

/**
 * Encode a segmented kernel. In the body, for operand k: `base${k}(s)` is the storage offset of slot
 * s (kept dims), `roff${k}(r)` the offset of reduced element r, so element r of slot s is at
 * base${k}(s) + roff${k}(r). `s` and `R` (slice length) are defined; params are P0, P1, ...
 */
function encodeSegmented(
  ctx: KernelContext,
  key: string,
  keptShape: readonly number[],
  redShape: readonly number[],
  operands: readonly SegOperand[],
  body: (names: string[]) => string,
  scalars: number[] = [],
  mode: 'thread' | 'workgroup' = 'thread',
): void {
  const slots = numel(keptShape);
  const R = numel(redShape);
  if (slots === 0) return;
  const kr = keptShape.length;
  const rr = redShape.length;
  const bound = bind(ctx, operands.map((o) => tensorOperand(o.t, o.write ?? false)));
  const meta = new Meta().i(slots).i(R).ints(keptShape).ints(redShape);
  const opAt: number[] = [];
  for (const o of operands) {
    opAt.push(meta.length);
    meta.i(o.t.offset).ints(o.kept).ints(o.red);
  }
  const paramAt = meta.length;
  for (const s of scalars) meta.f(s);
  const code = () => {
    const fns: string[] = [];
    operands.forEach((_, k) => {
      fns.push(decompose(`base${k}`, kr, 2, opAt[k]!, opAt[k]! + 1));
      // reduced offsets start from 0, not the operand offset: point offAt at a zero... use a wrapper
      fns.push(decompose(`roffz${k}`, rr, 2 + kr, opAt[k]!, opAt[k]! + 1 + kr).replace(`var o = mi(${opAt[k]!}u);`, 'var o = 0;'));
      fns.push(`fn roff${k}(r: i32) -> i32 { return roffz${k}(r); }`);
    });
    let b = body(bound.names).replace(/P(\d+)/g, (_, i) => `mf(${paramAt + Number(i)}u)`);
    if (mode === 'thread') {
      b = entry() + `  let s = gid;\n  if (s >= mi(0u)) { return; }\n  let R = mi(1u);\n${b}\n}\n`;
    } else {
      b =
        `var<workgroup> red: array<f32, ${WG}>;\n` +
        `@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {\n` +
        `  let s = i32(wid.y * nwg.x + wid.x);\n  let R = mi(1u);\n  let t = i32(lid.x);\n${b}\n}\n`;
    }
    return shader(ctx, bound.decls, fns.join('\n') + '\n' + b);
  };
  const groups: [number, number, number] = mode === 'thread' ? groups1d(slots) : groups1d(slots, 1);
  ctx.sched.dispatch(makeDispatch(`${key}|${mode}|k${kr}r${rr}`, code, bound, meta, groups));
}

/** WGSL of a workgroup tree reduction of `acc` (per-thread partials) with `combine(a, b)`. */
function treeReduce(combine: (a: string, b: string) => string): string {
  return (
    `  red[t] = acc;\n  workgroupBarrier();\n` +
    `  var w = ${WG / 2};\n  loop {\n    if (w == 0) { break; }\n` +
    `    if (t < w) { red[t] = ${combine('red[t]', 'red[t + w]')}; }\n    workgroupBarrier();\n    w = w / 2;\n  }\n`
  );
}

const ACCUM: Record<string, { init: string; combine: (a: string, b: string) => string }> = {
  sum: { init: '0.0', combine: (a, b) => `${a} + ${b}` },
  max: { init: '-inf_f32()', combine: (a, b) => `max_nan(${a}, ${b})` },
  min: { init: 'inf_f32()', combine: (a, b) => `min_nan(${a}, ${b})` },
  prod: { init: '1.0', combine: (a, b) => `${a} * ${b}` },
};

function reduceAccum(ctx: KernelContext, kernel: string, x: KernelTensor, out: KernelTensor, dims: readonly number[], scale: number | undefined): void {
  const rank = x.shape.length;
  const keptShape = x.shape.filter((_, d) => !dims.includes(d));
  const redShape = dims.map((d) => x.shape[d]!);
  const xs = splitStrides(x, rank, dims, 'full');
  const os = splitStrides(out, rank, dims, 'reduced');
  const R = numel(redShape);
  const { init, combine } = ACCUM[kernel]!;
  const scaled = scale !== undefined;
  const fin = scaled ? 'acc * P0' : 'acc';
  const ops: SegOperand[] = [
    { t: x, ...xs },
    { t: out, ...os, write: true },
  ];
  const useWg = R >= 64;
  encodeSegmented(
    ctx,
    `red:${kernel}:${scaled}`,
    keptShape,
    redShape,
    ops,
    (nm) =>
      useWg
        ? `  let b = base0(s);\n  var acc = ${init};\n  for (var r = t; r < R; r = r + ${WG}) { acc = ${combine('acc', `ld_${nm[0]}(b + roff0(r))`)}; }\n` +
          treeReduce(combine) +
          `  if (t == 0) { let acc = red[0]; st_${nm[1]}(base1(s), ${fin}); }`
        : `  let b = base0(s);\n  var acc = ${init};\n  for (var r = 0; r < R; r = r + 1) { acc = ${combine('acc', `ld_${nm[0]}(b + roff0(r))`)}; }\n  st_${nm[1]}(base1(s), ${fin});`,
    scaled ? [scale] : [],
    useWg ? 'workgroup' : 'thread',
  );
}

/** Slot/slice split of `x` around `dim` (softmax-like kernels): kept = every other dim. */
function aroundDim(t: KernelTensor, dim: number): { kept: number[]; red: number[] } {
  return { kept: t.strides.filter((_, d) => d !== dim), red: [t.strides[dim]!] };
}

export const REDUCE_KERNELS = ['sum', 'max', 'min', 'prod', 'argmax', 'argmin', 'softmax', 'logSoftmax', 'softmaxBackward', 'logSoftmaxBackward', 'cumsum', 'norm', 'normBackward', 'prodBackward'] as const;

export type ReduceKernel = (typeof REDUCE_KERNELS)[number];

export function runReduce(ctx: KernelContext, kernel: ReduceKernel, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<ReduceKernel>): void {
  const x = inputs[0]!;
  const out = outputs[0]!;
  const rank = x.shape.length;
  switch (kernel) {
    case 'sum':
    case 'max':
    case 'min':
    case 'prod':
      reduceAccum(ctx, kernel, x, out, (params as KernelParams<typeof kernel>).dims, kernel === 'sum' ? (params as KernelParams<'sum'>).scale : undefined);
      return;
    case 'argmax':
    case 'argmin': {
      const dim = (params as KernelParams<typeof kernel>).dim;
      const isMax = kernel === 'argmax';
      let keptShape: number[], redShape: number[], xs: { kept: number[]; red: number[] }, os: { kept: number[]; red: number[] };
      if (dim === null) {
        keptShape = [];
        redShape = [...x.shape];
        xs = { kept: [], red: [...x.strides] };
        os = { kept: [], red: x.shape.map(() => 0) };
      } else {
        keptShape = x.shape.filter((_, d) => d !== dim);
        redShape = [x.shape[dim]!];
        xs = aroundDim(x, dim);
        os = splitStrides(out, rank, [dim], 'reduced');
      }
      const cmp = isMax ? 'v > bv' : 'v < bv';
      encodeSegmented(ctx, `arg:${kernel}`, keptShape, redShape, [{ t: x, ...xs }, { t: out, ...os, write: true }], (nm) =>
        `  let b = base0(s);\n  var best = 0;\n  var bv = ld_${nm[0]}(b + roff0(0));\n` +
        `  for (var r = 1; r < R; r = r + 1) {\n    if (is_nan(bv)) { break; }\n    let v = ld_${nm[0]}(b + roff0(r));\n    if (is_nan(v) || ${cmp}) { best = r; bv = v; }\n  }\n` +
        `  str_${nm[1]}(base1(s), u32(best));`,
      );
      return;
    }
    case 'softmax':
    case 'logSoftmax': {
      const dim = (params as KernelParams<typeof kernel>).dim;
      const keptShape = x.shape.filter((_, d) => d !== dim);
      const log = kernel === 'logSoftmax';
      encodeSegmented(ctx, `sm:${kernel}`, keptShape, [x.shape[dim]!], [{ t: x, ...aroundDim(x, dim) }, { t: out, ...aroundDim(out, dim), write: true }], (nm) =>
        `  let b = base0(s);\n  let bo = base1(s);\n  var m = -inf_f32();\n` +
        `  for (var r = 0; r < R; r = r + 1) { m = max(m, ld_${nm[0]}(b + roff0(r))); }\n` +
        `  if (m == -inf_f32()) { m = 0.0; }\n` +
        `  var sum = 0.0;\n  for (var r = 0; r < R; r = r + 1) { sum = sum + exp_(ld_${nm[0]}(b + roff0(r)) - m); }\n` +
        `  let ls = log_(sum);\n` +
        `  for (var r = 0; r < R; r = r + 1) { let z = ld_${nm[0]}(b + roff0(r)) - m; st_${nm[1]}(bo + roff1(r), ${log ? 'z - ls' : 'exp_(z) / sum'}); }`,
      );
      return;
    }
    case 'softmaxBackward':
    case 'logSoftmaxBackward': {
      const dim = (params as KernelParams<typeof kernel>).dim;
      const g = inputs[1]!;
      const keptShape = x.shape.filter((_, d) => d !== dim);
      const soft = kernel === 'softmaxBackward';
      encodeSegmented(
        ctx,
        `smb:${kernel}`,
        keptShape,
        [x.shape[dim]!],
        [{ t: x, ...aroundDim(x, dim) }, { t: g, ...aroundDim(g, dim) }, { t: out, ...aroundDim(out, dim), write: true }],
        (nm) =>
          `  let by = base0(s);\n  let bg = base1(s);\n  let bo = base2(s);\n  var acc = 0.0;\n` +
          (soft
            ? `  for (var r = 0; r < R; r = r + 1) { acc = acc + ld_${nm[1]}(bg + roff1(r)) * ld_${nm[0]}(by + roff0(r)); }\n` +
              `  for (var r = 0; r < R; r = r + 1) { let y = ld_${nm[0]}(by + roff0(r)); st_${nm[2]}(bo + roff2(r), y * (ld_${nm[1]}(bg + roff1(r)) - acc)); }`
            : `  for (var r = 0; r < R; r = r + 1) { acc = acc + ld_${nm[1]}(bg + roff1(r)); }\n` +
              `  for (var r = 0; r < R; r = r + 1) { let y = ld_${nm[0]}(by + roff0(r)); st_${nm[2]}(bo + roff2(r), ld_${nm[1]}(bg + roff1(r)) - exp_(y) * acc); }`),
      );
      return;
    }
    case 'cumsum': {
      if (rank === 0) {
        encodeSegmented(ctx, 'cumsum0', [], [], [{ t: x, kept: [], red: [] }, { t: out, kept: [], red: [], write: true }], (nm) => `  st_${nm[1]}(base1(s), ld_${nm[0]}(base0(s)));`);
        return;
      }
      const { dim, reverse } = params as KernelParams<'cumsum'>;
      const keptShape = x.shape.filter((_, d) => d !== dim);
      encodeSegmented(ctx, `cumsum:${reverse}`, keptShape, [x.shape[dim]!], [{ t: x, ...aroundDim(x, dim) }, { t: out, ...aroundDim(out, dim), write: true }], (nm) =>
        `  let b = base0(s);\n  let bo = base1(s);\n  var acc = 0.0;\n` +
        `  for (var k = 0; k < R; k = k + 1) { let r = ${reverse ? 'R - 1 - k' : 'k'}; acc = acc + ld_${nm[0]}(b + roff0(r)); st_${nm[1]}(bo + roff1(r), acc); }`,
      );
      return;
    }
    case 'norm':
    case 'normBackward': {
      const { dims, p } = params as KernelParams<typeof kernel>;
      const keptShape = x.shape.filter((_, d) => !dims.includes(d));
      const redShape = dims.map((d) => x.shape[d]!);
      const xs = splitStrides(x, rank, dims, 'full');
      const pk = p === Infinity ? 'inf' : p === -Infinity ? 'ninf' : p === 0 ? 'zero' : p === 1 ? 'one' : p === 2 ? 'two' : 'p';
      const normCode = (ld: string) => {
        switch (pk) {
          case 'inf':
            return `  var nrm = 0.0;\n  for (var r = 0; r < R; r = r + 1) { let a = abs(${ld}); if (is_nan(a)) { nrm = a; break; } nrm = max(nrm, a); }\n`;
          case 'ninf':
            return `  var nrm = inf_f32();\n  for (var r = 0; r < R; r = r + 1) { let a = abs(${ld}); if (is_nan(a)) { nrm = a; break; } nrm = min(nrm, a); }\n`;
          case 'zero':
            return `  var nrm = 0.0;\n  for (var r = 0; r < R; r = r + 1) { if (nonzero(${ld}) ) { nrm = nrm + 1.0; } }\n`;
          case 'one':
            return `  var nrm = 0.0;\n  for (var r = 0; r < R; r = r + 1) { nrm = nrm + abs(${ld}); }\n`;
          case 'two':
            return (
              `  var sc = 0.0;\n  var anyNan = false;\n  for (var r = 0; r < R; r = r + 1) { let a = abs(${ld}); if (is_nan(a)) { anyNan = true; } sc = max(sc, a); }\n` +
              `  var acc = 0.0;\n  if (sc == 0.0 || !is_finite(sc) || anyNan) { for (var r = 0; r < R; r = r + 1) { let v = ${ld}; acc = acc + v * v; } }\n` +
              `  else { for (var r = 0; r < R; r = r + 1) { let v = ${ld} / sc; acc = acc + v * v; } }\n` +
              `  var nrm = select(sqrt(acc), sc * sqrt(acc), sc != 0.0 && is_finite(sc) && !anyNan);\n`
            );
          default:
            return `  var acc = 0.0;\n  for (var r = 0; r < R; r = r + 1) { acc = acc + pow_(abs(${ld}), P0); }\n  var nrm = pow_(acc, 1.0 / P0);\n`;
        }
      };
      if (kernel === 'norm') {
        const os = splitStrides(out, rank, dims, 'reduced');
        encodeSegmented(ctx, `norm:${pk}`, keptShape, redShape, [{ t: x, ...xs }, { t: out, ...os, write: true }], (nm) =>
          `  let b = base0(s);\n` + normCode(`ld_${nm[0]}(b + roff0(r))`) + `  st_${nm[1]}(base1(s), nrm);`, [p]);
        return;
      }
      const g = inputs[1]!;
      const gs = splitStrides(g, rank, dims, 'reduced');
      const os = splitStrides(out, rank, dims, 'full');
      encodeSegmented(ctx, `normb:${pk}`, keptShape, redShape, [{ t: x, ...xs }, { t: g, ...gs }, { t: out, ...os, write: true }], (nm) => {
        const ld = `ld_${nm[0]}(b + roff0(r))`;
        let per: string;
        let pre = '';
        switch (pk) {
          case 'zero':
            per = '0.0';
            break;
          case 'inf':
          case 'ninf':
            pre = `  var ties = 0.0;\n  for (var r = 0; r < R; r = r + 1) { let a = abs(${ld}); if (a == nrm || is_nan(a)) { ties = ties + 1.0; } }\n`;
            per = `select(0.0, sign(v) / ties, abs(v) == nrm || is_nan(v))`;
            break;
          case 'one':
            per = 'sign(v)';
            break;
          case 'two':
            per = 'select(v / nrm, 0.0, nrm == 0.0 || v == 0.0)';
            break;
          default:
            per = 'select(sign(v) * pow_(abs(v), P0 - 1.0) / pow_(nrm, P0 - 1.0), 0.0, nrm == 0.0 || v == 0.0)';
        }
        return (
          `  let b = base0(s);\n  let bo = base2(s);\n  let gv = ld_${nm[1]}(base1(s));\n` +
          normCode(ld) +
          pre +
          `  for (var r = 0; r < R; r = r + 1) { let v = ${ld}; st_${nm[2]}(bo + roff2(r), gv * ${per}); }`
        );
      }, [p]);
      return;
    }
    case 'prodBackward': {
      const { dims } = params as KernelParams<'prodBackward'>;
      const g = inputs[1]!;
      const keptShape = x.shape.filter((_, d) => !dims.includes(d));
      const redShape = dims.map((d) => x.shape[d]!);
      const xs = splitStrides(x, rank, dims, 'full');
      const gs = splitStrides(g, rank, dims, 'reduced');
      const os = splitStrides(out, rank, dims, 'full');
      encodeSegmented(ctx, 'prodb', keptShape, redShape, [{ t: x, ...xs }, { t: g, ...gs }, { t: out, ...os, write: true }], (nm) =>
        `  let b = base0(s);\n  let bo = base2(s);\n  let gv = ld_${nm[1]}(base1(s));\n  var nz = 1.0;\n  var zeros = 0;\n` +
        `  for (var r = 0; r < R; r = r + 1) { let v = ld_${nm[0]}(b + roff0(r)); if (v == 0.0) { zeros = zeros + 1; } else { nz = nz * v; } }\n` +
        `  for (var r = 0; r < R; r = r + 1) {\n    let v = ld_${nm[0]}(b + roff0(r));\n    var d = 0.0;\n` +
        `    if (zeros == 0) { d = nz / v; } else if (zeros == 1) { d = select(0.0, nz, v == 0.0); }\n` +
        `    st_${nm[2]}(bo + roff2(r), gv * d);\n  }`,
      );
      return;
    }
  }
  throw new Error(`webgpu: no reduction kernel '${kernel}'`);
}
