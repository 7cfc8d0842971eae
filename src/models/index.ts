/** mx.models: ready-made networks. */
export { LeNet, type LeNetOptions } from './lenet.js';
