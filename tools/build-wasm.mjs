#!/usr/bin/env node
/**
 * Compile the wasm backend's kernels (assembly/index.ts, AssemblyScript) twice, as two variants of
 * the same source:
 *   plain    `--enable simd,threads`               (every engine with wasm SIMD and threads)
 *   relaxed  `--enable simd,threads,relaxed-simd`  (ASC_FEATURE_RELAXED_SIMD: f32x4.relaxed_madd, a
 *            fused multiply-add where the CPU has one; Chrome 114+, Node 20 behind
 *            --experimental-wasm-relaxed-simd, which the runtime sets itself)
 * and write
 *   src/backend/wasm/generated/kernels.ts   both modules' bytes as base64, with the memory limits
 *   src/backend/wasm/generated/mixprec.wasm, mixprec-relaxed.wasm   the same bytes, for
 *                                           wasm-objdump / wasm2wat / benchmarks
 * (all gitignored). Run by `npm run build` and `npm run build:test` before tsc. The runtime picks a
 * variant when a backend is created (src/backend/wasm/index.ts, `simd`).
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

/** The two builds: name, output file, asc features. Their export lists must be identical. */
const VARIANTS = [
  { name: 'plain', file: 'mixprec.wasm', features: 'simd,threads' },
  { name: 'relaxed', file: 'mixprec-relaxed.wasm', features: 'simd,threads,relaxed-simd' },
];

/** Memory limits in 64 KiB pages: the runtime creates the shared memory with the same numbers. */
const INITIAL_PAGES = 64;
const MAXIMUM_PAGES = 32768; // 2 GiB: every byte address is a non-negative int32

/** asc flags of a variant (features: the `--enable` list). */
const flags = (features) => [
  '--runtime', 'stub',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory', String(INITIAL_PAGES),
  '--maximumMemory', String(MAXIMUM_PAGES),
  '--enable', features,
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
  h.update(`asc ${ascPkg.version}\n`);
  for (const v of VARIANTS) h.update(`${v.name}: ${flags(v.features).join(' ')}\n`);
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

async function compile(variant) {
  const asc = await import('assemblyscript/asc');
  const files = new Map();
  const stderr = [];
  const stdout = [];
  const watFile = variant.file.replace(/\.wasm$/, '.wat');
  const argv = [entry, '--outFile', variant.file, ...(wat ? ['--textFile', watFile] : []), ...flags(variant.features)];
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
    throw new Error(`build-wasm: asc failed (${variant.name}): ${error.message}`);
  }
  if (stderr.length) process.stderr.write(stderr.join('')); // warnings
  const wasm = files.get(variant.file);
  if (!wasm) throw new Error(`build-wasm: asc wrote no ${variant.file}`);
  return { wasm: Buffer.from(wasm), wat: files.get(watFile) };
}

/** Let this Node validate relaxed SIMD (Node 20 needs the flag; later versions ship it). */
async function enableRelaxedSimd() {
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
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
  await enableRelaxedSimd();
  const built = [];
  for (const variant of VARIANTS) {
    const { wasm, wat: text } = await compile(variant);
    if (!WebAssembly.validate(wasm)) throw new Error(`build-wasm: the compiled ${variant.name} module does not validate`);
    if (sectionIds(wasm).includes(11)) {
      // Active data segments are copied into the shared memory again by every worker's instantiation
      // (the same bytes): harmless for read-only constants (convert16.ts's table), a race for anything
      // a kernel writes. Kernels keep no writable static data.
      console.log(`build-wasm: note: the ${variant.name} module has data segments; they must stay read-only constants (each worker's instantiation rewrites them)`);
    }
    const module = await WebAssembly.compile(wasm);
    const exports = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name);
    built.push({ variant, wasm, text, exports });
  }
  const [plain, relaxed] = built;
  if (JSON.stringify(plain.exports) !== JSON.stringify(relaxed.exports)) {
    throw new Error('build-wasm: the plain and relaxed modules export different functions');
  }
  await mkdir(outDir, { recursive: true });
  const ts =
    `// Generated by tools/build-wasm.mjs from ${entry} (AssemblyScript): do not edit, not committed.\n` +
    built.map((b) => `// ${b.variant.name}: asc ${flags(b.variant.features).join(' ')}\n`).join('') +
    `export const SOURCE_HASH = '${hash}';\n` +
    `export const INITIAL_PAGES = ${INITIAL_PAGES};\n` +
    `export const MAXIMUM_PAGES = ${MAXIMUM_PAGES};\n` +
    `/** The modules' function exports (kernels), in export order (the same in both). */\n` +
    `export const KERNEL_EXPORTS: readonly string[] = ${JSON.stringify(plain.exports)};\n` +
    `/** The plain SIMD module (${plain.wasm.length} bytes), base64. */\n` +
    `export const WASM_BASE64 =\n  '${plain.wasm.toString('base64')}';\n` +
    `/** The relaxed SIMD module (${relaxed.wasm.length} bytes), base64: needs an engine that validates relaxed SIMD. */\n` +
    `export const WASM_RELAXED_BASE64 =\n  '${relaxed.wasm.toString('base64')}';\n`;
  await writeFile(outTs, ts);
  for (const b of built) {
    await writeFile(join(outDir, b.variant.file), b.wasm);
    if (b.text) await writeFile(join(outDir, b.variant.file.replace(/\.wasm$/, '.wat')), b.text);
  }
  console.log(
    `build-wasm: ${plain.exports.length} kernels, ${built.map((b) => `${b.variant.name} ${b.wasm.length} bytes`).join(', ')} -> ${relative(root, outTs)} (${Date.now() - t0} ms)`,
  );
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
