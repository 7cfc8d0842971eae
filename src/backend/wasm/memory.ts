/**
 * The wasm backend's heap: one shared WebAssembly.Memory (every worker instantiates the kernels on
 * it) and a JS-side allocator over it. The kernels never allocate; buffers, and the scratch space
 * kernels need, come from here.
 *
 * Blocks are 64-byte aligned (a cache line: no false sharing between buffers written by different
 * threads, aligned SIMD loads) and sized by class: multiples of 64 bytes up to 4 KiB, then eight
 * classes per power of two (at most 12.5% slack). Each class has a LIFO free list, so a block freed
 * by one training step is exactly the block the next step's same-sized request gets back, and a
 * loop that allocates the same sizes every step runs in constant memory after its first step.
 * New blocks are cut from the top of the heap, growing the memory (by at least 1/8 of its size)
 * when needed. When the memory cannot grow any more, free blocks are merged with their free
 * neighbours into spans (and the top lowered over free blocks at the end) before giving up.
 *
 * WebAssembly memory never shrinks: the footprint is the high-water mark of live blocks, plus what
 * the free lists cache.
 */

import type { WasmMemory } from './api.js';

export const PAGE_BYTES = 65536;
export const BLOCK_ALIGN = 64;
const SMALL_LIMIT = 4096;

export interface HeapStats {
  /** Size of the WebAssembly memory. */
  heapBytes: number;
  /** Bytes between the heap base and the top (blocks ever cut, live or free). */
  reservedBytes: number;
  liveBlocks: number;
  /** Bytes of live blocks (class sizes). */
  liveBlockBytes: number;
  /** Bytes in free lists and spans, ready for reuse. */
  freeBytes: number;
  /** Number of memory.grow calls so far. */
  grows: number;
  /** Allocations served from a free list or span, and from the top. */
  reused: number;
  fresh: number;
}

/** Typed views of the whole memory; re-created whenever the memory has grown. */
export interface HeapViews {
  readonly buffer: ArrayBufferLike;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f32: Float32Array;
  readonly f64: Float64Array;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** The block size (size class) that holds `bytes`. */
export function blockSize(bytes: number): number {
  const b = alignUp(Math.max(bytes, 1), BLOCK_ALIGN);
  if (b <= SMALL_LIMIT) return b;
  const e = 31 - Math.clz32(b); // floor(log2(b)), b < 2^31
  const step = 2 ** (e - 3);
  return alignUp(b, step);
}

export class WasmHeap {
  readonly base: number;
  readonly maximumBytes: number;
  private top: number;
  private readonly lists = new Map<number, number[]>();
  /** Merged free runs (address-ordered), made by `compact` when the memory is full. */
  private spans: { addr: number; bytes: number }[] = [];
  private cached: HeapViews | null = null;
  private readonly cachedBlocks = new Map<string, { addr: number; bytes: number }>();
  private liveBlocks = 0;
  private liveBlockBytes = 0;
  private freeBytes = 0;
  private grows = 0;
  private reused = 0;
  private fresh = 0;

  constructor(
    readonly memory: WasmMemory,
    /** First usable byte (the module's __heap_base). */
    heapBase: number,
    maximumPages: number,
  ) {
    this.base = alignUp(heapBase, BLOCK_ALIGN);
    this.top = this.base;
    this.maximumBytes = maximumPages * PAGE_BYTES;
  }

