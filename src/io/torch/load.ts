/**
 * `mx.io.loadTorch(pathOrBytes)`: what `torch.save` saved, read without Python and without running
 * code (see ./index.ts for the mapping of values and dtypes).
 *
 * Order of work, so that a bad file fails before any tensor is made and never makes us allocate more
 * than its size warrants: recognise the format (the legacy pre-1.6 format and TorchScript archives
 * are refused with what to do instead), validate the zip (./zip.ts), run the pickle on the allow-list
 * (./pickle.ts, ./globals.ts; each storage's entry checked against its declared size when the
 * pickle names it), check every tensor's size, stride and offset against its storage, then read
 * each storage once into device memory and make the tensors (views of it when several share it).
 */
import { readFile, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dtypeOf, type DTypeName, type StorageArray } from '../../dtype/dtype.js';
import { Tensor } from '../../tensor/tensor.js';
import { markFromPyTorch } from '../../util/torch_names.js';
import { sniff } from '../safetensors.js';
import { PickleError, PyDict, isPyCallable, unpickle } from './pickle.js';
import {
  TORCH_ITEMSIZE, isStorageRef, isTensorRef, resolveTorchGlobal, storageFromPersistentId,
  type StorageRef, type TensorRef, type TorchDtype,
} from './globals.js';
import { ZipError, readZip } from './zip.js';

/** A file that cannot be read as a PyTorch file; `file` names it and `problem` says why. */
export class TorchFileError extends Error {
  override name = 'TorchFileError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export interface LoadTorchOptions {
  /** How errors name bytes given directly (default 'the PyTorch file (bytes)'). */
  name?: string;
}

/** mixprec's dtype for each of PyTorch's: the integer types widen (or narrow, checked) to int32. */
export const MIXPREC_DTYPE: Readonly<Record<TorchDtype, DTypeName>> = {
  float32: 'float32', float16: 'float16', bfloat16: 'bfloat16', float64: 'float64', bool: 'bool',
  int64: 'int32', int32: 'int32', int16: 'int32', int8: 'int32', uint8: 'int32',
};

const LEGACY_HINT = "re-save it with PyTorch 1.6 or newer, whose default is the zip format: torch.save(torch.load('OLD.pt'), 'NEW.pt')";

