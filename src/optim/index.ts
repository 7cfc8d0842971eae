/** mx.optim: optimizers (arithmetic in float32 for every parameter dtype). */
export { Optimizer, type OptimizerLike, type ParamGroup, type ParamGroupInit, type ParamState } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
