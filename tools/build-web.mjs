#!/usr/bin/env node
/**
 * Build the browser playground (web/) into dist/web/, which `mixprec serve` serves and the npm
 * package ships: esbuild bundles web/src/main.ts with the library's sources (TypeScript, read
 * directly), Vega, Vega-Lite and tar-stream into playground.js, and the wasm backend's pool worker
 * into worker.js beside it (the backend starts it as new URL('./worker.js', import.meta.url)).
 * Node-only modules the bundle never reaches in a browser (node:*, the `webgpu` npm package, loaded
 * only where navigator.gpu is missing) stay external. Types are checked by tsc -p tsconfig.web.json.
 */
import { build } from 'esbuild';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: { playground: 'web/src/main.ts', worker: 'src/backend/wasm/worker.ts' },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  external: ['node:*', 'webgpu'],
  minify: true,
  sourcemap: false, // the package ships the bundle; a 6 MB map is not worth it
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) await copyFile(join(root, 'web', f), join(out, f));
