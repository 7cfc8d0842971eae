/**
 * mx.nn.init: in-place initialisers, PyTorch's torch.nn.init in camelCase.
 *
 * Each fills a tensor in place (outside autograd) and returns it. Values are drawn in float64 from
 * `options.generator` (default: `mx.defaultGenerator`, seeded by `mx.manualSeed`) and rounded once to
 * the tensor's dtype. The distributions and their bounds follow PyTorch's formulas exactly; the
 * random streams differ (mixprec's generator is xoshiro128**), so load PyTorch weights through
 * `loadStateDict` when results must match value for value.
 */
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from '../ops/creation.js';
import { noGrad } from '../autograd/mode.js';
import { scope } from '../tensor/scope.js';
import { defaultGenerator, type Generator } from '../random/generator.js';
import { shapeStr } from '../ops/util.js';

export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'convTranspose1d' | 'convTranspose2d' | 'convTranspose3d'
  | 'sigmoid' | 'tanh' | 'relu' | 'leakyRelu' | 'selu'
  | 'conv_transpose1d' | 'conv_transpose2d' | 'conv_transpose3d' | 'leaky_relu';

export type FanMode = 'fanIn' | 'fanOut';

/**
 * The recommended gain for a nonlinearity (PyTorch's calculate_gain): 1 for linear/conv/sigmoid,
 * 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leakyRelu (slope `param`, default
 * 0.01), 3/4 for selu. PyTorch's snake_case names are accepted too.
 */
export function calculateGain(nonlinearity: Nonlinearity, param?: number | null): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d':
    case 'convTranspose1d': case 'convTranspose2d': case 'convTranspose3d':
    case 'conv_transpose1d': case 'conv_transpose2d': case 'conv_transpose3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leakyRelu': case 'leaky_relu': {
      const slope = param ?? 0.01;
      if (typeof slope !== 'number' || !Number.isFinite(slope)) throw new TypeError(`calculateGain: negative slope ${String(slope)} is not a valid number`);
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu':
      return 3 / 4;
    default:
      throw new RangeError(`calculateGain: unsupported nonlinearity '${String(nonlinearity)}'`);
  }
}

/**
 * [fanIn, fanOut] of a weight of at least 2 dims: fanIn = shape[1] * receptive field, fanOut =
 * shape[0] * receptive field, the receptive field being the product of shape[2:] (PyTorch's rule, so a
 * ConvTranspose2d weight [in, out/groups, kh, kw] gets fanIn = out/groups * kh * kw).
 */
export function calculateFanInAndFanOut(t: Tensor | readonly number[]): [number, number] {
  const shape = Array.isArray(t) ? (t as readonly number[]) : (t as Tensor).shape;
  if (shape.length < 2) throw new RangeError(`calculateFanInAndFanOut: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions, got ${shapeStr(shape)}`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1]! * receptive, shape[0]! * receptive];
}

function fan(t: Tensor, mode: FanMode): number {
  if (mode !== 'fanIn' && mode !== 'fanOut') throw new RangeError(`init: mode must be 'fanIn' or 'fanOut', got '${String(mode)}'`);
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  return mode === 'fanIn' ? fanIn : fanOut;
}

/** Fill `t` with draw() values (float64), rounded once to t's dtype. */
function fill(t: Tensor, draw: () => number): Tensor {
  if (!t.dt.isFloating) throw new TypeError(`init: expected a floating point tensor, got ${t.dtype}`);
  const values = new Float64Array(t.numel);
  for (let i = 0; i < values.length; i++) values[i] = draw();
  noGrad(() => scope(() => void t.copy_(tensor(values, { shape: t.shape, dtype: 'float64' }))));
  return t;
}

export interface GeneratorOption {
  generator?: Generator;
}

/** U(a, b). */
export function uniform_(t: Tensor, a = 0, b = 1, options: GeneratorOption = {}): Tensor {
  const g = options.generator ?? defaultGenerator;
  return fill(t, () => a + (b - a) * g.nextDouble());
}

/** N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1, options: GeneratorOption = {}): Tensor {
  const g = options.generator ?? defaultGenerator;
  return fill(t, () => mean + std * g.nextNormal());
}

/** N(mean, std^2) truncated to [a, b] (by rejection). */
export function truncNormal_(t: Tensor, mean = 0, std = 1, a = -2, b = 2, options: GeneratorOption = {}): Tensor {
  if (!(a < b)) throw new RangeError(`truncNormal_: expected a < b, got a=${a}, b=${b}`);
  const g = options.generator ?? defaultGenerator;
  const lo = (a - mean) / std;
  const hi = (b - mean) / std;
  return fill(t, () => {
    for (let tries = 0; tries < 10000; tries++) {
      const z = g.nextNormal();
      if (z >= lo && z <= hi) return mean + std * z;
    }
    // A window far in the tail: fall back to uniform on it.
    return a + (b - a) * g.nextDouble();
  });
}

export function constant_(t: Tensor, value: number): Tensor {
  noGrad(() => t.fill_(value));
  return t;
}

export function zeros_(t: Tensor): Tensor {
  return constant_(t, 0);
}

export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

/** The identity in a 2-D tensor (ones on the diagonal). */
export function eye_(t: Tensor): Tensor {
  if (t.ndim !== 2) throw new RangeError(`eye_: only 2-D tensors are supported, got ${shapeStr(t.shape)}`);
  const [rows, cols] = t.shape as [number, number];
  let i = 0;
  return fill(t, () => {
    const r = Math.floor(i / cols);
    const c = i++ % cols;
    return r === c && r < rows ? 1 : 0;
  });
}

export interface XavierOptions extends GeneratorOption {
  gain?: number;
}

/** Glorot uniform: U(-a, a), a = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, options: XavierOptions = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const std = (options.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  const a = Math.sqrt(3) * std;
  return uniform_(t, -a, a, options);
}

/** Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fanIn + fanOut)). */
export function xavierNormal_(t: Tensor, options: XavierOptions = {}): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const std = (options.gain ?? 1) * Math.sqrt(2 / (fanIn + fanOut));
  return normal_(t, 0, std, options);
}

export interface KaimingOptions extends GeneratorOption {
  /** Negative slope of the rectifier after this layer (leakyRelu only). Default 0. */
  a?: number;
  /** 'fanIn' (default) preserves the forward variance, 'fanOut' the backward one. */
  mode?: FanMode;
  /** Default 'leakyRelu' (with a = 0 that is relu's gain). */
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, options: KaimingOptions): number {
  const gain = calculateGain(options.nonlinearity ?? 'leakyRelu', options.a ?? 0);
  const f = fan(t, options.mode ?? 'fanIn');
  if (f === 0) throw new RangeError(`kaiming init: fan of a tensor with zero elements ${shapeStr(t.shape)}`);
  return gain / Math.sqrt(f);
}

/**
 * He uniform: U(-bound, bound), bound = gain * sqrt(3 / fan). With a = sqrt(5) (what Linear and Conv
 * use by default) this is U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
 */
export function kaimingUniform_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, options);
  return uniform_(t, -bound, bound, options);
}

/** He normal: N(0, std^2), std = gain / sqrt(fan). */
export function kaimingNormal_(t: Tensor, options: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, options), options);
}
