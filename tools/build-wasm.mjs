#!/usr/bin/env node
/**
 * Compile the wasm backend's kernels (assembly/index.ts, AssemblyScript) and write
 *   src/backend/wasm/generated/kernels.ts   the module's bytes as base64, with its memory limits
 *   src/backend/wasm/generated/mixprec.wasm the same bytes, for wasm-objdump / wasm2wat / benchmarks
 * (both gitignored). Run by `npm run build` and `npm run build:test` before tsc.
 *
 * Skips the compile when the generated module already holds the hash of the current sources and
 * flags; `--force` recompiles anyway, `--wat` also writes mixprec.wat.
 * Pure JS (the assemblyscript package bundles binaryen as wasm): no native compiler is needed.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const entry = 'assembly/index.ts';
const outDir = join(root, 'src/backend/wasm/generated');
const outTs = join(outDir, 'kernels.ts');
const outWasm = join(outDir, 'mixprec.wasm');

/** Memory limits in 64 KiB pages: the runtime creates the shared memory with the same numbers. */
const INITIAL_PAGES = 64;
const MAXIMUM_PAGES = 32768; // 2 GiB: every byte address is a non-negative int32

const FLAGS = [
  '--runtime', 'stub',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory', String(INITIAL_PAGES),
  '--maximumMemory', String(MAXIMUM_PAGES),
  '--enable', 'simd,threads',
  '-O3',
  '--noAssert',
];

const args = new Set(process.argv.slice(2));
const force = args.has('--force');
const wat = args.has('--wat');

async function sources(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

async function sourceHash() {
  const h = createHash('sha256');
  const ascPkg = JSON.parse(await readFile(join(root, 'node_modules/assemblyscript/package.json'), 'utf8'));
  h.update(`asc ${ascPkg.version}\n${FLAGS.join(' ')}\n`);
  h.update(await readFile(fileURLToPath(import.meta.url)));
  for (const f of await sources(join(root, 'assembly'))) {
    h.update(`\0${relative(root, f)}\0`);
    h.update(await readFile(f));
  }
  return h.digest('hex').slice(0, 32);
}

async function currentHash() {
  try {
    const text = await readFile(outTs, 'utf8');
    return /SOURCE_HASH = '([0-9a-f]+)'/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

async function compile() {
  const asc = await import('assemblyscript/asc');
  const files = new Map();
  const stderr = [];
  const stdout = [];
  const argv = [entry, '--outFile', 'mixprec.wasm', ...(wat ? ['--textFile', 'mixprec.wat'] : []), ...FLAGS];
  const { error } = await asc.main(argv, {
    readFile: async (name, baseDir) => {
      try {
        return await readFile(resolve(root, baseDir, name), 'utf8');
      } catch {
        return null;
      }
    },
    writeFile: async (name, contents) => {
      files.set(name, contents);
    },
    listFiles: async (dirname, baseDir) => {
      try {
        return (await readdir(resolve(root, baseDir, dirname))).filter((f) => f.endsWith('.ts'));
      } catch {
        return null;
      }
    },
    stdout: { write: (s) => stdout.push(String(s)) },
    stderr: { write: (s) => stderr.push(String(s)) },
  });
  if (error) {
    process.stderr.write(stderr.join(''));
    throw new Error(`build-wasm: asc failed: ${error.message}`);
  }
  if (stderr.length) process.stderr.write(stderr.join('')); // warnings
  const wasm = files.get('mixprec.wasm');
  if (!wasm) throw new Error('build-wasm: asc wrote no mixprec.wasm');
  return { wasm: Buffer.from(wasm), wat: files.get('mixprec.wat') };
}

/** Section ids present in a module (to spot data segments). */
function sectionIds(wasm) {
  const ids = [];
  let p = 8;
  while (p < wasm.length) {
    const id = wasm[p++];
    let size = 0;
    let shift = 0;
    let b;
    do {
      b = wasm[p++];
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    ids.push(id);
    p += size;
  }
  return ids;
}

async function main() {
  const hash = await sourceHash();
  if (!force && (await currentHash()) === hash) {
    console.log(`build-wasm: ${relative(root, outTs)} is up to date`);
    return;
  }
  const t0 = Date.now();
  const { wasm, wat: text } = await compile();
  if (!WebAssembly.validate(wasm)) throw new Error('build-wasm: the compiled module does not validate');
  if (sectionIds(wasm).includes(11)) {
    // Active data segments are copied into the shared memory again by every worker's instantiation:
    // harmless for constants, a race for anything a kernel writes. Kernels should keep no static data.
    console.warn('build-wasm: warning: the module has data segments (static data in assembly/); workers re-initialise them');
  }
  const module = await WebAssembly.compile(wasm);
  const exports = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
  await mkdir(outDir, { recursive: true });
  const ts =
    `// Generated by tools/build-wasm.mjs from ${entry} (AssemblyScript): do not edit, not committed.\n` +
    `// asc ${FLAGS.join(' ')}\n` +
    `export const SOURCE_HASH = '${hash}';\n` +
    `export const INITIAL_PAGES = ${INITIAL_PAGES};\n` +
    `export const MAXIMUM_PAGES = ${MAXIMUM_PAGES};\n` +
    `/** The module's function exports (kernels), in export order. */\n` +
    `export const KERNEL_EXPORTS: readonly string[] = ${JSON.stringify(exports)};\n` +
    `/** The module (${wasm.length} bytes), base64. */\n` +
    `export const WASM_BASE64 =\n  '${wasm.toString('base64')}';\n`;
  await writeFile(outTs, ts);
  await writeFile(outWasm, wasm);
  if (text) await writeFile(join(outDir, 'mixprec.wat'), text);
  console.log(`build-wasm: ${exports.length} kernels, ${wasm.length} bytes -> ${relative(root, outTs)} (${Date.now() - t0} ms)`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
