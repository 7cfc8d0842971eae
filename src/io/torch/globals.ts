/**
 * The globals a PyTorch file may name, as PyTorch's `weights_only=True` unpickler allows them, and
 * what each builds here: storages (persistent ids), tensors (`_rebuild_tensor_v2`, parameters),
 * OrderedDict, torch.Size, torch.device, dtypes and `_codecs.encode` (bytes in protocol 2). Any
 * other global is refused before anything is built: nothing in a file can run code.
 */
import { PickleError, PyDict, type PyCallable } from './pickle.js';

/** PyTorch's dtypes that files may hold. */
export type TorchDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const TORCH_ITEMSIZE: Readonly<Record<TorchDtype, number>> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

/** `torch.<Name>Storage` (the persistent id's storage type) -> dtype. */
export const STORAGE_DTYPES: Readonly<Record<string, TorchDtype>> = {
  FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16', DoubleStorage: 'float64',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};
export const DTYPE_STORAGES: Readonly<Record<TorchDtype, string>> = Object.fromEntries(
  Object.entries(STORAGE_DTYPES).map(([s, d]) => [d, s]),
) as Record<TorchDtype, string>;

/** Storage types PyTorch allows but mixprec has no dtype for (named in the refusal). */
const OTHER_STORAGES: Readonly<Record<string, string>> = {
  ComplexFloatStorage: 'complex64', ComplexDoubleStorage: 'complex128', QInt8Storage: 'qint8', QUInt8Storage: 'quint8',
  QInt32Storage: 'qint32', QUInt4x2Storage: 'quint4x2', QUInt2x4Storage: 'quint2x4',
};

/** `torch.float32` etc. (pickled dtypes) -> a name. */
const TORCH_DTYPE_NAMES = new Set([
  'float32', 'float', 'float16', 'half', 'bfloat16', 'float64', 'double', 'int64', 'long', 'int32', 'int', 'int16', 'short',
  'int8', 'uint8', 'bool', 'complex64', 'complex128',
]);

/** A storage of the file: zip entry `<archive>/data/<key>` holding `numel` values of `dtype`. */
export interface StorageRef {
  readonly kind: 'storage';
  readonly key: string;
  readonly dtype: TorchDtype;
  readonly numel: number;
}

/** A tensor as the file describes it: a strided view of a storage (read after the pickle is run). */
export interface TensorRef {
  readonly kind: 'tensor';
  readonly storage: StorageRef;
  readonly offset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
  readonly requiresGrad: boolean;
}

export function isTensorRef(v: unknown): v is TensorRef {
  return typeof v === 'object' && v !== null && (v as TensorRef).kind === 'tensor' && 'storage' in v;
}
export function isStorageRef(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as StorageRef).kind === 'storage' && 'key' in v;
}

/** A storage class named in a persistent id (`torch.FloatStorage`). */
interface StorageType extends PyCallable {
  readonly storageDtype: TorchDtype;
}
function isStorageType(v: unknown): v is StorageType {
  return typeof v === 'object' && v !== null && typeof (v as StorageType).storageDtype === 'string';
}

const describe = (v: unknown): string =>
  v === null ? 'None' : Array.isArray(v) ? `(${v.map(describe).join(', ')})` : typeof v === 'object' ? ((v as { pyName?: string }).pyName ?? (v as object).constructor?.name ?? 'an object') : JSON.stringify(v) ?? String(v);

function fn(pyName: string, call: (args: readonly unknown[]) => unknown, newObject?: (args: readonly unknown[]) => unknown): PyCallable {
  return newObject ? { pyName, call, newObject } : { pyName, call };
}

function intArg(where: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new PickleError(`${where}: ${what} is ${describe(v)}; expected a non-negative integer`);
  return v;
}

function intTuple(where: string, what: string, v: unknown): number[] {
  if (!Array.isArray(v)) throw new PickleError(`${where}: ${what} is ${describe(v)}; expected a tuple of integers`);
  return v.map((x, i) => intArg(where, `${what}[${i}]`, x));
}

