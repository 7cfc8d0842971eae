/**
 * The public API without side effects: everything `import 'mixprec'` exports, but no backend is
 * selected (the reference backend is current until `await mx.setBackend(...)`). The package entry
 * (index.ts) adds the default backend; the CLI imports this and picks its backend from its flags.
 */
import './tensor/methods.js';
import './ops/conv.js';
import './nn/functional.js';
export { Tensor } from './tensor/tensor.js';
export type { DTypeName, FInfo } from './dtype/dtype.js';
export type { DataArray } from './tensor/host.js';
export * as dtypes from './dtypes.js';
export { manualSeed, Generator, defaultGenerator } from './random/generator.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd/mode.js';
export { gradcheck, type GradcheckOptions, type GradcheckResult } from './autograd/gradcheck.js';
export { scope, keep, memory } from './tensor/scope.js';
export { setBackend, getBackend, listBackends, registerBackend, defaultBackendName, type BackendOptions, type BackendFactory } from './backend/registry.js';
export type { Backend, DeviceBuffer, KernelTensor, MemoryStats } from './backend/backend.js';
export type { KernelName, KernelParams, KernelParamsMap } from './backend/kernels.js';
export { allOps, getOp, type OpDef, type AutocastCategory } from './ops/registry.js';

export {
  tensor, zeros, ones, full, zerosLike, onesLike, fullLike, arange, linspace, eye, rand, randn, randint,
  type TensorOptions, type RandomOptions, type TensorData,
} from './ops/creation.js';
export {
  add, sub, mul, div, pow, neg, abs, sign, exp, log, log1p, sqrt, rsqrt, tanh, sigmoid, relu, leakyRelu, gelu,
  clamp, where, maximum, minimum, square, eq, ne, lt, le, gt, ge, logicalAnd, logicalOr, logicalNot, isfinite,
} from './ops/elementwise.js';
export { sum, mean, max, min, argmax, argmin, logsumexp, variance as var, softmax, logSoftmax } from './ops/reduce.js';
export {
  reshape, view, permute, transpose, t, flatten, squeeze, unsqueeze, expand, narrow, contiguous, cat, stack, indexSelect, gather,
} from './ops/shape.js';
export { matmul, bmm } from './ops/linalg.js';
export { reciprocal, softplus, prod, cumsum, norm, cosineSimilarity, atan2, addcmul, addcdiv, dot, mm, addmm, baddbmm } from './ops/math.js';
export * as nn from './nn/index.js';
export * as amp from './amp/index.js';
export * as optim from './optim/index.js';
export * as io from './io/index.js';
export * as models from './models/index.js';
export * as data from './data/index.js';
export * as distributed from './distributed/index.js';
