/**
 * One tiled GEMM template for bmm and the three convolution kernels (implicit GEMM: the im2col
 * matrix is never stored, its elements are computed in the tile loads). C[z][M,N] = A[z][M,K] B[z][K,N]
 * with 64x64 output tiles per 256-thread workgroup, 4x4 per thread (16x128, 1x8 per thread, when M <= 16),
 * K in steps of 16 through
 * workgroup memory, float32 accumulation, each output rounded once. Kernels differ only in their
 * loadA/loadB/storeC functions. When the output has few tiles and K is long (the weight gradient
 * of a convolution: K = batch * OH * OW) the K range is split over workgroups into float32 partials
 * that a second pass sums in a fixed order before the one rounding (split-K, deterministic).
 *
 *   bmm                   A = a (any strides), B = b (any strides)
 *   conv2d                per group: W[O/g, C/g*KH*KW] x im2col(x)[C/g*KH*KW, N*OH*OW] (+ bias)
 *   conv2dBackwardInput   per group: W^T[C/g, O/g*KH*KW] x (gy gathered back through the window)
 *   conv2dBackwardWeight  per group: gy[O/g, N*OH*OW] x im2col(x)^T
 */
import type { KernelTensor } from '../../backend.js';
import type { Conv2dParams as ConvParams, KernelParams } from '../../kernels.js';
import { float32 } from '../../../dtype/dtype.js';
import type { WebGpuBuffer } from '../buffers.js';
import { bind, makeDispatch, Meta, numel, shader, tensorOperand, withContiguous, type Bound, type KernelContext } from './common.js';
import { runElementwise } from './elementwise.js';
import { matrixTile, subgroupGemmCode } from './matmul_subgroup.js';

const TK = 16;

interface GemmSpec {
  key: string;
  M: number;
  N: number;
  K: number;
  Z: number;
  operands: { t: KernelTensor; write?: boolean }[];
  /** kernel-specific meta words, at index GEMM_META */
  extra: number[];
  /** WGSL: fn loadA(z, m, k) -> f32, fn loadB(z, k, n) -> f32, fn storeC(z, m, n, v) (m, n, k in range) */
  funcs: (nm: string[]) => string;
}

// meta: M, N, K, Z, splits, kChunk, then per operand offset, then extras
const GEMM_META = 6;

/** Tile shapes: 64x64 (4x4 per thread), and 16x128 (1x8 per thread) for outputs with few rows. */
interface Tile {
  TM: number;
  TN: number;
}
const BIG: Tile = { TM: 64, TN: 64 };
const WIDE: Tile = { TM: 16, TN: 128 };

/** Where a GEMM kernel puts output value `v` of (z, m, n): the output, or its split's float32 partials. */
function storeCode(split: boolean): string {
  return split ? `part[((u32(zs) * u32(M) + u32(m)) * u32(N) + u32(n))] = v;` : `storeC(z, m, n, v);`;
}