  /** Views of the current memory (refreshed after growth: a grown shared memory has a new buffer). */
  views(): HeapViews {
    const buffer = this.memory.buffer;
    let v = this.cached;
    if (!v || v.buffer.byteLength !== buffer.byteLength) {
      v = {
        buffer,
        u8: new Uint8Array(buffer),
        u16: new Uint16Array(buffer),
        u32: new Uint32Array(buffer),
        i32: new Int32Array(buffer),
        f32: new Float32Array(buffer),
        f64: new Float64Array(buffer),
      };
      this.cached = v;
    }
    return v;
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  /** A block of at least `bytes` bytes (64-byte aligned). Release it with `release(addr, bytes)`. */
  alloc(bytes: number): number {
    const size = blockSize(bytes);
    const list = this.lists.get(size);
    let addr: number | undefined;
    if (list && list.length > 0) {
      addr = list.pop()!;
      this.freeBytes -= size;
      this.reused++;
    } else {
      addr = this.fromSpans(size) ?? this.fromTop(size);
      if (addr === undefined) {
        this.compact();
        addr = this.fromSpans(size) ?? this.fromTop(size);
      }
      if (addr === undefined) {
        throw new RangeError(
          `wasm backend: out of memory allocating ${bytes} bytes ` +
            `(${this.liveBlockBytes} bytes live in ${this.liveBlocks} blocks, ${this.freeBytes} bytes free but fragmented, ` +
            `limit ${this.maximumBytes} bytes)`,
        );
      }
    }
    this.liveBlocks++;
    this.liveBlockBytes += size;
    return addr;
  }

  /** Return a block from `alloc(bytes)` (same `bytes`) to its free list. */
  release(addr: number, bytes: number): void {
    const size = blockSize(bytes);
    let list = this.lists.get(size);
    if (!list) this.lists.set(size, (list = []));
    list.push(addr);
    this.liveBlocks--;
    this.liveBlockBytes -= size;
    this.freeBytes += size;
  }

  /**
   * A block kept between kernel calls under `key` (the GEMM / convolution / pooling scratch and
   * geometry descriptors): at least `bytes` long, 64-byte aligned, replaced by a larger one when a
   * call needs more, so a training loop that repeats its shapes allocates it once. Its contents are
   * unspecified. Calls are synchronous and one at a time, so kernels can share one key.
   */
  cachedBlock(key: string, bytes: number): number {
    const have = this.cachedBlocks.get(key);
    if (have && have.bytes >= bytes) return have.addr;
    if (have) this.release(have.addr, have.bytes);
    this.cachedBlocks.delete(key);
    const size = blockSize(bytes);
    const addr = this.alloc(size);
    this.cachedBlocks.set(key, { addr, bytes: size });
    return addr;
  }

  /** Bytes held by `cachedBlock` blocks. */
  get cachedBlockBytes(): number {
    let n = 0;
    for (const b of this.cachedBlocks.values()) n += b.bytes;
    return n;
  }

  /** Free every `cachedBlock` block (they are allocated again on demand). */
  releaseCachedBlocks(): void {
    for (const b of this.cachedBlocks.values()) this.release(b.addr, b.bytes);
    this.cachedBlocks.clear();
  }

  /** Scratch space for one kernel call: `fn(addr)`, then the block goes back to its free list. */
  withScratch<T>(bytes: number, fn: (addr: number) => T): T {
    const addr = this.alloc(bytes);
    try {
      return fn(addr);
    } finally {
      this.release(addr, bytes);
    }
  }

  stats(): HeapStats {
    return {
      heapBytes: this.byteLength,
      reservedBytes: this.top - this.base,
      liveBlocks: this.liveBlocks,
      liveBlockBytes: this.liveBlockBytes,
      freeBytes: this.freeBytes,
      grows: this.grows,
      reused: this.reused,
      fresh: this.fresh,
    };
  }

  private fromTop(size: number): number | undefined {
    const end = this.top + size;
    if (end > this.maximumBytes) return undefined;
    const have = this.byteLength;
    if (end > have) {
      // grow by what is missing, but at least 1/8 of the memory (amortised), within the maximum
      const needPages = Math.ceil((end - have) / PAGE_BYTES);
      const maxPages = this.maximumBytes / PAGE_BYTES - have / PAGE_BYTES;
      const pages = Math.min(maxPages, Math.max(needPages, Math.ceil(have / PAGE_BYTES / 8)));
      try {
        this.memory.grow(pages);
      } catch {
        try {
          this.memory.grow(needPages);
        } catch {
          return undefined;
        }
      }
      this.grows++;
    }
    const addr = this.top;
    this.top = end;
    this.fresh++;
    return addr;
  }

  private fromSpans(size: number): number | undefined {
    for (let i = 0; i < this.spans.length; i++) {
      const s = this.spans[i]!;
      if (s.bytes < size) continue;
      const addr = s.addr;
      s.addr += size;
      s.bytes -= size;
      if (s.bytes === 0) this.spans.splice(i, 1);
      this.freeBytes -= size;
      this.reused++;
      return addr;
    }
    return undefined;
  }

  /** Merge every free block and span with its free neighbours; free space at the top lowers the top. */
  private compact(): void {
    const free: { addr: number; bytes: number }[] = [...this.spans];
    for (const [size, list] of this.lists) for (const addr of list) free.push({ addr, bytes: size });
    this.lists.clear();
    free.sort((a, b) => a.addr - b.addr);
    const merged: { addr: number; bytes: number }[] = [];
    for (const f of free) {
      const last = merged[merged.length - 1];
      if (last && last.addr + last.bytes === f.addr) last.bytes += f.bytes;
      else merged.push({ ...f });
    }
    const last = merged[merged.length - 1];
    if (last && last.addr + last.bytes === this.top) {
      this.top = last.addr;
      this.freeBytes -= last.bytes;
      merged.pop();
    }
    this.spans = merged;
  }
}
