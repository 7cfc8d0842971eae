/**
 * The Gloo addon (native/, compiled by `npm run build` through node-gyp when Gloo and a C++
 * compiler are installed: tools/build-native.mjs). Loaded on first use; where it is missing or
 * does not load, everything else in mixprec works and mx.distributed fails with one line that
 * says why and what to install.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon's process group (native/src/addon.cc). Typed arrays are worked on in place. */
export interface NativeGroup {
  connect(): Promise<void>;
  allReduce(data: NativeArray, dtype: string, op: string, sync: true): number;
  allReduce(data: NativeArray, dtype: string, op: string, sync?: false): Promise<void>;
  broadcast(data: NativeArray, root: number, sync: true): number;
  broadcast(data: NativeArray, root: number, sync?: false): Promise<void>;
  allGather(input: NativeArray, output: NativeArray, sync?: false): Promise<void>;
  reduceScatter(data: NativeArray, dtype: string, op: string, sync?: false): Promise<void>;
  barrier(sync?: false): Promise<void>;
  /** DistributedDataParallel's bucket: the average over ranks, in place (compression: 'none' | 'fp16' | 'bf16'). */
  averageBucket(data: Float32Array, compression: string, sync: true): number;
  /** Block until a job queued with sync = true is done; throws its error. */
  wait(id: number): void;
  destroy(): void;
}

export type NativeArray = Float32Array | Float64Array | Int32Array | Uint16Array | Uint8Array;

export interface NativeGroupOptions {
  rank: number;
  size: number;
  timeoutMs: number;
  store: 'tcp' | 'file' | 'redis';
  host?: string;
  port?: number;
  path?: string;
  prefix: string;
  /** The address the TCP transport listens on ('' lets Gloo resolve the host name). */
  hostname: string;
}

interface Addon {
  GlooGroup: new (options: NativeGroupOptions) => NativeGroup;
}

const INSTALL = 'install Gloo and a C++ compiler (Debian/Ubuntu: apt-get install libgloo-dev g++ make python3), then run npm run build';

/** mx.distributed used where the addon is not there. */
export class DistributedUnavailableError extends Error {
  constructor(reason: string) {
    super(`mx.distributed is not available: ${reason}; ${INSTALL}`);
    this.name = 'DistributedUnavailableError';
  }
}

/** The package root: the nearest directory above this file with mixprec's package.json. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mixprec') return dir;
      } catch {
        // not ours
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new DistributedUnavailableError('cannot find the mixprec package directory');
    dir = up;
  }
}

let loaded: Addon | DistributedUnavailableError | undefined;

function load(): Addon | DistributedUnavailableError {
  const root = packageRoot();
  const file = join(root, 'native', 'build', 'Release', 'mixprec_gloo.node');
  if (!existsSync(file)) {
    // tools/build-native.mjs leaves the reason it did not build in status.json
    let reason = 'the Gloo addon was not built (native/build/Release/mixprec_gloo.node is missing)';
    try {
      const status = JSON.parse(readFileSync(join(root, 'native', 'build', 'status.json'), 'utf8')) as { reason?: string };
      if (status.reason) reason = `the Gloo addon was not built: ${status.reason}`;
    } catch {
      // no status: the build never ran
    }
    return new DistributedUnavailableError(reason);
  }
  try {
    return createRequire(import.meta.url)(file) as Addon;
  } catch (e) {
    const first = String((e as Error).message ?? e).split('\n')[0];
    return new DistributedUnavailableError(`the Gloo addon does not load (${first})`);
  }
}

/** The addon, or throws DistributedUnavailableError. */
export function gloo(): Addon {
  loaded ??= load();
  if (loaded instanceof Error) throw loaded;
  return loaded;
}

/** Whether mx.distributed can run here (torch.distributed.is_available()). */
export function isAvailable(): boolean {
  loaded ??= load();
  return !(loaded instanceof Error);
}

/** Why mx.distributed cannot run here (null when it can). */
export function unavailableReason(): string | null {
  loaded ??= load();
  return loaded instanceof Error ? loaded.message : null;
}
