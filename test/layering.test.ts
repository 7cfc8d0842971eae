/**
 * The layering of src/, checked on every import (static, re-export, side-effect and dynamic; type
 * imports too). The rules, as docs/design.md states them:
 * - nothing above src/backend/ imports a backend's files: only the kernel contract and the registry;
 * - no backend imports nn/, optim/, amp/, models/, train/, data/ or cli/ (nor anything above the contract);
 * - src/dtype/ (and src/shape/) import nothing of the library; mx.dtypes (src/dtypes.ts) only src/dtype/;
 * - a layer imports only from below it (tensor, autograd and ops are one core: Tensor's methods
 *   call ops, ops record autograd nodes).
 * They are the table MAY_IMPORT below: a new directory or top-level file needs a row.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** Layers by path under src/ (a directory ends in '/'); the first match wins. */
const LAYER_OF = [
  ['dtype/', 'dtype'],
  ['shape/', 'shape'],
  ['util/', 'util'],
  ['random/', 'random'],
  ['backend/backend.ts', 'backend contract'],
  ['backend/kernels.ts', 'backend contract'],
  ['backend/optim_math.ts', 'backend contract'],
  ['backend/attention_layout.ts', 'backend contract'],
  ['backend/registry.ts', 'backend registry'],
  ['backend/reference/', 'reference backend'],
  ['backend/wasm/', 'wasm backend'],
  ['backend/webgpu/', 'webgpu backend'],
  ['tensor/', 'tensor'],
  ['autograd/', 'autograd'],
  ['ops/', 'ops'],
  ['distributed/', 'distributed'],
  ['nn/', 'nn'],
  ['optim/', 'optim'],
  ['amp/', 'amp'],
  ['data/', 'data'],
  ['io/', 'io'],
  ['models/', 'models'],
  ['train/', 'train'],
  ['bench/', 'bench'],
  ['report/', 'report'],
  ['cli/', 'cli'],
  ['dtypes.ts', 'mx.dtypes'],
  ['api.ts', 'public api'],
  ['index.ts', 'public api'],
] as const;

type Layer = (typeof LAYER_OF)[number][1];

const BASE: readonly Layer[] = ['dtype', 'shape'];
const CORE: readonly Layer[] = [...BASE, 'random', 'backend contract', 'backend registry', 'tensor', 'autograd', 'ops'];
const LIBRARY: readonly Layer[] = [...CORE, 'distributed', 'util', 'nn', 'optim', 'amp', 'data', 'io', 'models', 'train', 'mx.dtypes'];

/** What each layer may import besides itself. */
const MAY_IMPORT: Readonly<Record<Layer, readonly Layer[]>> = {
  dtype: [],
  shape: [],
  util: [],
  random: [],
  'backend contract': BASE,
  // random/ (which imports nothing) holds the counter-based stream the dropout kernels regenerate
  'reference backend': [...BASE, 'random', 'backend contract'],
  // the faster backends run the reference kernels for what they do not cover natively
  'wasm backend': [...BASE, 'random', 'backend contract', 'reference backend'],
  'webgpu backend': [...BASE, 'random', 'backend contract', 'reference backend'],
  'backend registry': ['backend contract', 'reference backend', 'wasm backend', 'webgpu backend'],
  tensor: CORE,
  autograd: CORE,
  ops: CORE,
  // collectives on tensors; the layers above use them (DistributedDataParallel, DistributedSampler)
  distributed: CORE,
  nn: [...CORE, 'util', 'distributed'], // util/torch_names.ts: PyTorch's state-dict names
  optim: CORE,
  amp: [...CORE, 'optim'], // GradScaler steps an optimizer
  data: [...CORE, 'util', 'distributed'],
  io: [...CORE, 'util'], // FileError and the file budget, shared with data/
  // pretrained weights: downloaded (data/download.ts) and read (io/) by the ResNet factories
  models: [...CORE, 'util', 'nn', 'data', 'io'],
  train: [...CORE, 'distributed', 'nn', 'optim', 'amp', 'data', 'models'],
  'mx.dtypes': ['dtype'], // the dtype layer's public face
  bench: LIBRARY,
  // training logs and precision reports to figures: reads JSON lines (and amp's report type), not tensors
  report: ['amp'],
  'public api': LIBRARY,
  cli: [...LIBRARY, 'bench', 'report', 'public api'],
};

