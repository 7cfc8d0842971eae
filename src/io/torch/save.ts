/**
 * `mx.io.saveTorch(path, value)`: a file `torch.load(path, weights_only=True)` reads, written
 * atomically (temporary file, fsync, rename: checkpoint.ts's writeFileAtomic).
 *
 * Layout as `torch.save` writes it: `archive/data.pkl` (protocol 2), `archive/byteorder`
 * ("little"), one stored entry per tensor (`archive/data/0`, ...; a tensor given twice is written
 * once and shares its storage after loading, as in PyTorch), `archive/version` ("3"); data aligned
 * to 64 bytes. Dtypes: mixprec's own, except int32, written as PyTorch's int64 by default (its
 * integer dtype: `num_batches_tracked`, indices; `intDtype: 'int32'` keeps int32). Names: keys
 * whose value is a tensor and whose last part is one of mixprec's camelCase member names
 * (`runningMean`, `runningVar`, `numBatchesTracked`, `posWeight`) get PyTorch's name
 * (`running_mean`, ...) unless `torchNames: false`, so `model.stateDict()` saves as PyTorch's
 * `state_dict()` would.
 */
import { Tensor } from '../../tensor/tensor.js';
import type { DTypeName } from '../../dtype/dtype.js';
import { toTorchKey } from '../../util/torch_names.js';
import { writeFileAtomic, type AtomicWriteOptions } from '../checkpoint.js';
import { storageBytes } from '../safetensors.js';
import { DTYPE_STORAGES, type TorchDtype } from './globals.js';
import { pickleValue, type PickledTensor } from './pickler.js';
import { writeZip, type ZipEntry } from './zip.js';

export interface SaveTorchOptions extends AtomicWriteOptions {
  /** The dtype int32 tensors are written as: 'int64' (default, PyTorch's integer dtype) or 'int32'. */
  intDtype?: 'int64' | 'int32';
  /** Rename mixprec's camelCase member names to PyTorch's (default true; see the module comment). */
  torchNames?: boolean;
  /** The folder inside the zip archive (default 'archive'; PyTorch ignores it when loading). */
  archiveName?: string;
}

function int64Bytes(values: Int32Array): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setBigInt64(i * 8, BigInt(values[i]!), true);
  return out;
}

/** Save tensors, numbers, strings, booleans, null, arrays and plain objects (a state dict, a checkpoint) for PyTorch. */
export async function saveTorch(path: string, value: unknown, options: SaveTorchOptions = {}): Promise<void> {
  const intDtype = options.intDtype ?? 'int64';
  if (intDtype !== 'int64' && intDtype !== 'int32') throw new RangeError(`saveTorch: intDtype must be 'int64' or 'int32', got ${JSON.stringify(intDtype)}`);
  const archive = options.archiveName ?? 'archive';
  if (!/^[\w.-]+$/.test(archive)) throw new RangeError(`saveTorch: archiveName must be a plain folder name, got ${JSON.stringify(archive)}`);
  const tensors: { t: Tensor; torchDtype: TorchDtype; key: string }[] = [];
  const keys = new Map<Tensor, PickledTensor>();
  const fileDtype = (d: DTypeName): TorchDtype => (d === 'int32' ? intDtype : d);

  const visit = (v: unknown, where: string): PickledTensor | null => {
    if (!(v instanceof Tensor)) return null;
    v.assertAlive(`saveTorch('${where}')`);
    const known = keys.get(v);
    if (known) return known;
    const torchDtype = fileDtype(v.dtype);
    const pickled: PickledTensor = { key: String(tensors.length), storageType: DTYPE_STORAGES[torchDtype], numel: v.numel, shape: v.shape };
    keys.set(v, pickled);
    tensors.push({ t: v, torchDtype, key: pickled.key });
    return pickled;
  };
  const rename = options.torchNames ?? true ? (k: string, x: unknown) => (x instanceof Tensor ? toTorchKey(k) : k) : undefined;
  let pkl: Uint8Array;
  try {
    pkl = pickleValue(value, visit, rename);
  } catch (e) {
    if (e instanceof TypeError) throw new TypeError(`saveTorch(${path}): ${e.message}`);
    throw e;
  }
  const utf8 = new TextEncoder();
  const entries: ZipEntry[] = [
    { name: `${archive}/data.pkl`, data: pkl },
    { name: `${archive}/byteorder`, data: utf8.encode('little') },
    ...tensors.map(({ t, torchDtype, key }) => ({
      name: `${archive}/data/${key}`,
      data: async () => {
        const data = await t.storageData();
        if (torchDtype === 'int64') return int64Bytes(data as Int32Array);
        return storageBytes(data); // storageData is a fresh contiguous copy: no aliasing of device memory
      },
    })),
    { name: `${archive}/version`, data: utf8.encode('3\n') },
  ];
  await writeFileAtomic(path, writeZip(entries), options);
}
