/**
 * The default process group: torch.distributed's init_process_group / destroy_process_group /
 * get_rank / get_world_size / is_initialized, in camelCase, on Gloo.
 *
 *   await mx.distributed.initProcessGroup({ backend: 'gloo' });   // env:// under `mixprec run`
 *   const rank = mx.distributed.getRank();
 *   ...
 *   mx.distributed.destroyProcessGroup();
 *
 * Rendezvous (`initMethod`):
 * - 'env://' (the default): MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE from the environment (what
 *   `mixprec run`, torchrun and Kubeflow's PyTorchJob set); rank 0 serves the key-value store on
 *   MASTER_PORT (tcp_store.ts), as torchrun's TCP store.
 * - 'tcp://HOST:PORT': the same with the address given here.
 * - 'file://PATH': Gloo's FileStore, a directory on a file system every rank sees (use a fresh one per run).
 * - 'redis://HOST:PORT': Gloo's RedisStore (keys under mixprec/<groupName>/: use a new groupName per run,
 *   Gloo refuses to overwrite a key).
 * The TCP transport listens on the address of GLOO_SOCKET_IFNAME's interface when that is set
 * (PyTorch's variable), else on the local address that routes to the store's host.
 */
import { mkdirSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { gloo, type NativeGroup, type NativeGroupOptions } from './native.js';
import { TcpStoreServer } from './tcp_store.js';

export interface InitProcessGroupOptions {
  /** Only 'gloo' (CPU tensors over TCP). */
  backend?: 'gloo';
  /** 'env://' (default), 'tcp://HOST:PORT', 'file://PATH' or 'redis://HOST:PORT'. */
  initMethod?: string;
  /** This process's rank (default: the RANK environment variable). */
  rank?: number;
  /** Number of processes (default: the WORLD_SIZE environment variable). */
  worldSize?: number;
  /** How long rendezvous and every collective may wait for the other ranks (default 30 minutes, as PyTorch). */
  timeoutMs?: number;
  /** Namespaces the group's keys in a shared store (file://, redis://). Default 'default'. */
  groupName?: string;
}

export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;

/** The initialised default group. */
export interface GroupState {
  readonly native: NativeGroup;
  readonly rank: number;
  readonly worldSize: number;
  readonly timeoutMs: number;
  readonly server: TcpStoreServer | null;
}

let current: GroupState | null = null;
let initializing = false;
/** Groups initialised so far in this process: keys of a re-initialised group do not collide. */
let generation = 0;

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

function integer(name: string, value: number | string | undefined, source: string): number {
  if (value === undefined) throw new Error(`mx.distributed.initProcessGroup: ${name} is not set (pass ${name} or set ${source})`);
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`mx.distributed.initProcessGroup: ${name} must be a non-negative integer, got '${value}' (${source})`);
  return n;
}

function hostPort(method: string, rest: string): { host: string; port: number } {
  const m = /^\[?([^\]]*?)\]?:(\d+)\/?$/.exec(rest);
  if (!m || !m[1]) throw new Error(`mx.distributed.initProcessGroup: initMethod '${method}' must be ${method.split(':')[0]}://HOST:PORT`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`mx.distributed.initProcessGroup: port ${port} of '${method}' is out of range`);
  return { host: m[1], port };
}

/** IPv4 address of interface `name`. */
function interfaceAddress(name: string): string {
  const entries = networkInterfaces()[name];
  const v4 = entries?.find((e) => e.family === 'IPv4');
  if (!v4) throw new Error(`mx.distributed: GLOO_SOCKET_IFNAME=${name}: no such interface with an IPv4 address (have: ${Object.keys(networkInterfaces()).join(', ')})`);
  return v4.address;
}

/** The local address the kernel would use to reach host:port (a UDP "connect" sends nothing). */
function routeTo(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', () => {
      socket.close();
      resolve('');
    });
    socket.connect(port, host, () => {
      const address = socket.address().address;
      socket.close();
      resolve(address);
    });
  });
}

export function isInitialized(): boolean {
  return current !== null;
}

/** The default group, or an error naming the caller. */
export function defaultGroup(caller: string): GroupState {
  if (!current) throw new Error(`mx.distributed.${caller}: the default process group is not initialised (call await mx.distributed.initProcessGroup() first)`);
  return current;
}

export function getRank(): number {
  return defaultGroup('getRank').rank;
}