function gemmCode(funcs: string, split: boolean, tile: Tile): string {
  const { TM, TN } = tile;
  const RM = TM / 16;
  const RN = TN / 16;
  const store = storeCode(split);
  return `
${funcs}
var<workgroup> As: array<f32, ${TM * TK}>;
var<workgroup> Bs: array<f32, ${TK * TN}>;
@compute @workgroup_size(16, 16) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = mi(0u); let N = mi(1u); let K = mi(2u); let splits = mi(4u); let chunk = mi(5u);
  let zs = i32(wid.z);
  let z = zs / splits;
  let sp = zs % splits;
  let m0 = i32(wid.y) * ${TM};
  let n0 = i32(wid.x) * ${TN};
  let tx = i32(lid.x);
  let ty = i32(lid.y);
  let tid = ty * 16 + tx;
  let kBegin = sp * chunk;
  let kEnd = min(K, kBegin + chunk);
  var acc: array<f32, ${RM * RN}>;
  for (var i = 0; i < ${RM * RN}; i = i + 1) { acc[i] = 0.0; }
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${TK}) {
    for (var i = 0; i < ${(TM * TK) / 256}; i = i + 1) {
      let e = tid + i * 256;
      let mm = e / ${TK};
      let kk = e % ${TK};
      let m = m0 + mm;
      let k = k0 + kk;
      var v = 0.0;
      if (m < M && k < kEnd) { v = loadA(z, m, k); }
      As[kk * ${TM} + mm] = v;
    }
    for (var i = 0; i < ${(TK * TN) / 256}; i = i + 1) {
      let e = tid + i * 256;
      let kk = e / ${TN};
      let nn = e % ${TN};
      let n = n0 + nn;
      let k = k0 + kk;
      var v = 0.0;
      if (n < N && k < kEnd) { v = loadB(z, k, n); }
      Bs[kk * ${TN} + nn] = v;
    }
    workgroupBarrier();
    for (var kk = 0; kk < ${TK}; kk = kk + 1) {
      var a: array<f32, ${RM}>;
      var b: array<f32, ${RN}>;
      for (var i = 0; i < ${RM}; i = i + 1) { a[i] = As[kk * ${TM} + ty * ${RM} + i]; }
      for (var j = 0; j < ${RN}; j = j + 1) { b[j] = Bs[kk * ${TN} + tx * ${RN} + j]; }
      for (var i = 0; i < ${RM}; i = i + 1) {
        for (var j = 0; j < ${RN}; j = j + 1) { acc[i * ${RN} + j] = acc[i * ${RN} + j] + a[i] * b[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0; i < ${RM}; i = i + 1) {
    let m = m0 + ty * ${RM} + i;
    if (m >= M) { continue; }
    for (var j = 0; j < ${RN}; j = j + 1) {
      let n = n0 + tx * ${RN} + j;
      if (n >= N) { continue; }
      let v = acc[i * ${RN} + j];
      ${store}
    }
  }
}
`;
}

function finishCode(funcs: string): string {
  return `
${funcs}
@compute @workgroup_size(256) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = mi(0u); let N = mi(1u); let Z = mi(3u); let splits = mi(4u);
  let gid = i32((wid.y * nwg.x + wid.x) * 256u + lid.x);
  if (gid >= Z * M * N) { return; }
  let n = gid % N;
  let m = (gid / N) % M;
  let z = gid / (N * M);
  var v = 0.0;
  for (var s = 0; s < splits; s = s + 1) { v = v + part[((u32(z * splits + s) * u32(M) + u32(m)) * u32(N) + u32(n))]; }
  storeC(z, m, n, v);
}
`;
}

/** The matrix units take f16 operands: used when every operand the GEMM reads is float16. */
function usesMatrixUnits(ctx: KernelContext, spec: GemmSpec): boolean {
  return ctx.matrixUnits !== null && spec.operands.every((o) => o.write || o.t.dtype.name === 'float16');
}

