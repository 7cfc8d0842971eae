/**
 * mx.io: safetensors files, training checkpoints and PyTorch files (torch/).
 *
 *   await mx.io.saveCheckpoint('ckpt.safetensors', { tensors: model.stateDict(), meta: { epoch, step, optimizer: opt.stateDict() } });
 *   const { tensors, meta } = await mx.io.loadCheckpoint('ckpt.safetensors', { expect: model.stateDict() });
 *
 * See checkpoint.ts for where each part is stored and how writes are made atomic, and safetensors.ts
 * for the format and what reading validates.
 */
export {
  encodeSafetensors, decodeSafetensors, planSafetensors, parseHeader, readHeaderSize, decodeEntry, storageBytes, sniff,
  toSafetensorsDtype, fromSafetensorsDtype, SafetensorsError, MAX_HEADER_SIZE,
  type SafetensorsDtype, type RawTensor, type Named, type TensorSpec, type SafetensorsPlan, type HeaderEntry,
  type SafetensorsHeader, type DecodedSafetensors,
} from './safetensors.js';
export {
  saveCheckpoint, loadCheckpoint, saveSafetensors, loadSafetensors, readSafetensorsHeader, writeFileAtomic,
  checkTensorsMatch, diffTensors, packState, unpackState, CheckpointMismatchError,
  METADATA_KEY, CHECKPOINT_FORMAT, CHECKPOINT_VERSION,
  type CheckpointContents, type SaveCheckpointOptions, type SaveCheckpointResult, type LoadCheckpointOptions, type LoadedCheckpoint,
  type AtomicWriteOptions, type WriteStage, type TensorDict, type TensorShape, type ExpectedTensors, type TensorMismatch, type PackedState,
} from './checkpoint.js';
export { loadTorch, saveTorch, TorchFileError, RefusedGlobalError, MIXPREC_DTYPE, type LoadTorchOptions, type SaveTorchOptions, type TorchDtype } from './torch/index.js';