function layerOf(file: string): Layer | undefined {
  return LAYER_OF.find(([prefix]) => (prefix.endsWith('/') ? file.startsWith(prefix) : file === prefix))?.[1];
}

/** The library files an import of `source` (at `file`, both relative to src/) reaches; npm packages and node: are outside. */
function importsOf(file: string, source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
}

/** Every import that breaks the table, as "from -> to (from layer -> to layer)". */
function violations(files: ReadonlyMap<string, string>): string[] {
  const found: string[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    if (!from) {
      found.push(`${file}: in no layer (add it to LAYER_OF in test/layering.test.ts)`);
      continue;
    }
    for (const target of importsOf(file, source)) {
      const to = target.startsWith('../') ? undefined : layerOf(target);
      if (to === from) continue;
      if (!to || !MAY_IMPORT[from].includes(to)) found.push(`${file} -> ${target} (${from} -> ${to ?? 'outside src/'})`);
    }
  }
  return found;
}

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const library = new Map(sourceFiles(SRC).map((path) => [relative(SRC, path).split(sep).join('/'), readFileSync(path, 'utf8')]));

describe('layering of src/', () => {
  it('reads the imports of the whole library', () => {
    assert.ok(library.size > 100, `${library.size} files under ${SRC}`);
    const edges = [...library].reduce((n, [file, source]) => n + importsOf(file, source).length, 0);
    assert.ok(edges > 500, `${edges} imports`);
    assert.ok(importsOf('ops/dispatch.ts', library.get('ops/dispatch.ts')!).includes('tensor/tensor.ts'));
    // a dynamic import counts (the registry loads the wasm and webgpu backends on demand)
    assert.ok(importsOf('backend/registry.ts', library.get('backend/registry.ts')!).includes('backend/wasm/index.ts'));
  });

  it('every import follows the table', () => {
    assert.deepEqual(violations(library), []);
  });

  it('the table rejects the imports the rules forbid', () => {
    const bad = new Map([
      ['tensor/fake.ts', "import { numel } from '../backend/reference/codec.js';"],
      ['nn/fake.ts', "import type { NllParams } from '../backend/reference/kernels/nll.js';"],
      ['backend/reference/kernels/fake.ts', "import type { SGDOptions } from '../../../optim/sgd.js';"],
      ['backend/webgpu/fake.ts', "export { x } from '../../amp/grad_scaler.js';"],
      ['dtype/fake.ts', "import { shapeStr } from '../ops/util.js';"],
      ['dtypes.ts', "export { resultType } from './ops/util.js';"],
      ['api.ts', "const m = await import('./cli/main.js');"],
      ['ops/fake.ts', "import '../nn/functional.js';"],
      ['newdir/fake.ts', "import { float32 } from '../dtype/dtype.js';"],
    ]);
    assert.deepEqual(violations(bad), [
      'tensor/fake.ts -> backend/reference/codec.ts (tensor -> reference backend)',
      'nn/fake.ts -> backend/reference/kernels/nll.ts (nn -> reference backend)',
      'backend/reference/kernels/fake.ts -> optim/sgd.ts (reference backend -> optim)',
      'backend/webgpu/fake.ts -> amp/grad_scaler.ts (webgpu backend -> amp)',
      'dtype/fake.ts -> ops/util.ts (dtype -> ops)',
      'dtypes.ts -> ops/util.ts (mx.dtypes -> ops)',
      'api.ts -> cli/main.ts (public api -> cli)',
      'ops/fake.ts -> nn/functional.ts (ops -> nn)',
      'newdir/fake.ts: in no layer (add it to LAYER_OF in test/layering.test.ts)',
    ]);
  });
});
