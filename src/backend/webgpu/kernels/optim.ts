/**
 * Fused optimizer and loss-scaling kernels, from their reference definitions
 * (src/backend/reference/kernels/optim.ts): sgdUpdate, adamUpdate, ampUnscale (one thread per
 * element, in place) and ampUpdateScale (one thread). Scalars the step depends on (foundInf,
 * isFirst, step, invScale) are 0-d tensors read on the device, so a training step never waits for
 * the host. Arithmetic is float32 in the order of the op-by-op optimizer on this backend; where the
 * reference rounds a fused op (addcmul, addcdiv) once from float64, float32 may differ by an ulp.
 */
import type { KernelTensor } from '../../backend.js';
import type { KernelParams } from '../../kernels.js';
import { bind, collapse, entry, groups1d, isContiguousView, makeDispatch, Meta, numel, shader, stridedOffsets, tensorOperand, type KernelContext } from './common.js';

/** One thread per element of `shape`; 0-d operands are broadcast. Statement sees o<k> offsets and P<i> params. */
function encodeFused(
  ctx: KernelContext,
  key: string,
  shape: readonly number[],
  operands: readonly { t: KernelTensor; write?: boolean }[],
  stmt: (nm: string[]) => string,
  scalars: number[],
): void {
  const n = numel(shape);
  if (n === 0) return;
  const strides = operands.map((o) => (o.t.shape.length === 0 ? shape.map(() => 0) : o.t.strides));
  const c = collapse(shape, strides);
  const rank = c.shape.length;
  const bound = bind(ctx, operands.map((o) => tensorOperand(o.t, o.write ?? false)));
  const meta = new Meta().i(n).ints(c.shape);
  operands.forEach((o, i) => meta.i(o.t.offset).ints(c.strides[i]!));
  const paramAt = meta.length;
  for (const s of scalars) meta.f(s);
  const T = operands.length;
  const offsetAt = (t: number) => 1 + rank + t * (1 + rank);
  const code = () =>
    shader(
      ctx,
      bound.decls,
      entry() +
        '  if (gid >= mi(0u)) { return; }\n' +
        stridedOffsets(rank, T, 'gid', 1, offsetAt, (t, d) => offsetAt(t) + 1 + d) +
        '\n' +
        stmt(bound.names).replace(/P(\d+)/g, (_, i) => `mf(${paramAt + Number(i)}u)`) +
        '\n}\n',
    );
  ctx.sched.dispatch(makeDispatch(`${key}|r${rank}`, code, bound, meta, groups1d(n)));
}

const f32 = Math.fround;

/**
 * ampUnscale over a list of gradients ([g_1..g_k, invScale, foundInf] -> [g_1..g_k, foundInf]):
 * as few dispatches as the storage-binding limit allows (metadata, invScale and foundInf take three
 * bindings, each gradient one; foundInf is updated in place, as GradScaler passes it), one thread
 * per element of the chunk's gradients laid end to end. A strided gradient gets a dispatch of its own.
 */
function runAmpUnscale(ctx: KernelContext, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[]): void {
  const k = inputs.length - 2;
  const [invScale, foundIn] = [inputs[k]!, inputs[k + 1]!];
  const foundOut = outputs[k]!;
  const grads = outputs.slice(0, k).filter((g) => numel(g.shape) > 0);
  for (const g of grads.filter((g) => !isContiguousView(g))) {
    const ops = [{ t: g }, { t: invScale }, { t: foundIn }, { t: g, write: true }, { t: foundOut, write: true }];
    encodeFused(ctx, 'ampUnscale', g.shape, ops, (nm) => `  let x = ld_${nm[0]}(o0);\n  if (!is_finite(x)) { st_${nm[4]}(o4, 1.0); }\n  st_${nm[3]}(o3, x * ld_${nm[1]}(o1));`, []);
  }
  const flat = grads.filter(isContiguousView);
  const perDispatch = Math.max(1, ctx.maxStorageBuffers - 3);
  for (let c = 0; c < flat.length; c += perDispatch) {
    const chunk = flat.slice(c, c + perDispatch);
    const bound = bind(ctx, [tensorOperand(invScale), tensorOperand(foundOut, true), ...chunk.map((g) => tensorOperand(g, true))]);
    // meta: total, invScale offset, foundInf offset, then per gradient its end (exclusive) in the
    // concatenation and its element offset
    const ends: number[] = [];
    for (const g of chunk) ends.push((ends.at(-1) ?? 0) + numel(g.shape));
    const total = ends.at(-1)!;
    const meta = new Meta().i(total).i(invScale.offset).i(foundOut.offset);
    chunk.forEach((g, i) => meta.i(ends[i]!).i(g.offset));
    const [inv, found] = [bound.names[0]!, bound.names[1]!];
    const pick = chunk
      .map((_, i) => {
        const [end, off, start] = [3 + 2 * i, 4 + 2 * i, i === 0 ? '0' : `mi(${1 + 2 * i}u)`];
        const body = `e = mi(${off}u) + gid - ${start}; x = ld_${bound.names[2 + i]}(e); st_${bound.names[2 + i]}(e, x * s);`;
        return i === chunk.length - 1 ? `{ ${body} }` : `if (gid < mi(${end}u)) { ${body} }`;
      })
      .join(' else ');
    const code = () =>
      shader(
        ctx,
        bound.decls,
        entry() +
          `  if (gid >= mi(0u)) { return; }\n  let s = ld_${inv}(mi(1u));\n  var e: i32;\n  var x: f32;\n  ${pick}\n` +
          `  if (!is_finite(x)) { st_${found}(mi(2u), 1.0); }\n}\n`,
      );
    ctx.sched.dispatch({ key: `ampUnscale*${chunk.length}|${bound.key}`, code, bindings: bound.bindings, meta: meta.build(), groups: groups1d(total) });
  }
}

