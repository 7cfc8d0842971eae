/** mx.optim: optimizers (arithmetic in float32 for every parameter dtype) and learning-rate schedulers. */
export { Optimizer, type OptimizerLike, type OptimizerStepOptions, type ParamGroup, type ParamGroupInit, type ParamState } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions, type AdamWOptions, type AdamExtraOptions } from './adam.js';
export { RMSprop, type RMSpropOptions } from './rmsprop.js';
export * as lrScheduler from './lr_scheduler.js';
export {
  LRScheduler, StepLR, CosineAnnealingLR, LinearLR, SequentialLR, OneCycleLR,
  type SchedulerOptions, type LinearLROptions, type OneCycleLROptions,
} from './lr_scheduler.js';
