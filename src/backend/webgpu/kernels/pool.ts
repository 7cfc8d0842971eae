/**
 * 2-D pooling over [planes, H, W] (leading dims folded), contiguous operands: max (first maximum
 * of each window, NaN wins), average (PyTorch's divisor rules) and adaptive average, forward one
 * thread per output, backward one thread per input element that sums over the windows containing
 * it (no atomics: deterministic).
 */
import type { KernelTensor } from '../../backend.js';
import type { KernelParams, Pool2dParams } from '../../kernels.js';
import { bind, entry, groups1d, makeDispatch, Meta, numel, shader, tensorOperand, withContiguous, type KernelContext } from './common.js';
import { runElementwise } from './elementwise.js';

function planes(shape: readonly number[]): [number, number, number] {
  const H = shape[shape.length - 2]!;
  const W = shape[shape.length - 1]!;
  return [numel(shape) / (H * W) || 0, H, W];
}


// meta: n, P, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, countIncludePad, divisorOverride(0 = none), off0, off1, off2
const GEOM = `
  let H = mi(2u); let W = mi(3u); let OH = mi(4u); let OW = mi(5u);
  let kh = mi(6u); let kw = mi(7u); let sh = mi(8u); let sw = mi(9u); let ph = mi(10u); let pw = mi(11u); let dh = mi(12u); let dw = mi(13u);
  let cip = mi(14u) != 0; let dov = mi(15u);
`;

/** WGSL: first maximum index (-1 if the window is all padding) of output (pl, oh, ow) of input x (binding name). */
const maxWindow = (x: string) => `
fn window_max(pl: i32, oh: i32, ow: i32) -> i32 {
  ${GEOM}
  var best = -1;
  var bv = 0.0;
  for (var i = 0; i < kh; i = i + 1) {
    let ih = oh * sh - ph + i * dh;
    if (ih < 0 || ih >= H) { continue; }
    for (var j = 0; j < kw; j = j + 1) {
      let iw = ow * sw - pw + j * dw;
      if (iw < 0 || iw >= W) { continue; }
      let idx = (pl * H + ih) * W + iw;
      let v = ld_${x}(mi(16u) + idx);
      if (best < 0 || v > bv || (is_nan(v) && !is_nan(bv))) { best = idx; bv = v; }
    }
  }
  return best;
}`;

/** WGSL: divisor and clipped window of average-pool output (oh, ow). */
const avgWindow = `
fn avg_window(oh: i32, ow: i32) -> vec4<i32> {
  ${GEOM}
  var h0 = oh * sh - ph; var w0 = ow * sw - pw;
  var h1 = min(h0 + kh, H + ph); var w1 = min(w0 + kw, W + pw);
  return vec4<i32>(h0, w0, h1, w1);
}
fn avg_divisor(win: vec4<i32>) -> f32 {
  ${GEOM}
  let pool = (win.z - win.x) * (win.w - win.y);
  let h0 = max(win.x, 0); let w0 = max(win.y, 0); let h1 = min(win.z, H); let w1 = min(win.w, W);
  if (dov != 0) { return f32(dov); }
  return f32(select((h1 - h0) * (w1 - w0), pool, cip));
}`;

function encodePool(ctx: KernelContext, key: string, inShape: readonly number[], outShape: readonly number[], ops: KernelTensor[], writeLast: boolean, p: Partial<Pool2dParams>, threads: number, body: (nm: string[]) => string): void {
  const [P, H, W] = planes(inShape);
  const [, OH, OW] = planes(outShape);
  const bound = bind(ctx, ops.map((t, i) => tensorOperand(t, writeLast && i === ops.length - 1)));
  const [dh, dw] = p.dilation ?? [1, 1];
  const meta = new Meta()
    .i(threads)
    .ints([P, H, W, OH, OW, p.kernel?.[0] ?? 0, p.kernel?.[1] ?? 0, p.stride?.[0] ?? 1, p.stride?.[1] ?? 1, p.padding?.[0] ?? 0, p.padding?.[1] ?? 0, dh, dw, p.countIncludePad ? 1 : 0, p.divisorOverride ?? 0])
    .ints([ops[0]!.offset, ops[1]?.offset ?? 0, ops[2]?.offset ?? 0]);
  const code = () => shader(ctx, bound.decls, body(bound.names));
  ctx.sched.dispatch(makeDispatch(key, code, bound, meta, groups1d(threads)));
}

