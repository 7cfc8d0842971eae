/**
 * Shared pieces of the kernel generators: binding the operands' buffers (one binding per distinct
 * buffer, read_write when any operand writes it, so in-place kernels bind their buffer once),
 * the metadata words, and the shader preamble.
 */
/// <reference types="@webgpu/types" />
import type { KernelTensor } from '../../backend.js';
import type { DType } from '../../../dtype/dtype.js';
import type { WebGpuBuffer } from '../buffers.js';
import type { SubgroupMatrixShape } from '../device.js';
import { bindingCode, storageFormat, type BindingDecl } from '../codegen/storage.js';
import { WGSL_HELPERS } from '../codegen/wgsl_math.js';
import type { BindingRef, Dispatch, Scheduler } from '../scheduler.js';
import { collapseDims, contiguousStrides, numel } from '../../../shape/strides.js';

export const WG = 256;

/** What the kernel generators need from the backend. */
export interface KernelContext {
  readonly nativeF16: boolean;
  /** The adapter's f16 matrix units, when float16 GEMMs use them (kernels/matmul_subgroup.ts). */
  readonly matrixUnits: SubgroupMatrixShape | null;
  readonly sched: Scheduler;
  /** The device's storage buffers per shader stage (a multi-tensor kernel's bindings must fit). */
  readonly maxStorageBuffers: number;
  /** A contiguous scratch buffer of `size` elements, valid until releaseTemp (in command order). */
  tempBuffer(dtype: DType, size: number): WebGpuBuffer;
  releaseTemp(buffer: WebGpuBuffer): void;
}

export class Meta {
  private readonly words: number[] = [];
  private static readonly f = new Float32Array(1);
  private static readonly u = new Uint32Array(Meta.f.buffer);
  get length(): number {
    return this.words.length;
  }
  i(x: number): this {
    this.words.push(x | 0);
    return this;
  }
  f(x: number): this {
    Meta.f[0] = x;
    this.words.push(Meta.u[0]!);
    return this;
  }
  u(x: number): this {
    this.words.push(x >>> 0);
    return this;
  }
  ints(xs: readonly number[]): this {
    for (const x of xs) this.i(x);
    return this;
  }
  build(): Uint32Array {
    const out = new Uint32Array(Math.max(4, this.words.length));
    for (let i = 0; i < this.words.length; i++) out[i] = this.words[i]! >>> 0;
    return out;
  }
}

export interface Bound {
  readonly bindings: BindingRef[];
  readonly decls: BindingDecl[];
  /** binding name (b1, b2, ...) of each operand */
  readonly names: string[];
  /** part of the pipeline key: formats, access and aliasing */
  readonly key: string;
}

export function bind(ctx: KernelContext, operands: readonly { buffer: WebGpuBuffer; write: boolean }[]): Bound {
  const unique: WebGpuBuffer[] = [];
  const writable: boolean[] = [];
  const names: string[] = [];
  for (const op of operands) {
    let i = unique.indexOf(op.buffer);
    if (i < 0) {
      i = unique.length;
      unique.push(op.buffer);
      writable.push(false);
    }
    if (op.write) writable[i] = true;
    names.push(`b${i + 1}`);
  }
  const decls = unique.map((b, i) => ({ index: i + 1, dtype: b.dtype, writable: writable[i]! }));
  const bindings = unique.map((b, i) => ({ buffer: b.gpu!, writable: writable[i]! }));
  const key = decls.map((d) => `${storageFormat(d.dtype, ctx.nativeF16)}${d.dtype.name === 'bfloat16' ? 'b' : ''}${d.writable ? 'w' : 'r'}`).join(',') + ':' + names.join(',');
  return { bindings, decls, names, key };
}

export function tensorOperand(t: KernelTensor, write = false): { buffer: WebGpuBuffer; write: boolean } {
  return { buffer: t.buffer as WebGpuBuffer, write };
}

/** Shader preamble, bindings and helpers around a kernel body (which defines `main`). */
export function shader(ctx: KernelContext, decls: readonly BindingDecl[], body: string): string {
  // A body's own `enable` directives must precede every declaration.
  const directives = body.split('\n').filter((l) => l.startsWith('enable '));
  if (directives.length > 0) body = body.split('\n').filter((l) => !l.startsWith('enable ')).join('\n');
  return [
    ctx.nativeF16 ? 'enable f16;' : '',
    ...directives,
    '@group(0) @binding(0) var<storage, read> mt: array<u32>;',
    'fn mi(i: u32) -> i32 { return bitcast<i32>(mt[i]); }',
    'fn mf(i: u32) -> f32 { return bitcast<f32>(mt[i]); }',
    WGSL_HELPERS,
    ...decls.map((d) => bindingCode(d, ctx.nativeF16)),
    body,
  ].join('\n');
}

