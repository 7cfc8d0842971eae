/** mx.models: ready-made networks. */
export { LeNet, type LeNetOptions } from './lenet.js';
export { DCGANGenerator, DCGANDiscriminator, dcganInit_, type DCGANOptions } from './dcgan.js';
export { CharLSTM, sample as sampleLogits, type CharLSTMOptions, type LSTMState } from './char_lm.js';
