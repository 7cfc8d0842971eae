/**
 * The wasm backend's kernel workers under the parent process's Node and V8 flags: Node refuses V8 and
 * process-wide flags in a worker's execArgv (`--stack-size`, `--max-semi-space-size`, `--trace-gc`,
 * ...), which once left such a process on one thread. The pool now starts its workers without the
 * refused flags (they hold process-wide anyway): a child started with them still gets two threads,
 * no degraded pool, and a product split across them equals the one-thread result bit for bit.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const entry = new URL('../src/index.js', import.meta.url).href;

/** Threads, the pool's degraded reason and whether a 2-thread product equals the 1-thread one, in a child run with `flags`. */
function poolUnder(flags: readonly string[]): { threads: number; degraded: string | null; sameProduct: boolean } {
  const script = `
    const mx = await import(${JSON.stringify(entry)});
    const product = async (threads) => {
      const b = await mx.setBackend('wasm', { threads });
      const a = mx.tensor(Array.from({ length: 256 * 192 }, (_, i) => Math.sin(i * 0.37))).reshape([256, 192]);
      const w = mx.tensor(Array.from({ length: 192 * 160 }, (_, i) => Math.cos(i * 0.11))).reshape([192, 160]);
      return { b, values: Array.from(await a.matmul(w).data()) };
    };
    const two = await product(2);
    const one = await product(1);
    const sameProduct = two.values.every((v, i) => Object.is(v, one.values[i]));
    console.log(JSON.stringify({ threads: two.b.threads, degraded: two.b.pool.degraded, sameProduct }));
    process.exit(0);
  `;
  const stdout = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8', cwd: here, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe('wasm kernel workers under the parent\'s flags', () => {
  it('V8 flags (--stack-size, --max-semi-space-size) with a Node flag (--enable-source-maps): two threads, same product', () => {
    const r = poolUnder(['--stack-size=984', '--max-semi-space-size=16', '--enable-source-maps']);
    assert.equal(r.degraded, null, 'the pool is not degraded');
    assert.equal(r.threads, 2);
    assert.ok(r.sameProduct, 'the 2-thread product equals the 1-thread one');
  });

  it('no flags: two threads (the options pass through unchanged)', () => {
    const r = poolUnder([]);
    assert.equal(r.degraded, null);
    assert.equal(r.threads, 2);
    assert.ok(r.sameProduct);
  });
});