/** `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`. */
function rebuildTensor(args: readonly unknown[]): TensorRef {
  const where = 'torch._utils._rebuild_tensor_v2';
  if (args.length < 4 || args.length > 7) throw new PickleError(`${where} gets ${args.length} arguments; expected 6 (storage, offset, size, stride, requires_grad, hooks)`);
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!isStorageRef(storage)) throw new PickleError(`${where}: the storage is ${describe(storage)}; expected a storage persistent id`);
  const sizes = intTuple(where, 'size', size);
  const strides = intTuple(where, 'stride', stride);
  if (sizes.length !== strides.length) throw new PickleError(`${where}: size ${describe(size)} and stride ${describe(stride)} differ in length`);
  return { kind: 'tensor', storage, offset: intArg(where, 'the storage offset', offset), size: sizes, stride: strides, requiresGrad: requiresGrad === true };
}

/** `_rebuild_parameter(data, requires_grad, backward_hooks)` (and `_with_state`, the state ignored). */
function rebuildParameter(where: string, args: readonly unknown[]): TensorRef {
  const [data, requiresGrad] = args;
  if (!isTensorRef(data)) throw new PickleError(`${where}: the data is ${describe(data)}; expected a tensor`);
  return { ...data, requiresGrad: requiresGrad === true };
}

const TENSOR_CLASSES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter']);

function build(): Map<string, unknown> {
  const allowed = new Map<string, unknown>();
  const orderedDict: PyCallable = fn(
    'collections.OrderedDict',
    (args) => {
      const d = new PyDict(true);
      if (args.length > 1) throw new PickleError(`collections.OrderedDict gets ${args.length} arguments; expected at most 1`);
      if (args.length === 1 && args[0] !== null) {
        if (!Array.isArray(args[0])) throw new PickleError(`collections.OrderedDict gets ${describe(args[0])}; expected a list of pairs`);
        for (const pair of args[0]) {
          if (!Array.isArray(pair) || pair.length !== 2) throw new PickleError(`collections.OrderedDict gets ${describe(pair)}; expected (key, value) pairs`);
          d.entries.set(pair[0], pair[1]);
        }
      }
      return d;
    },
    () => new PyDict(true),
  );
  allowed.set('collections.OrderedDict', orderedDict);
  allowed.set('torch._utils._rebuild_tensor_v2', fn('torch._utils._rebuild_tensor_v2', rebuildTensor));
  allowed.set('torch._utils._rebuild_parameter', fn('torch._utils._rebuild_parameter', (a) => rebuildParameter('torch._utils._rebuild_parameter', a)));
  allowed.set('torch._utils._rebuild_parameter_with_state', fn('torch._utils._rebuild_parameter_with_state', (a) => rebuildParameter('torch._utils._rebuild_parameter_with_state', a)));
  for (const name of TENSOR_CLASSES) allowed.set(name, fn(name, () => { throw new PickleError(`${name} is only allowed as the type in _rebuild_from_type_v2`); }));
  // torch >= 1.12 pickles tensors carrying Python attributes through this; a plain type and no state is a plain tensor.
  allowed.set('torch._tensor._rebuild_from_type_v2', fn('torch._tensor._rebuild_from_type_v2', (args) => {
    const where = 'torch._tensor._rebuild_from_type_v2';
    const [func, type, inner, state] = args;
    const f = func as PyCallable | undefined;
    if (!f || typeof f.call !== 'function' || f.pyName === where) throw new PickleError(`${where}: the function is ${describe(func)}; expected a tensor rebuild function`);
    if (!TENSOR_CLASSES.has((type as PyCallable | undefined)?.pyName ?? '')) throw new PickleError(`${where}: the type is ${describe(type)}; only torch.Tensor and Parameter are allowed`);
    if (!Array.isArray(inner)) throw new PickleError(`${where}: the arguments are ${describe(inner)}; expected a tuple`);
    if (state instanceof PyDict && state.entries.size > 0) throw new PickleError(`${where}: tensors with Python attributes (${[...state.entries.keys()].map(String).join(', ')}) are not supported`);
    return f.call(inner);
  }));
  for (const [name, dtype] of Object.entries(STORAGE_DTYPES)) {
    const storageType: StorageType = { pyName: `torch.${name}`, storageDtype: dtype, call: () => { throw new PickleError(`torch.${name} is only allowed in a storage's persistent id`); } };
    allowed.set(`torch.${name}`, storageType);
  }
  allowed.set('torch.Size', fn('torch.Size', (args) => intTuple('torch.Size', 'the size', args[0])));
  allowed.set('torch.device', fn('torch.device', (args) => {
    const [type, index] = args;
    if (typeof type !== 'string') throw new PickleError(`torch.device gets ${describe(type)}; expected a string`);
    return index === undefined || index === null ? type : `${type}:${String(index)}`;
  }));
  // Python 3 bytes pickled at protocol 2: _codecs.encode(text, 'latin1').
  allowed.set('_codecs.encode', fn('_codecs.encode', (args) => {
    const [textArg, encoding] = args;
    if (typeof textArg !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) {
      throw new PickleError(`_codecs.encode gets ${describe(args)}; only (text, 'latin1'), the encoding of bytes, is allowed`);
    }
    return Uint8Array.from(textArg, (c) => c.charCodeAt(0) & 0xff);
  }));
  return allowed;
}