/**
 * WGSL: sums each workgroup array named in `reds` over a workgroup of `wg` threads (a power of two;
 * the thread index is `t`), as a tree; the sums end in element 0.
 */
export function workgroupSums(wg: number, ...reds: string[]): string {
  return `
  workgroupBarrier();
  for (var k = ${wg / 2}; k > 0; k = k / 2) {
    if (t < k) { ${reds.map((r) => `${r}[t] = ${r}[t] + ${r}[t + k];`).join(' ')} }
    workgroupBarrier();
  }`;
}

/** Workgroup counts for `n` threads in groups of `wg`, split over x and y past 65535 groups. */
export function groups1d(n: number, wg = WG): [number, number, number] {
  const g = Math.ceil(n / wg);
  if (g <= 65535) return [Math.max(g, 0), 1, 1];
  const y = Math.ceil(g / 65535);
  return [Math.ceil(g / y), y, 1];
}

/** The entry point's signature and the global thread index `gid` (i32). */
export function entry(wg = WG): string {
  return (
    `@compute @workgroup_size(${wg}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {\n` +
    `  let gid = i32((wid.y * nwg.x + wid.x) * ${wg}u + lid.x);\n`
  );
}

export function isContiguousView(t: KernelTensor): boolean {
  let s = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.strides[i] !== s) return false;
    s *= t.shape[i]!;
  }
  return true;
}

// The shape helpers are the reference codec's; kernels import them from here with the rest.
export { contiguousStrides, numel };

/**
 * Merge dimensions that every operand walks contiguously (stride[d] = stride[d+1] * shape[d+1])
 * and drop size-1 dimensions: fewer index divisions and fewer distinct pipelines.
 */
export const collapse = collapseDims;

/** WGSL that turns linear index `lin` into storage offsets `o0..` of each operand (rank from meta layout). */
export function stridedOffsets(rank: number, operands: number, linVar: string, shapeAt: number, offsetAt: (t: number) => number, strideAt: (t: number, d: number) => number): string {
  const lines: string[] = [`  var rem = ${linVar};`];
  for (let t = 0; t < operands; t++) lines.push(`  var o${t} = mi(${offsetAt(t)}u);`);
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`  { let sz = mi(${shapeAt + d}u); let ix = rem % sz; rem = rem / sz;`);
    for (let t = 0; t < operands; t++) lines.push(`    o${t} = o${t} + ix * mi(${strideAt(t, d)}u);`);
    lines.push('  }');
  }
  return lines.join('\n');
}

export function makeDispatch(key: string, code: () => string, bound: Bound, meta: Meta, groups: [number, number, number]): Dispatch {
  return { key: `${key}|${bound.key}`, code, bindings: bound.bindings, meta: meta.build(), groups };
}

/**
 * Run `fn` on contiguous versions of the operands: strided inputs are copied to scratch buffers
 * first, and outputs that are not contiguous views are computed into scratch buffers and copied
 * into place after (the hand-written kernels index contiguous data with an offset).
 */
export function withContiguous(
  ctx: KernelContext,
  inputs: readonly KernelTensor[],
  outputs: readonly KernelTensor[],
  copy: (src: KernelTensor, dst: KernelTensor) => void,
  fn: (inputs: KernelTensor[], outputs: KernelTensor[]) => void,
): void {
  const temps: WebGpuBuffer[] = [];
  const scratch = (t: KernelTensor): KernelTensor => {
    const buf = ctx.tempBuffer(t.dtype, Math.max(1, numel(t.shape)));
    temps.push(buf);
    return { buffer: buf, dtype: t.dtype, shape: t.shape, strides: contiguousStrides(t.shape), offset: 0 };
  };
  const ins = inputs.map((t) => {
    if (isContiguousView(t)) return { ...t, strides: contiguousStrides(t.shape) };
    const c = scratch(t);
    copy(t, c);
    return c;
  });
  const outs = outputs.map((t) => (isContiguousView(t) ? { ...t, strides: contiguousStrides(t.shape) } : scratch(t)));
  fn(ins, outs);
  outputs.forEach((t, i) => {
    if (outs[i]!.buffer !== t.buffer) copy(outs[i]!, t);
  });
  for (const b of temps) ctx.releaseTemp(b);
}
