/**
 * mixprec: mixed precision deep learning for TypeScript.
 *
 *   import * as mx from 'mixprec';
 *   const a = mx.tensor([[1, 2], [3, 4]], { dtype: 'float16', requiresGrad: true });
 *
 * Importing the package selects the default backend: 'wasm' (WebAssembly SIMD kernels on every
 * core), or the one MIXPREC_BACKEND names; `await mx.setBackend(name)` switches.
 */
import { initDefaultBackend } from './backend/registry.js';

export * from './api.js';

await initDefaultBackend();
