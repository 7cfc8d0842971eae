/**
 * Command batching: every kernel becomes one compute dispatch recorded into a shared command
 * encoder (one compute pass, reopened only around copies); the batch is submitted when a value is
 * read, when it reaches `maxDispatches`, or when the per-dispatch metadata arena is full, so a
 * training step is a few submits. Per-dispatch metadata (shapes, strides, offsets, scalar params)
 * goes to a CPU arena that is uploaded with one writeBuffer right before the submit.
 *
 * Pipelines are cached by key (kernel, dtypes, rank, layout variant); shapes travel in the metadata,
 * so one pipeline serves every shape of its rank. The metadata is bound with a dynamic offset, so a
 * bind group depends only on the data buffers and is cached by them: a training loop, whose buffers
 * come back from the pool in the same order every step, creates no bind groups after warm-up
 * (creating one costs Dawn more than recording the dispatch itself).
 */
/// <reference types="@webgpu/types" />
import { BufferPool, bufferSerial } from './buffers.js';

const MAP_READ = 0x0001;
const COPY_DST = 0x0008;
const COPY_SRC = 0x0004;
/** Bytes of metadata a dispatch sees (the dynamic binding's fixed size). */
const META_BYTES = 2048;
/** Cached bind groups kept at most (entries of destroyed buffers are dropped when it is exceeded). */
const MAX_BIND_GROUPS = 8192;

interface CachedPipeline {
  readonly pipeline: GPUComputePipeline;
  readonly bgl: GPUBindGroupLayout;
  /** the layout's number (bind groups are cached per layout and buffers) */
  readonly layoutId: number;
}

export interface BindingRef {
  readonly buffer: GPUBuffer;
  readonly writable: boolean;
}

export interface Dispatch {
  /** pipeline cache key: it must fix the code and the bindings' read/write pattern (bind()'s key does) */
  readonly key: string;
  /** full WGSL, generated only on a cache miss */
  readonly code: () => string;
  /** data bindings 1..n in order (binding 0 is the metadata) */
  readonly bindings: readonly BindingRef[];
  readonly meta: Uint32Array;
  readonly groups: readonly [number, number, number];
}

export interface SchedulerStats {
  submits: number;
  dispatches: number;
  pipelines: number;
  pipelineHits: number;
  reads: number;
  uploads: number;
  /** bind groups created (the rest came from the cache) */
  bindGroups: number;
  /** GEMM dispatches (matmul, convolutions) that ran on the adapter's matrix units (kernels/matmul_subgroup.ts) */
  matrixDispatches: number;
}

