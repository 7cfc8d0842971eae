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
import { Tensor } from '../tensor/tensor.js';
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
    const chars = [...text];
    const out = new Int32Array(chars.length);
    chars.forEach((c, i) => {
      const id = this.ids.get(c);
      if (id === undefined) throw new RangeError(`CharVocab: character ${JSON.stringify(c)} is not in the vocabulary (${this.size} characters)`);
      out[i] = id;
    });
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

/** A text corpus with its character vocabulary. */
export class CharCorpus {
  readonly vocab: CharVocab;
  readonly ids: Int32Array;

  constructor(readonly text: string, vocab?: CharVocab) {
    this.vocab = vocab ?? CharVocab.fromText(text);
    this.ids = this.vocab.encode(text);
  }

  /** Read a UTF-8 text file; the error names the file when it is missing, unreadable or empty. */
  static async fromFile(path: string): Promise<CharCorpus> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a directory, expected a text file' : (e as Error).message;
      throw new Error(`${path}: cannot read the text corpus (${why})`);
    }
    if (text.length === 0) throw new Error(`${path}: the text corpus is empty (expected UTF-8 text)`);
    if (text.includes('\u0000')) throw new Error(`${path}: not a text file (it contains NUL bytes; expected UTF-8 text)`);
    return new CharCorpus(text);
  }

  /** The first `fraction` of the characters for training, the rest for validation. */
  split(fraction = 0.9): { train: CharSequence; validation: CharSequence } {
    if (!(fraction > 0 && fraction < 1)) throw new RangeError(`CharCorpus.split: fraction must be in (0, 1), got ${fraction}`);
    const cut = Math.floor(this.ids.length * fraction);
    return { train: new CharSequence(this.ids.subarray(0, cut)), validation: new CharSequence(this.ids.subarray(cut)) };
  }
}