function runGemm(ctx: KernelContext, spec: GemmSpec): void {
  const { M, N, K, Z } = spec;
  if (M * N * Z === 0) return;
  const units = usesMatrixUnits(ctx, spec) ? ctx.matrixUnits : null;
  const tile = units ? matrixTile(units) : M <= 16 ? WIDE : BIG;
  const { TM, TN } = tile;
  const body = (funcs: string, split: boolean) => (units ? subgroupGemmCode(funcs, storeCode(split), units) : gemmCode(funcs, split, tile));
  const variant = units ? `sgm${units.M}x${units.N}x${units.K}/${units.subgroupSize}` : `${TM}x${TN}`;
  if (units) ctx.sched.stats.matrixDispatches++;
  const tiles = Math.ceil(M / TM) * Math.ceil(N / TN) * Z;
  let splits = 1;
  if (tiles < 16 && K > 2048) splits = Math.min(Math.ceil(K / 1024), Math.max(1, Math.floor(64 / tiles)), Math.floor(65535 / Z));
  const chunk = splits > 1 ? Math.ceil(K / splits / TK) * TK : Math.max(K, 1);
  splits = Math.max(1, Math.ceil(K / chunk));
  const meta = (bound: Bound) => {
    void bound;
    const m = new Meta().ints([M, N, K, Z, splits, chunk]);
    for (const o of spec.operands) m.i(o.t.offset);
    return m.ints(spec.extra);
  };
  if (splits === 1) {
    const bound = bind(ctx, spec.operands.map((o) => tensorOperand(o.t, o.write ?? false)));
    const code = () => shader(ctx, bound.decls, body(spec.funcs(bound.names), false));
    ctx.sched.dispatch(makeDispatch(`gemm:${spec.key}:${variant}`, code, bound, meta(bound), [Math.ceil(N / TN), Math.ceil(M / TM), Z]));
    return;
  }
  const part: WebGpuBuffer = ctx.tempBuffer(float32, Z * splits * M * N);
  const partDecl = (b: Bound, writable: boolean) => `@group(0) @binding(${b.decls.length + 1}) var<storage, ${writable ? 'read_write' : 'read'}> part: array<f32>;\n`;
  {
    const bound = bind(ctx, spec.operands.map((o) => tensorOperand(o.t, o.write ?? false)));
    bound.bindings.push({ buffer: part.gpu!, writable: true });
    const code = () => shader(ctx, bound.decls, partDecl(bound, true) + body(spec.funcs(bound.names), true));
    ctx.sched.dispatch({ ...makeDispatch(`gemmsplit:${spec.key}:${variant}`, code, bound, meta(bound), [Math.ceil(N / TN), Math.ceil(M / TM), Z * splits]), bindings: bound.bindings });
  }
  {
    const bound = bind(ctx, spec.operands.map((o) => tensorOperand(o.t, o.write ?? false)));
    bound.bindings.push({ buffer: part.gpu!, writable: false });
    const code = () => shader(ctx, bound.decls, partDecl(bound, false) + finishCode(spec.funcs(bound.names)));
    const n = Z * M * N;
    const g = Math.ceil(n / 256);
    const groups: [number, number, number] = g <= 65535 ? [g, 1, 1] : [Math.ceil(g / Math.ceil(g / 65535)), Math.ceil(g / 65535), 1];
    ctx.sched.dispatch({ ...makeDispatch(`gemmfinish:${spec.key}`, code, bound, meta(bound), groups), bindings: bound.bindings });
  }
  ctx.releaseTemp(part);
}

/** Offset word of operand i in the GEMM metadata. */
const off = (i: number) => `mi(${GEMM_META + i}u)`;

export const MATMUL_KERNELS = ['bmm', 'conv2d', 'conv2dBackwardInput', 'conv2dBackwardWeight'] as const;
export type MatmulKernel = (typeof MATMUL_KERNELS)[number];
type ConvKernel = Exclude<MatmulKernel, 'bmm'>;

export function runMatmul(ctx: KernelContext, kernel: MatmulKernel, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<MatmulKernel>): void {
  const copy = (s: KernelTensor, d: KernelTensor) => runElementwise(ctx, 'copy', [s], [d], {});
  if (kernel === 'bmm') {
    // A and B are read through their strides; only the output must be contiguous.
    withContiguous(ctx, [], outputs, copy, (_, [out]) => bmm(ctx, inputs[0]!, inputs[1]!, out!));
    return;
  }
  withContiguous(ctx, inputs, outputs, copy, (ins, [out]) => conv(ctx, kernel, ins, out!, params as KernelParams<ConvKernel>));
}