export const OPTIM_KERNELS = ['sgdUpdate', 'adamUpdate', 'ampUnscale', 'ampUpdateScale'] as const;

export type OptimKernel = (typeof OPTIM_KERNELS)[number];

export function runOptim(ctx: KernelContext, kernel: OptimKernel, inputs: readonly KernelTensor[], outputs: readonly KernelTensor[], params: KernelParams<OptimKernel>): void {
  switch (kernel) {
    case 'sgdUpdate': {
      const p = params as KernelParams<'sgdUpdate'>;
      const hasMomentum = p.momentum !== 0;
      let k = 2;
      const bufIn = hasMomentum ? k++ : -1;
      const firstIn = p.firstInput ? k++ : -1;
      const foundIn = p.foundInfInput ? k++ : -1;
      const nIn = inputs.length;
      const ops = [...inputs.map((t) => ({ t })), ...outputs.map((t) => ({ t, write: true }))];
      const wOut = nIn;
      const bOut = nIn + 1;
      const flagOut = p.flagOutput ? nIn + 2 : -1;
      const flags = `${hasMomentum}${!!p.nesterov}${!!p.maximize}${p.weightDecay !== 0}${firstIn >= 0}${foundIn >= 0}${flagOut >= 0}`;
      encodeFused(ctx, `sgd:${flags}`, inputs[0]!.shape, ops, (nm) => {
        const L = (i: number) => `ld_${nm[i]}(o${i})`;
        const lines: string[] = [];
        // the next isFirst flag is another tensor than the one every thread reads: no race
        if (flagOut >= 0) lines.push(`  if (gid == 0) { st_${nm[flagOut]}(o${flagOut}, select(0.0, ${L(firstIn)}, nonzero(${L(foundIn)}))); }`);
        if (foundIn >= 0) {
          lines.push(`  if (nonzero(${L(foundIn)})) {`);
          lines.push(`    str_${nm[wOut]}(o${wOut}, ldr_${nm[0]}(o0));`);
          if (hasMomentum) lines.push(`    str_${nm[bOut]}(o${bOut}, ldr_${nm[bufIn]}(o${bufIn}));`);
          lines.push('    return;\n  }');
        }
        lines.push(`  let wv = ${L(0)};\n  var d = ${L(1)};`);
        if (p.maximize) lines.push('  d = -d;');
        if (p.weightDecay !== 0) lines.push('  d = d + wv * P3;');
        if (hasMomentum) {
          const first = firstIn >= 0 ? `nonzero(${L(firstIn)})` : 'P4 != 0.0';
          lines.push(`  var b = ${L(bufIn)} * P1 + d * P2;\n  if (${first}) { b = d; }\n  st_${nm[bOut]}(o${bOut}, b);`);
          lines.push(p.nesterov ? '  d = d + b * P1;' : '  d = b;');
        }
        lines.push(`  st_${nm[wOut]}(o${wOut}, wv - d * P0);`);
        return lines.join('\n');
      }, [f32(p.lr), f32(p.momentum), f32(1 - p.dampening), f32(p.weightDecay), p.first ? 1 : 0]);
      return;
    }
    case 'adamUpdate': {
      const p = params as KernelParams<'adamUpdate'>;
      const amsgrad = !!p.amsgrad;
      let k = 4;
      const vmaxIn = amsgrad ? k++ : -1;
      const stepIn = p.stepInput ? k++ : -1;
      const foundIn = p.foundInfInput ? k++ : -1;
      const nIn = inputs.length;
      const ops = [...inputs.map((t) => ({ t })), ...outputs.map((t) => ({ t, write: true }))];
      const [wO, mO, vO, xO] = [nIn, nIn + 1, nIn + 2, nIn + 3];
      const lr = p.lr;
      const wdv = p.weightDecay;
      const b1 = p.beta1;
      const b2 = p.beta2;
      const flags = `${amsgrad}${!!p.maximize}${wdv !== 0}${!!p.decoupled}${stepIn >= 0}${foundIn >= 0}`;
      const stepNeg = stepIn >= 0 ? 0 : f32(-(lr / p.biasCorrection1!));
      const bc2 = stepIn >= 0 ? 0 : f32(p.biasCorrection2Sqrt!);
      // P0 b1, P1 1-b1, P2 b2, P3 1-b2, P4 eps, P5 wd, P6 decay, P7 stepNeg, P8 bc2s, P9 lr, P10 beta1 (raw), P11 beta2 (raw)
      encodeFused(ctx, `adam:${flags}`, inputs[0]!.shape, ops, (nm) => {
        const L = (i: number) => `ld_${nm[i]}(o${i})`;
        const lines: string[] = [];
        if (foundIn >= 0) {
          lines.push(`  if (nonzero(${L(foundIn)})) {`);
          lines.push(`    str_${nm[wO]}(o${wO}, ldr_${nm[0]}(o0)); str_${nm[mO]}(o${mO}, ldr_${nm[2]}(o2)); str_${nm[vO]}(o${vO}, ldr_${nm[3]}(o3));`);
          if (amsgrad) lines.push(`    str_${nm[xO]}(o${xO}, ldr_${nm[vmaxIn]}(o${vmaxIn}));`);
          lines.push('    return;\n  }');
        }
        lines.push(`  var wv = ${L(0)};\n  var g = ${L(1)};`);
        if (p.maximize) lines.push('  g = -g;');
        if (wdv !== 0) lines.push(p.decoupled ? '  wv = wv * P6;' : '  g = g + wv * P5;');
        lines.push(`  let m = ${L(2)} * P0 + g * P1;`);
        lines.push(`  let v = ${L(3)} * P2 + P3 * g * g;`);
        lines.push('  var s = v;');
        if (amsgrad) lines.push(`  s = max_nan(${L(vmaxIn)}, v);\n  st_${nm[xO]}(o${xO}, s);`);
        if (stepIn >= 0) {
          lines.push(`  let step = ${L(stepIn)};`);
          lines.push('  let stepNeg = -(P9 / (1.0 - pow_(P10, step)));');
          lines.push('  let bc2 = sqrt(1.0 - pow_(P11, step));');
        } else lines.push('  let stepNeg = P7;\n  let bc2 = P8;');
        lines.push('  let denom = sqrt(s) / bc2 + P4;');
        lines.push(`  st_${nm[wO]}(o${wO}, wv + (stepNeg * m) / denom);`);
        lines.push(`  st_${nm[mO]}(o${mO}, m);\n  st_${nm[vO]}(o${vO}, v);`);
        return lines.join('\n');
      }, [f32(b1), f32(1 - b1), f32(b2), f32(1 - b2), f32(p.eps), f32(wdv), f32(1 - lr * wdv), stepNeg, bc2, lr, b1, b2]);
      return;
    }
    case 'ampUnscale':
      runAmpUnscale(ctx, inputs, outputs);
      return;
    case 'ampUpdateScale': {
      const p = params as KernelParams<'ampUpdateScale'>;
      // inputs [scale, tracker, streak, skipped?, foundInf] -> outputs [scale, tracker, streak, skipped?], all 0-d
      const count = !!p.countSkipped;
      const ops = [...inputs.map((t) => ({ t })), ...outputs.map((t) => ({ t, write: true }))];
      const [fi, o0] = count ? [4, 5] : [3, 4];
      // P0 growth, P1 backoff, P2 interval, P3 hysteresis, P4 minScale, P5 maxScale
      encodeFused(ctx, `ampUpdateScale:${count}`, [], ops, (nm) =>
        `  var scale = ld_${nm[0]}(o0);\n  var tracker = ld_${nm[1]}(o1);\n  var streak = ld_${nm[2]}(o2);\n` +
        (count ? `  st_${nm[o0 + 3]}(o${o0 + 3}, ld_${nm[3]}(o3) + select(0.0, 1.0, nonzero(ld_${nm[fi]}(o${fi}))));\n` : '') +
        `  if (nonzero(ld_${nm[fi]}(o${fi}))) {\n    tracker = 0.0;\n    streak = streak + 1.0;\n` +
        `    if (streak >= P3) { streak = 0.0; scale = max(scale * P1, P4); }\n  } else {\n    streak = 0.0;\n    let t = tracker + 1.0;\n` +
        `    if (t == P2) { let g = scale * P0; if (is_finite(g)) { scale = min(g, P5); } tracker = 0.0; } else { tracker = t; }\n  }\n` +
        `  st_${nm[o0]}(o${o0}, scale);\n  st_${nm[o0 + 1]}(o${o0 + 1}, tracker);\n  st_${nm[o0 + 2]}(o${o0 + 2}, streak);`,
      [p.growthFactor, p.backoffFactor, p.growthInterval, p.hysteresis, p.minScale, Math.min(p.maxScale, 3.4028234663852886e38)]);
      return;
    }
  }
  throw new Error(`webgpu: no optimizer kernel '${kernel}'`);
}
