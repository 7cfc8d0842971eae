// Standalone harness: compile the AssemblyScript kernels to a scratch .wasm,
// instantiate it on a shared WebAssembly.Memory, and run kernel calls on N
// threads (main thread = part 0, worker_threads = parts 1..N-1) that all
// instantiate the same module on the same memory. Dispatch uses an Int32Array
// control block + Atomics.wait/notify (no postMessage per call).
import { execFileSync } from "node:child_process";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

/** Compile entry.ts; variant "simd" (default) or "relaxed" (relaxed_madd). Returns the .wasm path. */
export function build(variant = "simd", { force = false } = {}) {
  const outDir = path.join(os.tmpdir(), "mixprec-kernels");
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `kernels-${variant}.wasm`);
  const srcs = [path.join(here, "entry.ts"), ...fs.readdirSync(path.join(root, "assembly/kernels")).map((f) => path.join(root, "assembly/kernels", f))];
  const newest = Math.max(...srcs.map((f) => fs.statSync(f).mtimeMs));
  if (!force && fs.existsSync(out) && fs.statSync(out).mtimeMs > newest) return out;
  const feats = variant === "relaxed" ? "simd,threads,relaxed-simd" : "simd,threads";
  execFileSync(process.execPath, [path.join(root, "node_modules/assemblyscript/bin/asc.js"), path.join(here, "entry.ts"),
    "--runtime", "stub", "--importMemory", "--sharedMemory", "--maximumMemory", "32768",
    "--enable", feats, "-O3", "--noAssert", "--outFile", out], { stdio: ["ignore", "ignore", "inherit"], cwd: root });
  return out;
}

/** Can this engine run relaxed-SIMD? (Node 20: only with --experimental-wasm-relaxed-simd.) */
export function relaxedSimdSupported() {
  // (module (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
  const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0,
    10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 133, 2, 11]);
  try { return WebAssembly.validate(bytes); } catch { return false; }
}

/** The value after `--name` on the command line, or `dflt`. */
export function opt(name, dflt) {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}

/**
 * The correctness scripts' pool: `--threads` (default 2) threads over the `--variant` build (simd |
 * relaxed). Where the engine cannot run relaxed SIMD it says so and exits 0 (a skip, not a failure).
 */
export async function testPool() {
  const threads = Number(opt("threads", "2"));
  const variant = opt("variant", "simd");
  if (variant === "relaxed" && !relaxedSimdSupported()) {
    console.log("relaxed SIMD unavailable in this engine (Node 20: run with --experimental-wasm-relaxed-simd); skipped");
    process.exit(0);
  }
  return { pool: await Pool.create(build(variant), threads), threads, variant };
}

const CTRL_INTS = 64; // [0]=seq [1]=remaining [2]=fn index [3]=nargs [4]=quit, args as f64 in a separate view

export class Pool {
  static async create(wasmPath, threads, { initialPages = 8192 } = {}) {
    const memory = new WebAssembly.Memory({ initial: initialPages, maximum: 32768, shared: true });
    const module = new WebAssembly.Module(fs.readFileSync(wasmPath));
    const instance = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error("abort"); } } });
    const ctrlSab = new SharedArrayBuffer(CTRL_INTS * 4 + 64 * 8);
    const pool = new Pool(memory, module, instance, ctrlSab, threads);
    pool.syncAddr = pool.alloc(64);
    const fnNames = WebAssembly.Module.exports(module).filter((e) => e.kind === "function").map((e) => e.name);
    pool.fnNames = fnNames;
    const ready = [];
    for (let i = 1; i < threads; i++) {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { module, memory, ctrlSab, part: i, parts: threads, fnNames } });
      pool.workers.push(w);
      ready.push(new Promise((res, rej) => { w.once("message", res); w.once("error", rej); }));
    }
    await Promise.all(ready);
    return pool;
  }
  constructor(memory, module, instance, ctrlSab, threads) {
    this.memory = memory; this.module = module; this.exports = instance.exports; this.threads = threads;
    this.ctrl = new Int32Array(ctrlSab, 0, CTRL_INTS);
    this.args = new Float64Array(ctrlSab, CTRL_INTS * 4, 64);
    this.workers = [];
    this.heap = 1 << 20; // bump allocator start (the kernels have no static data)
    this.syncAddr = 0;
  }
  /** Bump-allocate `bytes` (64-byte aligned); grows memory as needed. */
  alloc(bytes) {
    const p = (this.heap + 63) & ~63;
    this.heap = p + bytes;
    const need = Math.ceil(this.heap / 65536) - this.memory.buffer.byteLength / 65536;
    if (need > 0) this.memory.grow(need);
    return p;
  }
  reset(to = 1 << 20) { this.heap = to; }
  /** The sync block of the kernels' dynamic work split (docs/kernels.md), zeroed: pass it as `sync`. */
  sync() { new Int32Array(this.memory.buffer, this.syncAddr, 16).fill(0); return this.syncAddr; }
  get u8() { return new Uint8Array(this.memory.buffer); }
  f32(p, n) { return new Float32Array(this.memory.buffer, p, n); }
  u16(p, n) { return new Uint16Array(this.memory.buffer, p, n); }
  /** Run exports[name](...args, part, parts) on all threads; returns when all are done. */
  call(name, ...args) {
    const n = this.threads;
    if (n === 1) { this.exports[name](...args, 0, 1); return; }
    const fi = this.fnNames.indexOf(name);
    for (let i = 0; i < args.length; i++) this.args[i] = args[i];
    Atomics.store(this.ctrl, 2, fi);
    Atomics.store(this.ctrl, 3, args.length);
    Atomics.store(this.ctrl, 1, n - 1);
    Atomics.add(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    this.exports[name](...args, 0, n);
    for (;;) {
      const r = Atomics.load(this.ctrl, 1);
      if (r === 0) break;
      Atomics.wait(this.ctrl, 1, r);
    }
  }
  async close() {
    Atomics.store(this.ctrl, 4, 1);
    Atomics.add(this.ctrl, 0, 1);
    Atomics.notify(this.ctrl, 0);
    await Promise.all(this.workers.map((w) => new Promise((res) => w.once("exit", res))));
  }
}

if (!isMainThread && workerData && workerData.ctrlSab) {
  const { module, memory, ctrlSab, part, parts, fnNames } = workerData;
  const instance = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error("abort"); } } });
  const ctrl = new Int32Array(ctrlSab, 0, CTRL_INTS);
  const argv = new Float64Array(ctrlSab, CTRL_INTS * 4, 64);
  const fns = fnNames.map((n) => instance.exports[n]);
  let seen = Atomics.load(ctrl, 0);
  parentPort.postMessage("ready");
  for (;;) {
    Atomics.wait(ctrl, 0, seen);
    seen = Atomics.load(ctrl, 0);
    if (Atomics.load(ctrl, 4)) break;
    const nargs = Atomics.load(ctrl, 3);
    const args = Array.from(argv.subarray(0, nargs));
    fns[Atomics.load(ctrl, 2)](...args, part, parts);
    if (Atomics.sub(ctrl, 1, 1) === 1) Atomics.notify(ctrl, 1);
  }
  process.exit(0);
}