async function readInput(pathOrBytes: string | Uint8Array | ArrayBuffer, options: LoadTorchOptions): Promise<{ file: string; bytes: Uint8Array }> {
  if (typeof pathOrBytes !== 'string') {
    const bytes = pathOrBytes instanceof Uint8Array ? pathOrBytes : new Uint8Array(pathOrBytes);
    return { file: options.name ?? 'the PyTorch file (bytes)', bytes };
  }
  const file = pathOrBytes;
  try {
    if ((await stat(file)).isDirectory()) throw new TorchFileError(file, 'is a folder; expected a file written by torch.save');
    return { file, bytes: await readFile(file) };
  } catch (e) {
    if (e instanceof TorchFileError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TorchFileError(file, 'no such file; expected a file written by torch.save (.pt, .pth)');
    throw new TorchFileError(file, `could not be read: ${(e as Error).message}`);
  }
}

function isTar(bytes: Uint8Array): boolean {
  return bytes.length >= 262 && new TextDecoder('latin1').decode(bytes.subarray(257, 262)) === 'ustar';
}

/** The single `<archive>/data.pkl` entry's folder, or an error saying what the archive is instead. */
function archivePrefix(entries: Map<string, Uint8Array>, file: string): string {
  const names = [...entries.keys()];
  // TorchScript archives (torch.jit.save) also hold a data.pkl, of classes compiled from their code/.
  if (names.some((n) => /^[^/]+\/constants\.pkl$/.test(n) || /^[^/]+\/code\//.test(n))) {
    throw new TorchFileError(file, 'is a TorchScript archive (torch.jit.save), which holds code; in PyTorch, save its weights with torch.save(model.state_dict(), PATH) and load that');
  }
  const prefixes = names.map((n) => /^([^/]+)\/data\.pkl$/.exec(n)?.[1]).filter((p): p is string => p !== undefined);
  if (prefixes.length === 1) return prefixes[0]!;
  if (prefixes.length > 1) throw new TorchFileError(file, `the zip archive holds ${prefixes.length} data.pkl records (${prefixes.join(', ')}); expected one, as torch.save writes`);
  throw new TorchFileError(file, `is a zip archive without a data.pkl record (entries: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}); expected a file written by torch.save`);
}

interface Located {
  ref: TensorRef;
  path: string;
}

function shapeStr(s: readonly number[]): string {
  return `[${s.join(',')}]`;
}

/** Check a tensor's view against its storage; returns its element count. */
function checkTensor({ ref, path }: Located, file: string): number {
  let numel = 1;
  for (const d of ref.size) {
    numel *= d;
    if (!Number.isSafeInteger(numel)) throw new TorchFileError(file, `'${path}' has size ${shapeStr(ref.size)}, whose element count overflows: corrupt`);
  }
  const s = ref.storage;
  const what = `'${path}' (${ref.storage.dtype}, size ${shapeStr(ref.size)}, stride ${shapeStr(ref.stride)}, offset ${ref.offset})`;
  if (numel === 0) return 0;
  let last = ref.offset;
  for (let i = 0; i < ref.size.length; i++) {
    last += (ref.size[i]! - 1) * ref.stride[i]!;
    if (!Number.isSafeInteger(last)) throw new TorchFileError(file, `${what} reaches an element index that overflows: corrupt`);
  }
  if (last >= s.numel) {
    throw new TorchFileError(file, `${what} needs ${last + 1} elements of storage '${s.key}', which holds ${s.numel}: the storage is shorter than its tensor needs (corrupt)`);
  }
  // A view that repeats storage elements (stride 0) could ask for far more memory than the file holds.
  if (numel > s.numel) throw new TorchFileError(file, `${what} has ${numel} elements but its storage '${s.key}' holds ${s.numel}; tensors that repeat storage elements are not read`);
  return numel;
}

const HOST_BIG_ENDIAN = endianness() === 'BE';

function swapInPlace(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/** A storage entry's bytes as mixprec storage values (integers to int32, checked; bool to 0/1). */
function decodeStorage(s: StorageRef, raw: Uint8Array, bigEndianFile: boolean, file: string, users: readonly string[]): StorageArray {
  const n = s.numel;
  const size = TORCH_ITEMSIZE[s.dtype];
  // Our own aligned copy: fflate's entries are fresh arrays, but a caller's bytes may sit anywhere.
  const bytes = raw.byteOffset % 8 === 0 && bigEndianFile === HOST_BIG_ENDIAN ? raw : raw.slice();
  if (bigEndianFile !== HOST_BIG_ENDIAN) swapInPlace(bytes, size);
  const buf = bytes.buffer;
  const at = bytes.byteOffset;
  switch (s.dtype) {
    case 'float32':
      return new Float32Array(buf, at, n).slice();
    case 'float64':
      return new Float64Array(buf, at, n).slice();
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf, at, n).slice();
    case 'int32':
      return new Int32Array(buf, at, n).slice();
    case 'int16':
      return Int32Array.from(new Int16Array(buf, at, n));
    case 'int8':
      return Int32Array.from(new Int8Array(buf, at, n));
    case 'uint8':
      return Int32Array.from(new Uint8Array(buf, at, n));
    case 'bool':
      return Uint8Array.from(new Uint8Array(buf, at, n), (v) => (v ? 1 : 0));
    case 'int64': {
      const src = new BigInt64Array(buf, at, n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i]!;
        if (v > 2147483647n || v < -2147483648n) {
          throw new TorchFileError(
            file,
            `'${users[0]}' is an int64 tensor holding ${v}, outside int32, mixprec's integer dtype (int64 values are read as int32 when they fit)`,
          );
        }
        out[i] = Number(v);
      }
      return out;
    }
  }
}

function isContiguousWhole(ref: TensorRef, numel: number): boolean {
  if (ref.offset !== 0 || numel !== ref.storage.numel) return false;
  let expected = 1;
  for (let i = ref.size.length - 1; i >= 0; i--) {
    if (ref.size[i] !== 1 && ref.stride[i] !== expected) return false;
    expected *= ref.size[i]!;
  }
  return true;
}

function keyString(k: unknown, path: string, file: string): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number' || typeof k === 'bigint') return String(k);
  if (typeof k === 'boolean') return k ? 'True' : 'False';
  if (k === null) return 'None';
  throw new TorchFileError(file, `a dict at '${path || '(top level)'}' has a key of type ${Array.isArray(k) ? 'tuple' : typeof k}; mixprec reads dicts keyed by strings and numbers`);
}

