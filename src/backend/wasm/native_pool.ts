/**
 * Native handlers of adaptive average pooling (assembly/kernels/adaptive_pool.ts: ResNet's global
 * average pool and its gradient), float32 / float16 / bfloat16, contiguous [..., H, W] with the
 * leading dimensions as planes, split across threads by planes. Bit for bit the reference kernels.
 */
import { numel } from '../../shape/strides.js';
import { contiguous, fmtOf, unsafeAlias } from './layout.js';
import type { KernelTensor } from '../backend.js';
import type { NativeContext, NativeKernels } from './native.js';
import { COST, minPerPart } from './native_rows.js';
import { mapPacked } from '../../shape/packed.js';

/** The pooling geometry when `big` ([..., H, W]) and `small` ([..., OH, OW]) share their planes, else null. */
function geometry(big: KernelTensor, small: KernelTensor): { planes: number; H: number; W: number; OH: number; OW: number } | null {
  const r = big.shape.length;
  if (r < 3 || small.shape.length !== r || big.shape.slice(0, -2).some((d, i) => d !== small.shape[i])) return null;
  const [H, W] = big.shape.slice(-2) as [number, number];
  const [OH, OW] = small.shape.slice(-2) as [number, number];
  if (H < 1 || W < 1 || OH < 1 || OW < 1) return null;
  return { planes: numel(big.shape.slice(0, -2)), H, W, OH, OW };
}

/** Run `kernel` (forward: x -> y; backward: gy -> dx) over planes split into thread parts. */
function pool(ctx: NativeContext, kernel: 'adaptive_avgpool' | 'adaptive_avgpool_grad', src: KernelTensor, dst: KernelTensor, big: KernelTensor, small: KernelTensor): boolean {
  const fmt = fmtOf(src.dtype);
  if (!fmt || dst.dtype !== src.dtype || !contiguous(src) || !contiguous(dst) || unsafeAlias(src, dst)) return false;
  const g = geometry(big, small);
  if (!g) return false;
  if (g.planes === 0) return true;
  // per plane: every input read once (forward) or every input written once from its windows (backward)
  const work = g.H * g.W + g.OH * g.OW;
  const parts = ctx.pool.split(g.planes, Math.ceil(minPerPart(COST.cast) / work));
  const ps = ctx.address(src);
  const pd = ctx.address(dst);
  ctx.pool.run(`${kernel}_${fmt}`, mapPacked(parts, ([p0, p1]) => [ps, pd, g.H, g.W, g.OH, g.OW, p0, p1]));
  return true;
}

export const POOL_KERNELS = {
  adaptiveAvgPool2d: (ctx, [x], [y]) => !!x && !!y && pool(ctx, 'adaptive_avgpool', x, y, x, y),
  adaptiveAvgPool2dBackward: (ctx, [gy], [dx]) => !!gy && !!dx && pool(ctx, 'adaptive_avgpool_grad', gy, dx, dx, gy),
} satisfies NativeKernels;