export class Scheduler {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private readonly arenaBytes: number;
  private readonly arenaCpu: Uint32Array;
  private arenaUsed = 0; // in words
  private readonly arenaGpu: GPUBuffer;
  private readonly align: number;
  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout; id: number }>();
  /** The pipeline last set in the open pass (setPipeline is skipped when it does not change). */
  private passPipeline: GPUComputePipeline | null = null;
  /** The dynamic offset of the metadata binding, handed to setBindGroup without a new array. */
  private readonly metaOffset = new Uint32Array(1);
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  /** upload buffers written this batch; reusable once it is submitted */
  private uploadsInFlight: GPUBuffer[] = [];
  private readonly uploads: BufferPool;
  private readonly staging: BufferPool;
  readonly stats: SchedulerStats = { submits: 0, dispatches: 0, pipelines: 0, pipelineHits: 0, reads: 0, uploads: 0, bindGroups: 0, matrixDispatches: 0 };

  constructor(
    readonly device: GPUDevice,
    readonly pool: BufferPool,
    readonly maxDispatches = 4096,
    arenaBytes = 4 << 20,
  ) {
    this.arenaBytes = arenaBytes;
    this.arenaCpu = new Uint32Array(arenaBytes / 4);
    this.arenaGpu = device.createBuffer({ size: arenaBytes, usage: 0x0080 | COPY_DST });
    this.align = Math.max(256, device.limits.minStorageBufferOffsetAlignment);
    this.uploads = new BufferPool(device, 256 << 20);
    this.staging = new BufferPool(device, 256 << 20);
  }

  /** `access`: 'r' or 'w' per data binding, in order (the layout's key). */
  private bindGroupLayout(access: string): { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout; id: number } {
    let layout = this.layouts.get(access);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [{ binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'read-only-storage', hasDynamicOffset: true } }];
      [...access].forEach((a, i) => entries.push({ binding: i + 1, visibility: 4, buffer: { type: a === 'w' ? 'storage' : 'read-only-storage' } }));
      const bgl = this.device.createBindGroupLayout({ entries });
      layout = { bgl, pl: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }), id: this.layouts.size };
      this.layouts.set(access, layout);
    }
    return layout;
  }

  /** The pipeline of a dispatch and its bind-group layout, by the dispatch's key (built on a miss). */
  private pipeline(d: Dispatch): CachedPipeline {
    let cached = this.pipelines.get(d.key);
    if (cached) {
      this.stats.pipelineHits++;
      return cached;
    }
    const access = d.bindings.map((b) => (b.writable ? 'w' : 'r')).join('');
    const { bgl, pl, id } = this.bindGroupLayout(access);
    const code = d.code();
    const module = this.device.createShaderModule({ code, label: d.key });
    module.getCompilationInfo?.().then((info) => {
      const errors = info.messages.filter((m) => m.type === 'error');
      if (errors.length > 0) {
        const lines = code.split('\n');
        console.error(
          `mixprec webgpu: shader '${d.key}' failed to compile:\n` +
            errors.map((m) => `  line ${m.lineNum}: ${m.message}\n    ${lines[m.lineNum - 1] ?? ''}`).join('\n'),
        );
      }
    });
    const pipeline = this.device.createComputePipeline({ layout: pl, compute: { module, entryPoint: 'main' }, label: d.key });
    cached = { pipeline, bgl, layoutId: id };
    this.pipelines.set(d.key, cached);
    this.stats.pipelines++;
    return cached;
  }

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) {
      this.pass = this.encoder.beginComputePass();
      this.passPipeline = null;
    }
    return this.pass;
  }

  private endPass(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  /** The bind group of these data buffers (binding 0, the metadata arena, takes a dynamic offset). */
  private bindGroup(p: CachedPipeline, bindings: readonly BindingRef[]): GPUBindGroup {
    const bgl = p.bgl;
    let key = `${p.layoutId}`;
    for (const b of bindings) key += `,${bufferSerial(b.buffer)}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.arenaGpu, offset: 0, size: META_BYTES } }];
      bindings.forEach((b, i) => entries.push({ binding: i + 1, resource: { buffer: b.buffer } }));
      group = this.device.createBindGroup({ layout: bgl, entries });
      this.bindGroups.set(key, group);
      this.stats.bindGroups++;
    }
    return group;
  }

  /** Record one dispatch. */
  dispatch(d: Dispatch): void {
    if (d.groups[0] === 0 || d.groups[1] === 0 || d.groups[2] === 0) return;
    if (d.meta.length * 4 > META_BYTES) throw new Error(`webgpu backend: ${d.key.split('|')[0]} needs ${d.meta.length * 4} bytes of metadata (at most ${META_BYTES})`);
    const alignWords = this.align / 4;
    let at = Math.ceil(this.arenaUsed / alignWords) * alignWords;
    // The dynamic binding always spans META_BYTES, so that much must lie inside the arena.
    if (at * 4 + META_BYTES > this.arenaBytes) {
      this.flush();
      at = 0;
    }
    this.arenaCpu.set(d.meta, at);
    this.arenaUsed = at + Math.max(4, d.meta.length);
    const p = this.pipeline(d);
    const group = this.bindGroup(p, d.bindings);
    const pass = this.ensurePass();
    if (p.pipeline !== this.passPipeline) {
      pass.setPipeline(p.pipeline);
      this.passPipeline = p.pipeline;
    }
    this.metaOffset[0] = at * 4;
    pass.setBindGroup(0, group, this.metaOffset, 0, 1);
    pass.dispatchWorkgroups(d.groups[0], d.groups[1], d.groups[2]);
    this.pending++;
    this.stats.dispatches++;
    if (this.pending >= this.maxDispatches) this.flush();
  }

  /** Nothing recorded since the last submit. */
  get idle(): boolean {
    return this.encoder === null;
  }

  /** Submit everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arenaGpu, 0, this.arenaCpu.buffer, 0, Math.ceil(this.arenaUsed / 4) * 16);
    this.device.queue.submit([this.encoder.finish()]);
    for (const pool of [this.pool, this.uploads, this.staging]) pool.destroyRetired();
    this.encoder = null;
    this.pending = 0;
    this.arenaUsed = 0;
    this.stats.submits++;
    for (const b of this.uploadsInFlight) this.uploads.release(b, COPY_SRC | COPY_DST);
    this.uploadsInFlight = [];
  }

  /** Copy host bytes into `dst` at `dstOffset`, ordered after everything recorded so far. */
  write(dst: GPUBuffer, dstOffset: number, data: Uint8Array): void {
    let bytes = data;
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    if (bytes.byteLength === 0) return;
    this.stats.uploads++;
    if (this.idle) {
      this.device.queue.writeBuffer(dst, dstOffset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return;
    }
    // Commands recorded but not submitted may still read dst's old contents: upload to a fresh
    // buffer now and copy in command order.
    const up = this.uploads.acquire(bytes.byteLength, COPY_SRC | COPY_DST);
    this.device.queue.writeBuffer(up, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.endPass().copyBufferToBuffer(up, 0, dst, dstOffset, bytes.byteLength);
    this.uploadsInFlight.push(up);
  }

  /** Copy `bytes` bytes of src back to the host after everything recorded so far. */
  async read(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    this.stats.reads++;
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.staging.acquire(size, MAP_READ | COPY_DST);
    this.endPass().copyBufferToBuffer(src, 0, staging, 0, size);
    this.flush();
    await staging.mapAsync(1 /* GPUMapMode.READ */, 0, size);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.staging.release(staging, MAP_READ | COPY_DST);
    return out;
  }

  /** Resolves when the GPU has finished everything submitted. */
  async finish(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }
}