let ALLOWED: Map<string, unknown> | null = null;

/** The names on the allow-list, for messages. */
export const ALLOWED_SUMMARY = 'tensors and storages, OrderedDict, torch.Size, torch.device, dtypes and bytes';

/** The object a global names, or a PickleError refusing it (before anything is called). */
export function resolveTorchGlobal(module: string, name: string): unknown {
  ALLOWED ??= build();
  const full = `${module}.${name}`;
  const found = ALLOWED.get(full);
  if (found !== undefined) return found;
  if (module === 'torch' && TORCH_DTYPE_NAMES.has(name)) return `torch.${name}`;
  if (module === 'torch' && OTHER_STORAGES[name]) {
    throw new PickleError(`it holds ${OTHER_STORAGES[name]} tensors (torch.${name}), which mixprec has no dtype for (it reads float32, float16, bfloat16, float64, int64, int32, int16, int8, uint8 and bool)`);
  }
  throw new RefusedGlobalError(full);
}

/** A global outside the allow-list: the file is refused and nothing of it runs. */
export class RefusedGlobalError extends PickleError {
  override name = 'RefusedGlobalError';
  constructor(readonly global: string) {
    super(
      `refused: its pickle names the global ${global}, which is not on the allow-list (${ALLOWED_SUMMARY}, as PyTorch's ` +
        `weights_only=True); nothing was run`,
    );
  }
}

/** A persistent id `('storage', storage_type, key, location, numel)` -> StorageRef (same key, same ref). */
export function storageFromPersistentId(pid: unknown, known: Map<string, StorageRef>): StorageRef {
  if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
    throw new PickleError(`a persistent id is ${describe(pid)}; expected ('storage', storage_type, key, location, numel)`);
  }
  const [, type, key, location, numel] = pid;
  if (!isStorageType(type)) throw new PickleError(`the storage type of persistent id ${describe(key)} is ${describe(type)}; expected a torch storage class`);
  if (typeof key !== 'string' || !/^[\w.-]{1,64}$/.test(key)) throw new PickleError(`a storage key is ${describe(key)}; expected a short name`);
  if (typeof location !== 'string') throw new PickleError(`storage '${key}' has location ${describe(location)}; expected a device name`);
  const n = intArg(`storage '${key}'`, 'the element count', numel);
  const prev = known.get(key);
  if (prev) {
    if (prev.dtype !== type.storageDtype || prev.numel !== n) {
      throw new PickleError(`storage '${key}' is described twice, as ${prev.numel} ${prev.dtype} and as ${n} ${type.storageDtype} values`);
    }
    return prev;
  }
  const ref: StorageRef = { kind: 'storage', key, dtype: type.storageDtype, numel: n };
  known.set(key, ref);
  return ref;
}