/**
 * Read a file written by `torch.save` (PyTorch >= 1.6's zip format): a state dict or a nested
 * checkpoint, with tensors as mixprec tensors on the current backend. See src/io/torch/index.ts.
 */
export async function loadTorch(pathOrBytes: string | Uint8Array | ArrayBuffer, options: LoadTorchOptions = {}): Promise<any> {
  const { file, bytes } = await readInput(pathOrBytes, options);
  if (bytes.length === 0) throw new TorchFileError(file, 'the file is empty; expected a zip archive written by torch.save');
  if (bytes[0] === 0x80 && bytes[1] !== undefined && bytes[1] >= 2 && bytes[1] <= 5) {
    throw new TorchFileError(file, `is in PyTorch's legacy format (before 1.6, or saved with _use_new_zipfile_serialization=False), which mixprec does not read; ${LEGACY_HINT}`);
  }
  if (isTar(bytes)) throw new TorchFileError(file, `is in PyTorch's oldest (tar) format, which mixprec does not read; ${LEGACY_HINT}`);
  const isZip = bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 0x03 || bytes[2] === 0x05);
  if (!isZip) throw new TorchFileError(file, `is not a PyTorch file: expected a zip archive written by torch.save${sniff(bytes)}`);

  let entries: Map<string, Uint8Array>;
  try {
    entries = readZip(bytes);
  } catch (e) {
    if (e instanceof ZipError) throw new TorchFileError(file, e.message);
    throw e;
  }
  const prefix = archivePrefix(entries, file);
  const byteorder = entries.get(`${prefix}/byteorder`);
  const order = byteorder ? new TextDecoder().decode(byteorder).trim() : 'little';
  if (order !== 'little' && order !== 'big') throw new TorchFileError(file, `its byteorder record says '${order.slice(0, 20)}'; expected 'little' or 'big'`);

  const storages = new Map<string, StorageRef>();
  let root: unknown;
  try {
    root = unpickle(entries.get(`${prefix}/data.pkl`)!, {
      resolveGlobal: resolveTorchGlobal,
      persistentLoad: (pid) => {
        const s = storageFromPersistentId(pid, storages);
        const entry = entries.get(`${prefix}/data/${s.key}`);
        if (!entry) throw new PickleError(`storage '${s.key}' has no zip entry ${prefix}/data/${s.key}: truncated or corrupt`);
        if (s.numel > entry.length / TORCH_ITEMSIZE[s.dtype] || s.numel * TORCH_ITEMSIZE[s.dtype] !== entry.length) {
          throw new PickleError(
            `storage '${s.key}' should hold ${s.numel} ${s.dtype} values (${s.numel * TORCH_ITEMSIZE[s.dtype]} bytes) but its entry has ${entry.length} bytes: truncated or corrupt`,
          );
        }
        return s;
      },
    });
  } catch (e) {
    if (e instanceof PickleError) throw new TorchFileError(file, e.message);
    throw e;
  }

  // Every tensor with where it sits, checked before anything is allocated.
  const located = new Map<TensorRef, Located>();
  // Containers are visited once: a pickle may share one many times (or nest it in itself).
  const visited = new Set<object>();
  const onPath = new Set<object>();
  const collect = (v: unknown, path: string): void => {
    if ((v instanceof PyDict || Array.isArray(v)) && (onPath.has(v) || visited.has(v))) {
      if (onPath.has(v)) throw new TorchFileError(file, `'${path || '(top level)'}' contains itself; expected a tree of containers`);
      return;
    }
    if (v instanceof PyDict || Array.isArray(v)) {
      visited.add(v);
      onPath.add(v);
    }
    try {
      collectInner(v, path);
    } finally {
      if (typeof v === 'object' && v !== null) onPath.delete(v);
    }
  };
  const collectInner = (v: unknown, path: string): void => {
    if (isTensorRef(v)) {
      if (!located.has(v)) located.set(v, { ref: v, path });
    } else if (v instanceof PyDict) {
      for (const [k, x] of v.entries) {
        const key = keyString(k, path, file);
        collect(x, path ? `${path}.${key}` : key);
      }
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => collect(x, `${path}[${i}]`));
    } else if (isStorageRef(v)) {
      throw new TorchFileError(file, `'${path || '(top level)'}' is a bare storage; mixprec reads tensors (save tensors, not their storages)`);
    } else if (isPyCallable(v)) {
      throw new TorchFileError(file, `'${path || '(top level)'}' is ${v.pyName} itself, not data; expected tensors, numbers, strings and containers`);
    }
  };
  collect(root, '');
  const numels = new Map<TensorRef, number>();
  const users = new Map<StorageRef, Located[]>();
  for (const loc of located.values()) {
    numels.set(loc.ref, checkTensor(loc, file));
    const list = users.get(loc.ref.storage) ?? [];
    list.push(loc);
    users.set(loc.ref.storage, list);
  }

  // Decode every storage first (range checks may still refuse the file), then allocate tensors.
  const decoded = new Map<StorageRef, StorageArray>();
  for (const [s, list] of users) decoded.set(s, decodeStorage(s, entries.get(`${prefix}/data/${s.key}`)!, order === 'big', file, list.map((l) => l.path)));
  const tensors = new Map<TensorRef, Tensor>();
  for (const [s, list] of users) {
    const dt = dtypeOf(MIXPREC_DTYPE[s.dtype]);
    const data = decoded.get(s)!;
    const init = (ref: TensorRef) => ({ requiresGrad: ref.requiresGrad && dt.isFloating });
    const only = list.length === 1 ? list[0]!.ref : null;
    if (only && isContiguousWhole(only, numels.get(only)!)) {
      tensors.set(only, Tensor.fromStorage(data, only.size, dt, init(only)));
      continue;
    }
    const base = Tensor.fromStorage(data, [s.numel], dt);
    for (const { ref } of list) tensors.set(ref, new Tensor(base.storage, [...ref.size], [...ref.stride], ref.offset, init(ref)));
  }

  // A container shared in the pickle stays one object (as in Python), so sharing cannot multiply memory.
  const converted = new Map<object, unknown>();
  const convert = (v: unknown, path: string): unknown => {
    if (isTensorRef(v)) return tensors.get(v)!;
    if ((v instanceof PyDict || Array.isArray(v)) && converted.has(v)) return converted.get(v);
    const out = convertInner(v, path);
    if (v instanceof PyDict || Array.isArray(v)) converted.set(v, out);
    return out;
  };
  const convertInner = (v: unknown, path: string): unknown => {
    if (v instanceof PyDict) {
      const out = markFromPyTorch({} as Record<string, unknown>);
      for (const [k, x] of v.entries) {
        const key = keyString(k, path, file);
        if (Object.prototype.hasOwnProperty.call(out, key)) throw new TorchFileError(file, `a dict at '${path || '(top level)'}' has two keys that read as '${key}'`);
        // defineProperty: a key such as '__proto__' stays a plain key.
        Object.defineProperty(out, key, { value: convert(x, path ? `${path}.${key}` : key), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    if (Array.isArray(v)) return v.map((x, i) => convert(x, `${path}[${i}]`));
    return v;
  };
  return convert(root, '');
}