export function getWorldSize(): number {
  return defaultGroup('getWorldSize').worldSize;
}

export async function initProcessGroup(options: InitProcessGroupOptions = {}): Promise<void> {
  if (current || initializing) throw new Error('mx.distributed.initProcessGroup: the default process group is already initialised (destroyProcessGroup() first)');
  const backend = options.backend ?? 'gloo';
  if (backend !== 'gloo') throw new Error(`mx.distributed.initProcessGroup: backend '${backend as string}' is not available (only 'gloo')`);
  const addon = gloo();
  const method = options.initMethod ?? 'env://';
  const fromEnv = method === 'env://';
  const rank = integer('rank', options.rank ?? env('RANK'), 'the RANK environment variable');
  const worldSize = integer('worldSize', options.worldSize ?? env('WORLD_SIZE'), 'the WORLD_SIZE environment variable');
  if (worldSize < 1 || rank >= worldSize) throw new Error(`mx.distributed.initProcessGroup: rank ${rank} is not in [0, worldSize ${worldSize})`);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 2 ** 31) throw new Error(`mx.distributed.initProcessGroup: timeoutMs must be a positive integer of milliseconds, got ${timeoutMs}`);
  const groupName = options.groupName ?? 'default';
  const prefix = `mixprec/${groupName}/${generation}`;

  let native: NativeGroupOptions;
  let storeHost = '';
  let storePort = 0;
  if (fromEnv || method.startsWith('tcp://')) {
    if (fromEnv) {
      const host = env('MASTER_ADDR');
      const port = env('MASTER_PORT');
      if (!host || !port) throw new Error(`mx.distributed.initProcessGroup: env:// needs MASTER_ADDR and MASTER_PORT (missing: ${[!host && 'MASTER_ADDR', !port && 'MASTER_PORT'].filter(Boolean).join(', ')})`);
      ({ host: storeHost, port: storePort } = hostPort('env://', `${host}:${port}`));
    } else ({ host: storeHost, port: storePort } = hostPort(method, method.slice('tcp://'.length)));
    native = { rank, size: worldSize, timeoutMs, store: 'tcp', host: storeHost, port: storePort, prefix, hostname: '' };
  } else if (method.startsWith('file://')) {
    const path = method.slice('file://'.length);
    if (!path) throw new Error(`mx.distributed.initProcessGroup: initMethod '${method}' needs a path (file:///shared/dir)`);
    mkdirSync(path, { recursive: true });
    native = { rank, size: worldSize, timeoutMs, store: 'file', path, prefix, hostname: '' };
  } else if (method.startsWith('redis://')) {
    ({ host: storeHost, port: storePort } = hostPort(method, method.slice('redis://'.length)));
    native = { rank, size: worldSize, timeoutMs, store: 'redis', host: storeHost, port: storePort, prefix, hostname: '' };
  } else {
    throw new Error(`mx.distributed.initProcessGroup: unknown initMethod '${method}' (env://, tcp://HOST:PORT, file://PATH, redis://HOST:PORT)`);
  }
  const ifname = env('GLOO_SOCKET_IFNAME');
  native.hostname = ifname ? interfaceAddress(ifname) : storeHost ? await routeTo(storeHost, storePort) : '';

  initializing = true;
  let server: TcpStoreServer | null = null;
  let group: NativeGroup | null = null;
  try {
    if (native.store === 'tcp' && rank === 0) server = await TcpStoreServer.listen(storePort);
    group = new addon.GlooGroup(native);
    await group.connect();
  } catch (e) {
    group?.destroy();
    await server?.close();
    const message = (e as Error).message ?? String(e);
    // Gloo's RedisStore never overwrites a key: an earlier run's keys block this one.
    const key = native.store === 'redis' ? /Key '([^']*)' already set/.exec(message)?.[1] : undefined;
    if (key) throw new Error(`mx.distributed.initProcessGroup: ${method} already holds key '${key}' from an earlier run: pass a new groupName (or delete the keys ${prefix}/*)`);
    throw e;
  } finally {
    initializing = false;
  }
  generation++;
  current = { native: group, rank, worldSize, timeoutMs, server };
}

/** Finish what is queued, close the connections (and rank 0's store). */
export function destroyProcessGroup(): void {
  const group = defaultGroup('destroyProcessGroup');
  current = null;
  group.native.destroy();
  void group.server?.close();
}
