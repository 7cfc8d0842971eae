/**
 * The per-op path's arrays keep one V8 elements kind in every tier (src/shape/packed.ts): built by
 * push, they are packed whether the builder runs in the interpreter or inlined into TurboFan code,
 * so shapes, strides, operand lists and thread parts do not change hidden class when the library's
 * JavaScript gets optimized (which deoptimized every function they reached: bench/README.md,
 * "warm-up"). Checked in a child process with V8's test natives (--allow-natives-syntax).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { filledNumbers, mapNumbers, mapPacked } from '../src/shape/packed.js';
import { collapseDims, contiguousStrides } from '../src/shape/strides.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const packed = new URL('../src/shape/packed.js', import.meta.url).href;
const strides = new URL('../src/shape/strides.js', import.meta.url).href;

/** Elements kinds ('Psmi', 'Pobj', 'Hsmi', ...) of each builder's result, interpreted and then optimized. */
function kinds(): Record<string, string[]> {
  const script = `
    const { filledNumbers, mapNumbers, mapPacked } = await import(${JSON.stringify(packed)});
    const { collapseDims, contiguousStrides } = await import(${JSON.stringify(strides)});
    const kind = (a) => (%HasHoleyElements(a) ? 'H' : 'P') + (%HasSmiElements(a) ? 'smi' : %HasDoubleElements(a) ? 'dbl' : 'obj');
    const shape = [4, 3, 2];
    const callers = {
      mapPacked: () => mapPacked(shape, (d) => ({ d })),
      mapNumbers: () => mapNumbers(shape, (d) => d * 2),
      filledNumbers: () => filledNumbers(3, 1),
      contiguousStrides: () => contiguousStrides(shape),
      collapseDims: () => collapseDims(shape, [contiguousStrides(shape), [0, 2, 1]]).strides[0],
      'Array.prototype.map (for contrast)': () => shape.map((d) => d * 2),
    };
    const out = {};
    for (const [name, f] of Object.entries(callers)) {
      %PrepareFunctionForOptimization(f);
      const interpreted = kind(f());
      f();
      %OptimizeFunctionOnNextCall(f);
      const optimized = kind(f());
      out[name] = [interpreted, optimized, %GetOptimizationStatus(f) & 16 ? 'turbofan' : 'not optimized'];
    }
    console.log(JSON.stringify(out));`;
  const stdout = execFileSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: here });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, string[]>;
}

describe('packed arrays on the per-op path', () => {
  it('the builders give what Array.prototype.map / new Array would', () => {
    assert.deepEqual(mapPacked([1, 2], (x, i) => ({ x, i })), [{ x: 1, i: 0 }, { x: 2, i: 1 }]);
    assert.deepEqual(mapNumbers([3, 4, 5], (x, i) => x * i), [0, 4, 10]);
    assert.deepEqual(filledNumbers(3, 1), [1, 1, 1]);
    assert.deepEqual(filledNumbers(0, 1), []);
    assert.deepEqual(contiguousStrides([2, 3, 4]), [12, 4, 1]);
    assert.deepEqual(contiguousStrides([]), []);
    // collapsing: size-1 dims dropped, contiguous neighbours merged, per stride list
    assert.deepEqual(collapseDims([2, 1, 3, 4], [[12, 12, 4, 1], [0, 0, 4, 1]]), { shape: [2, 12], strides: [[12, 1], [0, 1]] });
    assert.deepEqual(collapseDims([2, 3], [[1, 2]]), { shape: [2, 3], strides: [[1, 2]] });
  });

  it('are packed in the interpreter and in TurboFan code alike', { skip: typeof process.versions.v8 !== 'string' }, () => {
    const k = kinds();
    for (const name of ['mapPacked', 'mapNumbers', 'filledNumbers', 'contiguousStrides', 'collapseDims']) {
      const [interpreted, optimized, tier] = k[name]!;
      assert.equal(tier, 'turbofan', `${name}: the caller was not optimized (${JSON.stringify(k)})`);
      assert.ok(interpreted!.startsWith('P') && optimized === interpreted, `${name}: ${interpreted} interpreted, ${optimized} optimized`);
    }
  });
});
