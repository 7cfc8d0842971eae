/** Synthetic datasets on disk for CLI tests. */
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as mx from '../../src/index.js';

/** IDX files of `n` 28x28 images: class c lights a 6x6 square at a class-dependent place, plus noise. */
export function writeMnist(dir: string, n: number, nTest: number): void {
  mkdirSync(dir, { recursive: true });
  const gen = new mx.Generator(42);
  const write = (prefix: string, count: number) => {
    const images = Buffer.alloc(16 + count * 784);
    images.writeUInt32BE(0x00000803, 0);
    images.writeUInt32BE(count, 4);
    images.writeUInt32BE(28, 8);
    images.writeUInt32BE(28, 12);
    const labels = Buffer.alloc(8 + count);
    labels.writeUInt32BE(0x00000801, 0);
    labels.writeUInt32BE(count, 4);
    for (let i = 0; i < count; i++) {
      const c = i % 10;
      labels[8 + i] = c;
      const r0 = 2 + (c % 5) * 5;
      const c0 = 4 + Math.floor(c / 5) * 12;
      for (let p = 0; p < 784; p++) {
        const y = Math.floor(p / 28);
        const x = p % 28;
        const on = y >= r0 && y < r0 + 6 && x >= c0 && x < c0 + 6;
        images[16 + i * 784 + p] = Math.min(255, (on ? 200 : 0) + Math.floor(gen.nextDouble() * 40));
      }
    }
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), images);
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), labels);
  };
  write('train', n);
  write('t10k', nTest);
}

/** CIFAR-10's layout at full size (resolveData wants 10,000 records a file): 512 coloured squares, the rest black (sparse). */
export function writeCifar(root: string): string {
  const dir = join(root, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  const n = 512;
  const buf = new Uint8Array(n * 3073);
  for (let r = 0; r < n; r++) {
    const c = r % 10;
    buf[r * 3073] = c;
    for (let p = 0; p < 3; p++) {
      for (let q = 0; q < 1024; q++) {
        const y = q >> 5;
        const x = q & 31;
        const inside = y >= 8 && y < 24 && x >= 8 && x < 24;
        buf[r * 3073 + 1 + p * 1024 + q] = inside ? ((c + 1) * (p + 3) * 37) & 255 : 20;
      }
    }
  }
  for (const f of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) {
    const path = join(dir, `${f}.bin`);
    writeFileSync(path, buf);
    truncateSync(path, 10000 * 3073);
  }
  return root;
}