export const POOL_KERNELS = ['maxPool2d', 'maxPool2dBackward', 'avgPool2d', 'avgPool2dBackward', 'adaptiveAvgPool2d', 'adaptiveAvgPool2dBackward'] as const;

export type PoolKernel = (typeof POOL_KERNELS)[number];

export function runPool(ctx: KernelContext, kernel: PoolKernel, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<PoolKernel>): void {
  const copy = (s: KernelTensor, d: KernelTensor) => runElementwise(ctx, 'copy', [s], [d], {});
  withContiguous(ctx, inputs, outputs, copy, (ins, outs) => runPoolContiguous(ctx, kernel, ins, outs, params));
}

/** `p`: the window of the fixed-window kernels; the adaptive ones have none (their windows come from the shapes). */
function runPoolContiguous(ctx: KernelContext, kernel: PoolKernel, ins: KernelTensor[], outs: KernelTensor[], p: Partial<Pool2dParams>): void {
  const out = outs[0]!;
  const head = (n: string) => entry() + `  if (gid >= mi(0u)) { return; }\n${GEOM}\n  let ${n} = gid;\n`;
  switch (kernel) {
    case 'maxPool2d': {
      const x = ins[0]!;
      encodePool(ctx, 'maxPool2d', x.shape, out.shape, [x, out], true, p, numel(out.shape), (nm) =>
        maxWindow(nm[0]!) + '\n' + head('o') +
        `  let ow = o % OW; let oh = (o / OW) % OH; let pl = o / (OW * OH);\n  let b = window_max(pl, oh, ow);\n` +
        `  if (b < 0) { st_${nm[1]}(mi(17u) + o, -inf_f32()); } else { str_${nm[1]}(mi(17u) + o, ldr_${nm[0]}(mi(16u) + b)); }\n}\n`,
      );
      return;
    }
    case 'maxPool2dBackward': {
      const [x, gy] = ins as [KernelTensor, KernelTensor];
      encodePool(ctx, 'maxPool2dBackward', x.shape, gy.shape, [x, gy, out], true, p, numel(x.shape), (nm) =>
        maxWindow(nm[0]!) + '\n' + head('i') +
        `  let iw = i % W; let ih = (i / W) % H; let pl = i / (W * H);\n  var acc = 0.0;\n` +
        `  let ohl = max(0, (ih + ph - (kh - 1) * dh + sh - 1) / sh); let ohh = min(OH - 1, (ih + ph) / sh);\n` +
        `  let owl = max(0, (iw + pw - (kw - 1) * dw + sw - 1) / sw); let owh = min(OW - 1, (iw + pw) / sw);\n` +
        `  for (var oh = ohl; oh <= ohh; oh = oh + 1) {\n    for (var ow = owl; ow <= owh; ow = ow + 1) {\n` +
        `      if (window_max(pl, oh, ow) == i) { acc = acc + ld_${nm[1]}(mi(17u) + (pl * OH + oh) * OW + ow); }\n    }\n  }\n` +
        `  st_${nm[2]}(mi(18u) + i, acc);\n}\n`,
      );
      return;
    }
    case 'avgPool2d': {
      const x = ins[0]!;
      encodePool(ctx, 'avgPool2d', x.shape, out.shape, [x, out], true, p, numel(out.shape), (nm) =>
        avgWindow + '\n' + head('o') +
        `  let ow = o % OW; let oh = (o / OW) % OH; let pl = o / (OW * OH);\n  let win = avg_window(oh, ow);\n  let dv = avg_divisor(win);\n` +
        `  let h0 = max(win.x, 0); let w0 = max(win.y, 0); let h1 = min(win.z, H); let w1 = min(win.w, W);\n  var acc = 0.0;\n` +
        `  for (var ih = h0; ih < h1; ih = ih + 1) { for (var iw = w0; iw < w1; iw = iw + 1) { acc = acc + ld_${nm[0]}(mi(16u) + (pl * H + ih) * W + iw) * (1.0 / dv); } }\n` +
        `  st_${nm[1]}(mi(17u) + o, acc);\n}\n`,
      );
      return;
    }
    case 'avgPool2dBackward': {
      const gy = ins[0]!;
      encodePool(ctx, 'avgPool2dBackward', out.shape, gy.shape, [gy, out], true, p, numel(out.shape), (nm) =>
        avgWindow + '\n' + head('i') +
        `  let iw = i % W; let ih = (i / W) % H; let pl = i / (W * H);\n  var acc = 0.0;\n` +
        `  let ohl = max(0, (ih + ph - kh + sh) / sh); let ohh = min(OH - 1, (ih + ph) / sh);\n` +
        `  let owl = max(0, (iw + pw - kw + sw) / sw); let owh = min(OW - 1, (iw + pw) / sw);\n` +
        `  for (var oh = ohl; oh <= ohh; oh = oh + 1) {\n    for (var ow = owl; ow <= owh; ow = ow + 1) {\n` +
        `      let win = avg_window(oh, ow);\n      let h0 = max(win.x, 0); let w0 = max(win.y, 0); let h1 = min(win.z, H); let w1 = min(win.w, W);\n` +
        `      if (ih >= h0 && ih < h1 && iw >= w0 && iw < w1) { acc = acc + ld_${nm[0]}(mi(16u) + (pl * OH + oh) * OW + ow) * (1.0 / avg_divisor(win)); }\n    }\n  }\n` +
        `  st_${nm[1]}(mi(17u) + i, acc);\n}\n`,
      );
      return;
    }
    case 'adaptiveAvgPool2d': {
      const x = ins[0]!;
      encodePool(ctx, 'adaptiveAvgPool2d', x.shape, out.shape, [x, out], true, p, numel(out.shape), (nm) =>
        head('o') +
        `  let ow = o % OW; let oh = (o / OW) % OH; let pl = o / (OW * OH);\n` +
        `  let h0 = (oh * H) / OH; let h1 = ((oh + 1) * H + OH - 1) / OH; let w0 = (ow * W) / OW; let w1 = ((ow + 1) * W + OW - 1) / OW;\n` +
        `  let wt = 1.0 / f32((h1 - h0) * (w1 - w0));\n  var acc = 0.0;\n` +
        `  for (var ih = h0; ih < h1; ih = ih + 1) { for (var iw = w0; iw < w1; iw = iw + 1) { acc = acc + ld_${nm[0]}(mi(16u) + (pl * H + ih) * W + iw) * wt; } }\n` +
        `  st_${nm[1]}(mi(17u) + o, acc);\n}\n`,
      );
      return;
    }
    case 'adaptiveAvgPool2dBackward': {
      const gy = ins[0]!;
      encodePool(ctx, 'adaptiveAvgPool2dBackward', out.shape, gy.shape, [gy, out], true, p, numel(out.shape), (nm) =>
        head('i') +
        `  let iw = i % W; let ih = (i / W) % H; let pl = i / (W * H);\n  var acc = 0.0;\n` +
        `  let ohl = max(0, (ih * OH) / H - 1); let ohh = min(OH - 1, ((ih + 1) * OH) / H + 1);\n` +
        `  let owl = max(0, (iw * OW) / W - 1); let owh = min(OW - 1, ((iw + 1) * OW) / W + 1);\n` +
        `  for (var oh = ohl; oh <= ohh; oh = oh + 1) {\n    let h0 = (oh * H) / OH; let h1 = ((oh + 1) * H + OH - 1) / OH;\n    if (ih < h0 || ih >= h1) { continue; }\n` +
        `    for (var ow = owl; ow <= owh; ow = ow + 1) {\n      let w0 = (ow * W) / OW; let w1 = ((ow + 1) * W + OW - 1) / OW;\n` +
        `      if (iw >= w0 && iw < w1) { acc = acc + ld_${nm[0]}(mi(16u) + (pl * OH + oh) * OW + ow) / f32((h1 - h0) * (w1 - w0)); }\n    }\n  }\n` +
        `  st_${nm[1]}(mi(17u) + i, acc);\n}\n`,
      );
      return;
    }
  }
  throw new Error(`webgpu: no pooling kernel '${kernel}'`);
}
