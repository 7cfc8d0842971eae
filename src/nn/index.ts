/** mx.nn: functional layers for now (modules arrive with the training stack). */
export * as functional from './functional.js';
