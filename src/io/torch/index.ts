/**
 * PyTorch files (`torch.save` / `torch.load`), read and written without Python.
 *
 *   const sd = await mx.io.loadTorch('resnet18-f37072fd.pth');   // { 'conv1.weight': Tensor, ... }
 *   model.loadStateDict(sd);                                      // PyTorch's names, int64, dtypes: as they are
 *   const ckpt = await mx.io.loadTorch('ckpt.pt');                // { model, optimizer, iter_num, model_args: {...} }
 *   ckpt.model_args.n_layer;
 *   await mx.io.saveTorch('finetuned.pth', model.stateDict());    // torch.load(path, weights_only=True) reads it
 *
 * Reading (PyTorch >= 1.6's zip format; the legacy format is refused with how to re-save it):
 * - dict and OrderedDict -> plain objects in their order (JS puts integer-like keys such as an
 *   optimizer's `state` indices first, ascending); non-string keys become strings (1 -> '1',
 *   True -> 'True', None -> 'None'); list, tuple and set -> arrays; int -> number (bigint beyond
 *   2^53); float -> number; str -> string; bool -> boolean; None -> null; bytes -> Uint8Array;
 *   torch.Size -> array; torch.device -> 'cuda:0'; a dtype -> 'torch.float32'. OrderedDict's
 *   `_metadata` (module versions) is dropped.
 * - tensors -> mixprec tensors on the current backend, 0-d ones included: float32, float16,
 *   bfloat16, float64 and bool as they are; int32 as int32; int16, int8 and uint8 widened to int32;
 *   int64 (PyTorch's integer dtype, e.g. `num_batches_tracked`) read as int32 when every value of
 *   its storage fits, else the file is refused with one line naming the tensor. Tensors sharing a
 *   storage in the file share it after loading (views); a parameter saved with requires_grad comes
 *   back requiring grad.
 * - Safe as `torch.load(weights_only=True)`: only tensors, storages, OrderedDict, torch.Size,
 *   torch.device, dtypes and bytes may be named; any other global (`os.system`, `builtins.eval`) is
 *   refused, naming it, before anything is built, and nothing runs.
 * - Damaged files get one line naming the file and the problem (a truncated archive, a storage
 *   shorter than its tensors, sizes that overflow, a truncated pickle), and sizes are checked
 *   against the file before anything is allocated. Dicts from a file are marked so that
 *   `Module.loadStateDict` converts values into the module's dtypes, as PyTorch's does.
 *
 * Writing: see ./save.ts (int32 as int64, mixprec's camelCase buffer names as PyTorch's).
 */
export { loadTorch, TorchFileError, MIXPREC_DTYPE, type LoadTorchOptions } from './load.js';
export { saveTorch, type SaveTorchOptions } from './save.js';
export { RefusedGlobalError, type TorchDtype } from './globals.js';
