/**
 * CIFAR-10's binary batch files: 10,000 records of 1 label byte + 3,072 pixel bytes (R, G and B
 * planes of a 32x32 image). No Node imports: the browser playground decodes an archive picked from
 * disk with the same code as CIFAR10 (cifar10.ts).
 */
export const CIFAR10_CLASSES: readonly string[] = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export const PIXELS = 3072;
export const RECORD = PIXELS + 1;
export const TRAIN_FILES: readonly string[] = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const TEST_FILES: readonly string[] = ['test_batch.bin'];

/** A split's images (N x 3 x 32 x 32 uint8) and labels. */
export interface CifarSplit {
  images: Uint8Array;
  labels: Uint8Array;
}

/** Decode one batch file of `records` records into `into` at file position `slot` (errors name `name`). */
export function decodeBatchFile(buf: Uint8Array, name: string, records: number, into: CifarSplit, slot: number): void {
  const want = records * RECORD;
  if (buf.length !== want) {
    throw new Error(`CIFAR10: ${name} has ${buf.length} bytes, expected ${want} (${records} records of ${RECORD} bytes)`);
  }
  const { images, labels } = into;
  const first = slot * records;
  for (let r = 0; r < records; r++) {
    const off = r * RECORD;
    const label = buf[off]!;
    if (label > 9) throw new Error(`CIFAR10: ${name} record ${r} has label ${label}, expected 0-9 (a malformed or non-CIFAR-10 file)`);
    labels[first + r] = label;
    images.set(buf.subarray(off + 1, off + RECORD), (first + r) * PIXELS);
  }
}
