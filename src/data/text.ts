/**
 * Character-level text data for language models (char-rnn style): a vocabulary of the characters
 * of a corpus, the corpus as int32 ids, a train/validation split, random training windows and the
 * fixed validation windows.
 *
 *   const corpus = await mx.data.CharCorpus.fromFile('tinyshakespeare.txt');
 *   const { train, validation } = corpus.split(0.9);
 *   const [x, y] = train.randomBatch(gen, 32, 128); // int32 [128, 32] each; y is x shifted by one
 */
import { readFile } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { Tensor } from '../tensor/tensor.js';
import { FileError } from '../util/file_error.js';
import { int32 } from '../dtype/dtype.js';
import type { Generator as RandomGenerator } from '../random/generator.js';

/** The characters of a corpus in code-point order; ids are indices into it. */
export class CharVocab {
  readonly chars: readonly string[];
  private readonly ids: Map<string, number>;

  constructor(chars: readonly string[]) {
    this.chars = chars;
    this.ids = new Map(chars.map((c, i) => [c, i]));
    if (this.ids.size !== chars.length) throw new RangeError('CharVocab: characters must be distinct');
  }

  /** The vocabulary of every character (code point) in `text`, sorted. */
  static fromText(text: string): CharVocab {
    return new CharVocab([...new Set(text)].sort());
  }

  get size(): number {
    return this.chars.length;
  }

  has(char: string): boolean {
    return this.ids.has(char);
  }

  encode(text: string): Int32Array {
    // Two passes over the code points instead of an array of one-character strings (8 bytes a
    // character more than the int32 ids).
    let count = 0;
    for (const _ of text) count++;
    const out = new Int32Array(count);
    let i = 0;
    for (const c of text) {
      const id = this.ids.get(c);
      if (id === undefined) throw new RangeError(`CharVocab: character ${JSON.stringify(c)} is not in the vocabulary (${this.size} characters)`);
      out[i++] = id;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) s += this.chars[ids[i]!] ?? '';
    return s;
  }
}

/** A run of character ids: random windows for training, consecutive windows for evaluation. */
export class CharSequence {
  constructor(readonly ids: Int32Array) {}

  get length(): number {
    return this.ids.length;
  }

  /**
   * `batchSize` windows of seqLen + 1 characters at random offsets (drawn from `generator`, each in
   * [0, length - seqLen - 1]): inputs and targets, int32 [seqLen, batchSize] each (time-major, the
   * LSTM's default layout), or [batchSize, seqLen] with `batchFirst` (nanoGPT's get_batch).
   */
  randomBatch(generator: RandomGenerator, batchSize: number, seqLen: number, options: { batchFirst?: boolean } = {}): [Tensor, Tensor] {
    const span = this.ids.length - seqLen - 1;
    if (span < 0) throw new RangeError(`CharSequence: ${this.ids.length} characters are too few for windows of ${seqLen + 1}`);
    const offsets = Array.from({ length: batchSize }, () => generator.nextInt(0, span + 1));
    return this.windows(offsets, seqLen, options.batchFirst ?? false);
  }

  /**
   * Consecutive non-overlapping windows covering the sequence (a last partial window is left out),
   * in batches of up to `batchSize`: every character predicted once, the same every time.
   */
  *evalBatches(batchSize: number, seqLen: number): Generator<[Tensor, Tensor], void, unknown> {
    const count = Math.floor((this.ids.length - 1) / seqLen);
    for (let w = 0; w < count; w += batchSize) {
      const offsets = Array.from({ length: Math.min(batchSize, count - w) }, (_, k) => (w + k) * seqLen);
      yield this.windows(offsets, seqLen);
    }
  }

  private windows(offsets: readonly number[], seqLen: number, batchFirst = false): [Tensor, Tensor] {
    const B = offsets.length;
    const x = new Int32Array(seqLen * B);
    const y = new Int32Array(seqLen * B);
    offsets.forEach((o, b) => {
      for (let t = 0; t < seqLen; t++) {
        const at = batchFirst ? b * seqLen + t : t * B + b;
        x[at] = this.ids[o + t]!;
        y[at] = this.ids[o + t + 1]!;
      }
    });
    const shape = batchFirst ? [B, seqLen] : [seqLen, B];
    return [Tensor.fromStorage(x, shape, int32), Tensor.fromStorage(y, shape, int32)];
  }
}

/**
 * Where UTF-8 validation fails in `bytes` (which Buffer's isUtf8 rejected): the first byte of the
 * first invalid or cut-short sequence (overlong forms, surrogates and code points past U+10FFFF too).
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const n = b < 0x80 ? 0 : b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (n < 0) return i;
    if (i + n >= bytes.length && n > 0) return i;
    // The second byte's range depends on the first (no overlong forms, surrogates or > U+10FFFF).
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k]!;
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += n + 1;
  }
  return bytes.length;
}

/** A text corpus with its character vocabulary. */
export class CharCorpus {
  readonly vocab: CharVocab;
  readonly ids: Int32Array;

  constructor(readonly text: string, vocab?: CharVocab) {
    this.vocab = vocab ?? CharVocab.fromText(text);
    this.ids = this.vocab.encode(text);
  }

  /**
   * Read a UTF-8 text file; a FileError names the file when it is missing, unreadable, empty, not
   * UTF-8 (with the offset of the first bad byte) or binary (NUL bytes).
   */
  static async fromFile(path: string): Promise<CharCorpus> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file'
        : code === 'EISDIR' ? 'a directory, expected a text file'
          : code === 'ERR_FS_FILE_TOO_LARGE' ? 'over 2 GiB, too large to read at once'
            : (e as Error).message;
      throw new FileError(path, `${path}: cannot read the text corpus (${why})`, { cause: e });
    }
    if (bytes.length === 0) throw new FileError(path, `${path}: the text corpus is empty (expected UTF-8 text)`);
    const nul = bytes.indexOf(0);
    if (nul >= 0) throw new FileError(path, `${path}: not a text file (a NUL byte at byte ${nul}; expected UTF-8 text)`);
    if (!isUtf8(bytes)) {
      const at = firstInvalidUtf8(bytes);
      throw new FileError(path, `${path}: not UTF-8 text (byte ${at} is 0x${bytes[at]?.toString(16) ?? '??'}, which no UTF-8 sequence has there; expected UTF-8 text)`);
    }
    let text: string;
    try {
      text = bytes.toString('utf8');
    } catch (e) {
      throw new FileError(path, `${path}: cannot read the text corpus (${(e as Error).message})`, { cause: e });
    }
    return new CharCorpus(text);
  }

  /** The first `fraction` of the characters for training, the rest for validation. */
  split(fraction = 0.9): { train: CharSequence; validation: CharSequence } {
    if (!(fraction > 0 && fraction < 1)) throw new RangeError(`CharCorpus.split: fraction must be in (0, 1), got ${fraction}`);
    const cut = Math.floor(this.ids.length * fraction);
    return { train: new CharSequence(this.ids.subarray(0, cut)), validation: new CharSequence(this.ids.subarray(cut)) };
  }
}
