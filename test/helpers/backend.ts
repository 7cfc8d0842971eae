/**
 * Imported first by the op suites: names the backend they run on, the package's default (importing
 * it selects MIXPREC_BACKEND, else wasm). `npm test` runs every suite twice: MIXPREC_BACKEND=reference
 * and MIXPREC_BACKEND=wasm.
 */
import * as mx from '../../src/index.js';

export const backendName = mx.defaultBackendName();
await mx.setBackend(backendName);