function bmm(ctx: KernelContext, a: KernelTensor, b: KernelTensor, out: KernelTensor): void {
  const [B, M, K] = a.shape as [number, number, number];
  const N = b.shape[2]!;
  // extras: a strides (3), b strides (3)
  const E = GEMM_META + 3;
  runGemm(ctx, {
    key: 'bmm',
    M, N, K, Z: B,
    operands: [{ t: a }, { t: b }, { t: out, write: true }],
    extra: [...a.strides, ...b.strides],
    funcs: (nm) => `
fn loadA(z: i32, m: i32, k: i32) -> f32 { return ld_${nm[0]}(${off(0)} + z * mi(${E}u) + m * mi(${E + 1}u) + k * mi(${E + 2}u)); }
fn loadB(z: i32, k: i32, n: i32) -> f32 { return ld_${nm[1]}(${off(1)} + z * mi(${E + 3}u) + k * mi(${E + 4}u) + n * mi(${E + 5}u)); }
fn storeC(z: i32, m: i32, n: i32, v: f32) { st_${nm[2]}(${off(2)} + (z * mi(0u) + m) * mi(1u) + n, v); }
`,
  });
}

function conv(ctx: KernelContext, kernel: ConvKernel, ins: KernelTensor[], out: KernelTensor, p: ConvParams): void {
  const G = p.groups;
  let xShape: readonly number[], wShape: readonly number[], yShape: readonly number[];
  if (kernel === 'conv2d') [xShape, wShape, yShape] = [ins[0]!.shape, ins[1]!.shape, out.shape];
  else if (kernel === 'conv2dBackwardInput') [xShape, wShape, yShape] = [out.shape, ins[1]!.shape, ins[0]!.shape];
  else [xShape, wShape, yShape] = [ins[0]!.shape, out.shape, ins[1]!.shape];
  const [Nb, C, H, W] = xShape as [number, number, number, number];
  const [O, , KH, KW] = wShape as [number, number, number, number];
  const [, , OH, OW] = yShape as [number, number, number, number];
  const cPerG = C / G;
  const oPerG = O / G;
  const geom = [Nb, C, H, W, O, OH, OW, KH, KW, cPerG, oPerG, p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]];
  const E = GEMM_META + (kernel === 'conv2d' && ins.length > 2 ? 4 : 3);
  const g = (name: string, i: number) => `let ${name} = mi(${E + i}u);`;
  const geomCode = ['Nb', 'C', 'H', 'W', 'O', 'OH', 'OW', 'KH', 'KW', 'cPerG', 'oPerG', 'sh', 'sw', 'ph', 'pw', 'dh', 'dw'].map((n, i) => g(n, i)).join(' ');
  /** WGSL expression: input value at (img, channel-in-group c, kernel tap (kh, kw), output pixel (oh, ow)) of group z. */
  const im2col = (x: string, xOff: string) => `
fn im2col(z: i32, img: i32, c: i32, kh: i32, kw: i32, oh: i32, ow: i32) -> f32 {
  ${geomCode}
  let ih = oh * sh - ph + kh * dh;
  let iw = ow * sw - pw + kw * dw;
  if (ih < 0 || ih >= H || iw < 0 || iw >= W) { return 0.0; }
  return ld_${x}(${xOff} + ((img * C + z * cPerG + c) * H + ih) * W + iw);
}`;
  if (kernel === 'conv2d') {
    const hasBias = ins.length > 2;
    const operands = hasBias ? [{ t: ins[0]! }, { t: ins[1]! }, { t: ins[2]! }, { t: out, write: true }] : [{ t: ins[0]! }, { t: ins[1]! }, { t: out, write: true }];
    const oi = hasBias ? 3 : 2;
    runGemm(ctx, {
      key: `conv2d:${hasBias}`,
      M: oPerG, N: Nb * OH * OW, K: cPerG * KH * KW, Z: G,
      operands,
      extra: geom,
      funcs: (nm) => `
${im2col(nm[0]!, off(0))}
fn loadA(z: i32, m: i32, k: i32) -> f32 { ${geomCode} return ld_${nm[1]}(${off(1)} + (z * oPerG + m) * cPerG * KH * KW + k); }
fn loadB(z: i32, k: i32, n: i32) -> f32 {
  ${geomCode}
  let c = k / (KH * KW); let t = k % (KH * KW);
  let img = n / (OH * OW); let pix = n % (OH * OW);
  return im2col(z, img, c, t / KW, t % KW, pix / OW, pix % OW);
}
fn storeC(z: i32, m: i32, n: i32, v: f32) {
  ${geomCode}
  let img = n / (OH * OW); let pix = n % (OH * OW);
  let o = z * oPerG + m;
  ${hasBias ? `let bias = ld_${nm[2]}(${off(2)} + o);` : 'let bias = 0.0;'}
  st_${nm[oi]}(${off(oi)} + (img * O + o) * OH * OW + pix, v + bias);
}
`,
    });
    return;
  }
  if (kernel === 'conv2dBackwardInput') {
    // inputs (gy, w) -> gx
    runGemm(ctx, {
      key: 'conv2dBackwardInput',
      M: cPerG, N: Nb * H * W, K: oPerG * KH * KW, Z: G,
      operands: [{ t: ins[0]! }, { t: ins[1]! }, { t: out, write: true }],
      extra: geom,
      funcs: (nm) => `
fn loadA(z: i32, m: i32, k: i32) -> f32 {
  ${geomCode}
  let o = k / (KH * KW); let t = k % (KH * KW);
  return ld_${nm[1]}(${off(1)} + ((z * oPerG + o) * cPerG + m) * KH * KW + t);
}
fn loadB(z: i32, k: i32, n: i32) -> f32 {
  ${geomCode}
  let o = k / (KH * KW); let t = k % (KH * KW); let kh = t / KW; let kw = t % KW;
  let img = n / (H * W); let pix = n % (H * W); let ih = pix / W; let iw = pix % W;
  let th = ih + ph - kh * dh; let tw = iw + pw - kw * dw;
  if (th < 0 || tw < 0 || th % sh != 0 || tw % sw != 0) { return 0.0; }
  let oh = th / sh; let ow = tw / sw;
  if (oh >= OH || ow >= OW) { return 0.0; }
  return ld_${nm[0]}(${off(0)} + ((img * O + z * oPerG + o) * OH + oh) * OW + ow);
}
fn storeC(z: i32, m: i32, n: i32, v: f32) {
  ${geomCode}
  let img = n / (H * W); let pix = n % (H * W);
  st_${nm[2]}(${off(2)} + (img * C + z * cPerG + m) * H * W + pix, v);
}
`,
    });
    return;
  }
  // conv2dBackwardWeight: inputs (x, gy) -> gw
  runGemm(ctx, {
    key: 'conv2dBackwardWeight',
    M: oPerG, N: cPerG * KH * KW, K: Nb * OH * OW, Z: G,
    operands: [{ t: ins[0]! }, { t: ins[1]! }, { t: out, write: true }],
    extra: geom,
    funcs: (nm) => `
${im2col(nm[0]!, off(0))}
fn loadA(z: i32, m: i32, k: i32) -> f32 {
  ${geomCode}
  let img = k / (OH * OW); let pix = k % (OH * OW);
  return ld_${nm[1]}(${off(1)} + (img * O + z * oPerG + m) * OH * OW + pix);
}
fn loadB(z: i32, k: i32, n: i32) -> f32 {
  ${geomCode}
  let img = k / (OH * OW); let pix = k % (OH * OW);
  let c = n / (KH * KW); let t = n % (KH * KW);
  return im2col(z, img, c, t / KW, t % KW, pix / OW, pix % OW);
}
fn storeC(z: i32, m: i32, n: i32, v: f32) {
  ${geomCode}
  st_${nm[2]}(${off(2)} + (z * oPerG + m) * cPerG * KH * KW + n, v);
}
`,
  });
}

export function matmulSupports(kernel: string, inputs: readonly KernelTensor[]): boolean {
  void kernel;
  return inputs.every((t) => numel(t.shape) < 2 ** 31);
}
