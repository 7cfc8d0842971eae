/** mx.nn: functional layers and gradient utilities (modules arrive with the training stack). */
export * as functional from './functional.js';
export * as utils from './utils.js';
