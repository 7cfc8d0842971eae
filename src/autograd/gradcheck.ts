/**
 * gradcheck: compares autograd's vector-Jacobian product with central finite differences in float64.
 * One random projection v of the output is checked: <v, f(x)> is differentiated both ways.
 */
import { float64 } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { numbersToStorage } from '../tensor/host.js';
import { noGrad } from './mode.js';
import { Generator } from '../random/generator.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
}

export interface GradcheckResult {
  ok: boolean;
  maxAbsError: number;
  /** Human-readable description of the worst mismatch, when not ok. */
  message: string;
}

function asF64(values: ArrayLike<number>, shape: readonly number[], requiresGrad: boolean): Tensor {
  return Tensor.fromStorage(numbersToStorage(values, float64), shape, float64, { requiresGrad });
}

/**
 * `fn` maps float64 tensors to one float64 tensor. Inputs that do not require grad (e.g. int32
 * indices) are passed through untouched.
 */
export async function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], options: GradcheckOptions = {}): Promise<GradcheckResult> {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  for (const x of inputs) {
    if (x.requiresGrad && x.dtype !== 'float64') throw new TypeError(`gradcheck: inputs that require grad must be float64, got ${x.dtype}`);
  }
  const values = await Promise.all(inputs.map(async (x) => Float64Array.from(await x.data())));
  const fresh = () => inputs.map((x, i) => (x.requiresGrad ? asF64(values[i]!, x.shape, true) : x));

  const xs = fresh();
  const out = fn(...xs);
  const gen = new Generator(options.seed ?? 1234);
  const v = new Float64Array(out.numel).map(() => gen.nextDouble() * 2 - 1);
  const vT = asF64(v, out.shape, false);
  out.backward(vT.to(out.dt));
  const analytic = await Promise.all(xs.map(async (x) => (x.requiresGrad && x.grad ? Float64Array.from(await x.grad.data()) : null)));

  const project = async (args: Tensor[]): Promise<number> => {
    const y = noGrad(() => fn(...args));
    const d = await y.data();
    let s = 0;
    for (let i = 0; i < d.length; i++) s += d[i]! * v[i]!;
    return s;
  };

  let worst = 0;
  let message = '';
  for (let k = 0; k < inputs.length; k++) {
    if (!inputs[k]!.requiresGrad) continue;
    const base = values[k]!;
    for (let i = 0; i < base.length; i++) {
      const perturbed = (delta: number) =>
        inputs.map((x, j) => {
          if (j !== k) return x.requiresGrad ? asF64(values[j]!, x.shape, false) : x;
          const p = Float64Array.from(base);
          p[i]! += delta;
          return asF64(p, x.shape, false);
        });
      const numeric = ((await project(perturbed(eps))) - (await project(perturbed(-eps)))) / (2 * eps);
      const a = analytic[k]?.[i] ?? 0;
      const err = Math.abs(a - numeric);
      if (err > atol + rtol * Math.abs(numeric) && err > worst) {
        worst = err;
        message = `input ${k}, element ${i}: analytical ${a}, numerical ${numeric}`;
      }
    }
  }
  return { ok: message === '', maxAbsError: worst, message };
}
