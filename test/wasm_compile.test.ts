/**
 * How the wasm backend compiles its kernels (src/backend/wasm/index.ts, `WasmCompile`): 'optimized'
 * (the default) has every function compiled by TurboFan before the first kernel runs, so a fresh
 * process runs at its steady speed from the first step; 'lazy' is V8's default (Liftoff on the first
 * call, TurboFan later). Checked in child processes with V8's test natives (--allow-natives-syntax):
 * which tier a kernel's code is in, and that lazy compilation is restored for a module compiled
 * afterwards (which tier V8 then picks on its first call is V8's business: usually Liftoff, at times
 * TurboFan while the kernels' compile jobs wind down). Both modes compute the same bits; a bad
 * MIXPREC_WASM_COMPILE is a one-line error.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as mx from '../src/index.js';
import { WasmBackend, type WasmCompile } from '../src/backend/wasm/index.js';
import { rng } from './helpers/rng.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const entry = new URL('../src/backend/wasm/index.js', import.meta.url).href;
const generated = new URL('../src/backend/wasm/generated/kernels.js', import.meta.url).href;

/** The tiers V8 reports for a kernel export before and after its first call, and for a module compiled later. */
function tiers(mode: WasmCompile | 'env-default'): Record<string, boolean> {
  const script = `
    const { kernelModule } = await import(${JSON.stringify(entry)});
    const { INITIAL_PAGES, MAXIMUM_PAGES } = await import(${JSON.stringify(generated)});
    const mod = await kernelModule(true, 'plain'${mode === 'env-default' ? '' : `, ${JSON.stringify(mode)}`});
    const memory = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES, shared: true });
    const { exports } = await WebAssembly.instantiate(mod, { env: { memory, abort() {} } });
    const f = exports.heapBase;
    const out = { uncompiledBefore: %IsUncompiledWasmFunction(f), turbofanBefore: %IsTurboFanFunction(f) };
    f();
    out.liftoffAfter = %IsLiftoffFunction(f);
    out.turbofanAfter = %IsTurboFanFunction(f);
    // (module (func (export "f") (result i32) i32.const 7))
    const tiny = new Uint8Array([0,97,115,109,1,0,0,0,1,5,1,96,0,1,127,3,2,1,0,7,5,1,1,102,0,0,10,6,1,4,0,65,7,11]);
    const g = (await WebAssembly.instantiate(tiny)).instance.exports.f;
    out.laterUncompiled = %IsUncompiledWasmFunction(g);
    g();
    out.laterCompiled = !%IsUncompiledWasmFunction(g);
    console.log(JSON.stringify(out));`;
  const env = { ...process.env };
  delete env['MIXPREC_WASM_COMPILE'];
  const stdout = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { env, encoding: 'utf8', cwd: here });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, boolean>;
}

describe('wasm kernel compilation', () => {
  const isV8 = typeof process.versions.v8 === 'string';

  it("'optimized' (the default): every kernel is TurboFan code before its first call; lazy compilation restored after", { skip: !isV8 }, () => {
    for (const mode of ['optimized', 'env-default'] as const) {
      const t = tiers(mode);
      assert.deepEqual(
        t,
        { uncompiledBefore: false, turbofanBefore: true, liftoffAfter: false, turbofanAfter: true, laterUncompiled: true, laterCompiled: true },
        `${mode}: ${JSON.stringify(t)}`,
      );
    }
  });

  it("'lazy': V8's default (compiled on the first call, by Liftoff)", { skip: !isV8 }, () => {
    const t = tiers('lazy');
    assert.equal(t['uncompiledBefore'], true);
    assert.equal(t['liftoffAfter'], true);
    assert.equal(t['turbofanAfter'], false);
  });

  it('a bad MIXPREC_WASM_COMPILE is a one-line error', () => {
    const script = `const m = await import(${JSON.stringify(entry)}); await m.createWasmBackend({ threads: 1 });`;
    assert.throws(
      () => execFileSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, MIXPREC_WASM_COMPILE: 'eager' }, stdio: 'pipe', cwd: here }),
      /MIXPREC_WASM_COMPILE.*'eager'/,
    );
  });

  describe('both modes compute the same bits', () => {
    const made: WasmBackend[] = [];
    after(async () => {
      for (const b of made) await b.close();
      await mx.setBackend('reference');
    });
    it('a float16 and a bfloat16 matmul and a conv2d, optimized vs lazy vs the reference backend shape', async () => {
      const results: Record<string, number[][]> = {};
      for (const compile of ['optimized', 'lazy'] as const) {
        const b = await WasmBackend.create({ threads: 2, compile });
        made.push(b);
        mx.registerBackend(`wc-${compile}`, async () => b);
        await mx.setBackend(`wc-${compile}`);
        const r = rng(7);
        const data = (n: number) => Array.from({ length: n }, () => r() * 2 - 1);
        const out: number[][] = [];
        for (const dtype of ['float32', 'float16', 'bfloat16'] as const) {
          const a = mx.tensor(data(5 * 33), { dtype }).reshape([5, 33]);
          const w = mx.tensor(data(33 * 7), { dtype }).reshape([33, 7]);
          out.push(Array.from(await mx.matmul(a, w).to('float32').data()));
          const x = mx.tensor(data(2 * 3 * 8 * 8), { dtype }).reshape([2, 3, 8, 8]);
          const k = mx.tensor(data(4 * 3 * 3 * 3), { dtype }).reshape([4, 3, 3, 3]);
          out.push(Array.from(await mx.nn.functional.conv2d(x, k, null, { padding: 1 }).to('float32').data()));
        }
        results[compile] = out;
      }
      assert.deepEqual(results['lazy'], results['optimized']);
    });
  });
});
