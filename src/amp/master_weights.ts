/**
 * O2 mixed precision: a 16-bit model with float32 master weights in the optimizer.
 *
 *   const opt = new mx.optim.SGD(model.parameters(), { lr });      // built on the float32 parameters
 *   mx.amp.masterWeights(model, opt, { dtype: 'float16' });         // model -> float16 (norms stay float32)
 *   const loss = lossFn(model.forward(x.half()).float(), y);        // loss in float32
 *   scaler.scale(loss).backward(); scaler.step(opt); scaler.update();
 *
 * The optimizer keeps the original float32 tensors as masters. Each 16-bit parameter's gradient is
 * routed into its master's float32 `.grad` (nothing accumulates in 16 bits), so GradScaler unscales
 * float32 gradients; after every `opt.step()` the masters are rounded into the model's parameters.
 */
import { float32, type DTypeName } from '../dtype/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/mode.js';
import { accumulateGrad, setGradientHome } from '../autograd/accumulate.js';
import { castTo } from '../ops/util.js';
import type { OptimizerLike } from '../optim/optimizer.js';

export interface MasterWeightsModel {
  namedParameters(): Iterable<[string, Tensor]>;
  to(dtype: DTypeName, options?: { keepNormInFloat32?: boolean }): unknown;
}

export interface MasterWeights {
  /** Parameter name -> its float32 master (the tensor the optimizer updates). */
  readonly masters: ReadonlyMap<string, Tensor>;
  /** Parameter name -> the model's 16-bit parameter. */
  readonly halves: ReadonlyMap<string, Tensor>;
  /** Copy the masters into the model's parameters (done after every optimizer step). */
  syncModel(): void;
  /** Stop routing gradients and restore the optimizer's own step(). */
  detach(): void;
}

export function masterWeights(
  model: MasterWeightsModel,
  optimizer: OptimizerLike & { step(): unknown },
  options: { dtype?: 'float16' | 'bfloat16'; keepNormInFloat32?: boolean } = {},
): MasterWeights {
  const dtype = options.dtype ?? 'float16';
  const before = new Map(model.namedParameters());
  const optimized = new Set(optimizer.paramGroups.flatMap((g) => g.params));
  for (const [name, p] of before) {
    if (p.dtype !== 'float32') throw new TypeError(`masterWeights: parameter ${name} is ${p.dtype}; the model must start in float32`);
    if (!optimized.has(p)) throw new Error(`masterWeights: parameter ${name} is not in the optimizer; build the optimizer on model.parameters() first`);
  }
  model.to(dtype, { keepNormInFloat32: options.keepNormInFloat32 ?? true });

  const masters = new Map<string, Tensor>();
  const halves = new Map<string, Tensor>();
  const removers: (() => void)[] = [];
  for (const [name, p] of model.namedParameters()) {
    const master = before.get(name)!;
    if (p === master) continue; // kept in float32 (batch norm)
    masters.set(name, master);
    halves.set(name, p);
    const hook = p.registerHook((g) => {
      accumulateGrad(master, castTo(g, float32));
      return null; // the 16-bit parameter keeps no gradient of its own
    });
    setGradientHome(p, master);
    removers.push(() => {
      hook.remove();
      setGradientHome(p, null);
    });
  }

  const syncModel = () =>
    noGrad(() => {
      for (const [name, half] of halves) half.copy_(masters.get(name)!);
    });
  const ownStep = optimizer.step;
  optimizer.step = function (this: unknown, ...args: unknown[]) {
    const result = (ownStep as (...a: unknown[]) => unknown).apply(optimizer, args);
    syncModel();
    return result;
  };
  return {
    masters,
    halves,
    syncModel,
    detach: () => {
      for (const r of removers.splice(0)) r();
      optimizer.step = ownStep;
    },
  };
}
