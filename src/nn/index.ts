/** mx.nn: modules, layers, losses, initialisers, functional layers and gradient utilities. */
export * as functional from './functional.js';
export * as utils from './utils.js';
export * as init from './init.js';
export {
  Module, Sequential, ModuleList,
  type ForwardHook, type ForwardPreHook, type RemovableHandle, type StateDict, type ModuleToOptions,
  type LoadStateDictOptions, type LoadStateDictResult,
} from './module.js';
export {
  Linear, Identity, Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d,
  BatchNormBase, BatchNorm1d, BatchNorm2d, LayerNorm, Dropout, Embedding,
  ReLU, LeakyReLU, GELU, Tanh, Sigmoid, Softmax, LogSoftmax, Flatten,
  type LayerOptions, type Conv2dLayerOptions, type ConvTranspose2dLayerOptions, type MaxPool2dOptions,
  type AvgPool2dOptions, type BatchNormLayerOptions, type LayerNormLayerOptions, type EmbeddingOptions,
} from './layers.js';
export { LSTM, GRU, type RNNOptions } from './recurrent.js';
export {
  MultiheadAttention, TransformerEncoderLayer,
  type MultiheadAttentionOptions, type MultiheadAttentionForwardOptions,
  type TransformerEncoderLayerOptions, type TransformerEncoderLayerForwardOptions,
} from './transformer.js';
export {
  CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, BCEWithLogitsLoss, BCELoss,
  type CrossEntropyLossOptions, type NLLLossOptions, type BCEWithLogitsLossOptions,
} from './losses.js';
export * as parallel from './parallel/index.js';
