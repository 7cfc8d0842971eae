/** mx.models: ready-made networks. */
import { LeNet } from './lenet.js';
import { WideCNN } from './wide_cnn.js';
import { createResNet, ResNet, RESNET_CONFIGS, type ResNetName, type ResNetStem } from './resnet.js';

export { LeNet, type LeNetOptions } from './lenet.js';
export { WideCNN, type WideCNNOptions } from './wide_cnn.js';
export { DCGANGenerator, DCGANDiscriminator, dcganInit_, type DCGANOptions } from './dcgan.js';
export { CharLSTM, type CharLSTMOptions, type LSTMState } from './char_lm.js';
export { sampleLogits, type SampleOptions } from './sampling.js';
export { GPT, gpt, type GPTConfig, type GenerateOptions } from './gpt.js';
export {
  ResNet, BasicBlock, Bottleneck, createResNet, RESNET_CONFIGS,
  type ResNetOptions, type ResNetBlock, type ResNetStem, type ResNetName,
} from './resnet.js';
export {
  resnet18, resnet34, resnet50, loadStateDictFromUrl, downloadWeights, mixprecHome, RESNET_WEIGHTS, TORCHVISION_MODELS_URL,
  type ResNetFactoryOptions, type DownloadWeightsOptions,
} from './resnet_weights.js';

/** The image classifiers `mixprec train`, `mixprec eval` and `mixprec bench train` build by name. */
export const CLASSIFIER_MODELS = ['lenet', 'widecnn', 'resnet18', 'resnet34', 'resnet50'] as const;
export type ClassifierModelName = (typeof CLASSIFIER_MODELS)[number];

export interface ClassifierOptions {
  inChannels?: number;
  imageSize?: number;
  numClasses?: number;
  /** WideCNN's channel width (default 64), a ResNet's stem width (default 64); LeNet has none. */
  width?: number;
  /** ResNets: 'imagenet' (default) or 'cifar' (3x3 stride-1 conv1, no max-pool). */
  stem?: ResNetStem;
}

export type Classifier = LeNet | WideCNN | ResNet;

/** A classifier's channel width: WideCNN's or a ResNet's, undefined for LeNet (which has none). */
export function classifierWidth(model: Classifier): number | undefined {
  return model instanceof WideCNN || model instanceof ResNet ? model.width : undefined;
}

export function isResNetName(name: string): name is ResNetName {
  return Object.prototype.hasOwnProperty.call(RESNET_CONFIGS, name);
}

/** A classifier by name: 'lenet' (the seed's LeNet), 'widecnn' (WideCNN) or a ResNet (untrained; see resnet18() for weights). */
export function createModel(name: ClassifierModelName, options: ClassifierOptions = {}): Classifier {
  const { width, stem, ...common } = options;
  if (stem !== undefined && !isResNetName(name)) throw new RangeError(`createModel: '${name}' has no stem option (got stem ${stem})`);
  if (isResNetName(name)) return createResNet(name, { inChannels: common.inChannels, numClasses: common.numClasses, width, stem });
  switch (name) {
    case 'lenet':
      if (width !== undefined) throw new RangeError(`createModel: 'lenet' has no width option (got width ${width})`);
      return new LeNet(common);
    case 'widecnn':
      return new WideCNN({ ...common, width });
    default:
      throw new RangeError(`createModel: unknown model '${String(name)}' (models: ${CLASSIFIER_MODELS.join(', ')})`);
  }
}

