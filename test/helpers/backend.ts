/**
 * Imported first by the op suites: runs them on the backend named by MIXPREC_BACKEND
 * (default 'reference'), e.g. `MIXPREC_BACKEND=wasm node --test ...` (npm run test:wasm).
 */
import * as mx from '../../src/index.js';

export const backendName = process.env['MIXPREC_BACKEND'] || 'reference';
await mx.setBackend(backendName);
