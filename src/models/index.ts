/** mx.models: ready-made networks. */
import { LeNet } from './lenet.js';
import { WideCNN } from './wide_cnn.js';

export { LeNet, type LeNetOptions } from './lenet.js';
export { WideCNN, type WideCNNOptions } from './wide_cnn.js';
export { DCGANGenerator, DCGANDiscriminator, dcganInit_, type DCGANOptions } from './dcgan.js';
export { CharLSTM, type CharLSTMOptions, type LSTMState } from './char_lm.js';
export { sampleLogits, type SampleOptions } from './sampling.js';
export { GPT, gpt, type GPTConfig, type GenerateOptions } from './gpt.js';

/** The image classifiers `mixprec train`, `mixprec eval` and `mixprec bench train` build by name. */
export const CLASSIFIER_MODELS = ['lenet', 'widecnn'] as const;
export type ClassifierModelName = (typeof CLASSIFIER_MODELS)[number];

export interface ClassifierOptions {
  inChannels?: number;
  imageSize?: number;
  numClasses?: number;
  /** WideCNN's channel width (default 64); LeNet has none. */
  width?: number;
}

/** A classifier's channel width: WideCNN's, undefined for LeNet (which has none). */
export function classifierWidth(model: LeNet | WideCNN): number | undefined {
  return model instanceof WideCNN ? model.width : undefined;
}

/** A classifier by name: 'lenet' (the seed's LeNet) or 'widecnn' (WideCNN). */
export function createModel(name: ClassifierModelName, options: ClassifierOptions = {}): LeNet | WideCNN {
  const { width, ...common } = options;
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

