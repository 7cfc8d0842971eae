/**
 * Checkpoints: tensors in a safetensors file, the rest of the training state as JSON in the same
 * file's `__metadata__`, written atomically.
 *
 *   await mx.io.saveCheckpoint('run/ckpt.safetensors', {
 *     tensors: model.stateDict(),                       // record or Map of named tensors
 *     meta: { epoch, step, optimizer: opt.stateDict(), scaler: scaler.stateDict(),
 *             scheduler: sched.stateDict(), rng: mx.defaultGenerator.getState(), dataOrder },
 *   });
 *   const { tensors, meta } = await mx.io.loadCheckpoint('run/ckpt.safetensors', { expect: model.stateDict() });
 *   model.loadStateDict(tensors); opt.loadStateDict(meta.optimizer); ...
 *
 * Where things go (one file is the primary copy of everything):
 * - `tensors` are stored under their own names (e.g. `fc1.weight`), so the file is a plain
 *   safetensors state dict for any reader.
 * - `meta` is JSON in `__metadata__["mixprec"]`, as `{"format": "mixprec.checkpoint", "version": 1,
 *   "meta": ...}`. Tensors inside `meta` (an optimizer's state, for example) are moved into the
 *   safetensors data under their path (`optimizer.state.0.momentumBuffer`) and replaced in the JSON
 *   by `{"$tensor": name}`; non-finite numbers and -0 become `{"$number": "NaN" | "Infinity" |
 *   "-Infinity" | "-0"}` (JSON has no such numbers; a generator's state holds NaN); a plain object
 *   with a single key starting with `$` is wrapped as `{"$object": ...}` so it is never mistaken for
 *   either. `loadCheckpoint` undoes all three.
 * - `sidecar: true` also writes `<path>.json`, a readable copy of the JSON (and the tensor list) for
 *   people and tools; loading never reads it, so it cannot disagree with the checkpoint.
 *
 * Atomic writes: the file is written to `<path>.tmp-<pid>-<n>` in the same folder, flushed with
 * fsync, then renamed over `<path>` (and the folder is fsynced), so a crash at any point leaves either
 * the previous checkpoint or the new one, never a partial file under `<path>`. A write that fails is
 * cleaned up; temporary files left by a crashed process are removed by the next successful save.
 */
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { dtypeOf, type DTypeName } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { FileError, fileSystemError, quote, quoteName } from '../util/file_error.js';
import { allocate, fileBudget } from '../util/file_budget.js';
import { jsonDepth } from '../util/json_depth.js';
import { readExactly } from '../util/read_file.js';
import {
  decodeEntry, namedEntries, parseHeader, planSafetensors, readHeaderSize, storageBytes,
  type HeaderEntry, type Named, type SafetensorsHeader,
} from './safetensors.js';

// ----------------------------------------------------------------------------------------------
// Atomic writes

export type WriteStage = 'open' | 'write' | 'fsync' | 'rename';

export interface AtomicWriteOptions {
  /**
   * Fault injection for tests: called (and awaited) before each stage (before each chunk for 'write',
   * with its index); throwing there makes the write fail at that point, waiting there is a slow disk,
   * and exiting the process there is a crash.
   */
  faultInjection?: (stage: WriteStage, info: { path: string; tmpPath: string; chunk?: number }) => void | Promise<void>;
}

let tmpCounter = 0;
const TMP_RE = /\.tmp-(\d+)-\d+$/;

/**
 * Write `chunks` to `path` atomically: temporary file, fsync, rename, fsync of the folder. On failure
 * the temporary file is removed and `path` is untouched; the error names both.
 */
export async function writeFileAtomic(
  path: string,
  chunks: Iterable<Uint8Array | Promise<Uint8Array>> | AsyncIterable<Uint8Array>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const tmpPath = `${path}.tmp-${process.pid}-${tmpCounter++}`;
  const fault = options.faultInjection ?? (() => {});
  let fh: FileHandle | undefined;
  let stage: WriteStage = 'open';
  try {
    await fault('open', { path, tmpPath });
    fh = await open(tmpPath, 'wx');
    stage = 'write';
    let i = 0;
    for await (const chunk of chunks as AsyncIterable<Uint8Array>) {
      await fault('write', { path, tmpPath, chunk: i++ });
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, done, chunk.length - done);
        done += bytesWritten;
      }
    }
    stage = 'fsync';
    await fault('fsync', { path, tmpPath });
    await fh.sync();
    await fh.close();
    fh = undefined;
    stage = 'rename';
    await fault('rename', { path, tmpPath });
    await rename(tmpPath, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmpPath).catch(() => {});
    const err = new Error(
      `could not write ${path} (failed at ${stage} of the temporary file ${tmpPath}: ${(e as Error).message}); ` +
        `the previous ${basename(path)}, if any, is unchanged`,
      { cause: e },
    );
    throw err;
  }
  await syncDir(dirname(path));
  await removeStaleTemps(path);
}

async function syncDir(dir: string): Promise<void> {
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // Not every platform can open or fsync a folder (Windows); the rename itself is still atomic.
  }
}

/** Remove `<path>.tmp-<pid>-<n>` files of processes that no longer run (left by a crash). */
async function removeStaleTemps(path: string): Promise<void> {
  const base = basename(path);
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(`${base}.tmp-`)) continue;
    const m = TMP_RE.exec(name.slice(base.length));
    if (!m || name.slice(base.length).replace(TMP_RE, '') !== '') continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isRunning(pid)) continue;
    await unlink(join(dirname(path), name)).catch(() => {});
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// ----------------------------------------------------------------------------------------------
// Safetensors files of Tensors

export type TensorDict = Named<Tensor>;

/** Write named tensors (and optional string metadata) as a safetensors file, atomically. */
export async function saveSafetensors(
  path: string,
  tensors: TensorDict,
  metadata?: Record<string, string>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const entries = namedEntries(tensors);
  for (const [name, t] of entries) {
    if (!(t instanceof Tensor)) throw new TypeError(`saveSafetensors: '${name}' is not a Tensor (got ${describe(t)})`);
    t.assertAlive(`saveSafetensors('${name}')`);
  }
  const plan = planSafetensors(
    entries.map(([name, t]) => [name, { dtype: t.dtype, shape: t.shape, t }] as const),
    metadata,
  );
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield plan.header;
    for (const { tensor } of plan.order) yield storageBytes(await tensor.t.storageData());
  }
  await writeFileAtomic(path, chunks(), options);
}

async function openForReading(path: string, what: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      let hint = '';
      try {
        const base = basename(path);
        const temps = (await readdir(dirname(path))).filter((n) => n.startsWith(`${base}.tmp-`));
        if (temps.length) hint = ` (${temps.join(', ')} ${temps.length === 1 ? 'is a partial file' : 'are partial files'} from an interrupted save)`;
      } catch {
        // the folder itself is missing
      }
      throw new FileError(path, `${what} ${path} does not exist; expected a safetensors file${hint}`, { cause: e });
    }
    throw fileSystemError(path, e, 'safetensors file');
  }
  if ((await fh.stat()).isDirectory()) {
    await fh.close();
    throw new FileError(path, `${what} ${path} is a folder; expected a safetensors file`);
  }
  return fh;
}

/** Read and validate only the header (names, dtypes, shapes, offsets, metadata). */
export async function readSafetensorsHeader(path: string, what = 'safetensors file'): Promise<SafetensorsHeader> {
  const fh = await openForReading(path, what);
  try {
    return await readHeaderFrom(fh, path);
  } finally {
    await fh.close();
  }
}

async function readHeaderFrom(fh: FileHandle, path: string): Promise<SafetensorsHeader> {
  const { size } = await fh.stat();
  const first = new Uint8Array(Math.min(16, size));
  await readExactly(fh, first, 0, path);
  const n = readHeaderSize(first, size, path);
  const json = allocate(fileBudget(path, size - 8), Uint8Array, n, 'the JSON header');
  await readExactly(fh, json, 8, path);
  return parseHeader(json, size, path);
}

async function readTensors(fh: FileHandle, header: SafetensorsHeader, path: string, only?: (e: HeaderEntry) => boolean): Promise<Map<string, Tensor>> {
  const out = new Map<string, Tensor>();
  const { size } = await fh.stat();
  const budget = fileBudget(path, size - header.dataStart, { basis: 'the size of the data section' });
  for (const e of header.entries) {
    if (only && !only(e)) continue;
    const bytes = allocate(budget, Uint8Array, e.end - e.begin, `tensor ${quoteName(e.name)}`);
    await readExactly(fh, bytes, header.dataStart + e.begin, path);
    out.set(e.name, Tensor.fromStorage(decodeEntry(e, bytes, path), e.shape, dtypeOf(e.dtype)));
  }
  return out;
}

/**
 * Read a safetensors file into tensors (16-bit floats bit-exact). `expect` (names with shapes and
 * dtypes, e.g. a model's stateDict()) is checked against the header before any data is read.
 */
export async function loadSafetensors(
  path: string,
  options: { expect?: ExpectedTensors; strict?: boolean; target?: string } = {},
): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> | null }> {
  const fh = await openForReading(path, 'safetensors file');
  try {
    const header = await readHeaderFrom(fh, path);
    if (options.expect) checkTensorsMatch(options.expect, headerShapes(header.entries), { file: path, target: options.target, strict: options.strict });
    return { tensors: await readTensors(fh, header, path), metadata: header.metadata };
  } finally {
    await fh.close();
  }
}

function headerShapes(entries: readonly HeaderEntry[]): Map<string, TensorShape> {
  return new Map(entries.map((e) => [e.name, { shape: e.shape, dtype: e.dtype }]));
}

// ----------------------------------------------------------------------------------------------
// Checking names, shapes and dtypes

export interface TensorShape {
  readonly shape: readonly number[];
  readonly dtype: DTypeName;
}
/** Named shapes and dtypes; Tensors qualify, so a model's stateDict() can be passed as is. */
export type ExpectedTensors = Named<TensorShape>;

export interface TensorMismatch {
  missing: string[];
  unexpected: string[];
  shape: { name: string; expected: readonly number[]; got: readonly number[] }[];
  dtype: { name: string; expected: DTypeName; got: DTypeName }[];
}

/** Compare named shapes/dtypes: which expected names are missing, which are unexpected, which differ. */
export function diffTensors(expected: ExpectedTensors, got: ExpectedTensors): TensorMismatch {
  const exp = new Map(namedEntries(expected));
  const have = new Map(namedEntries(got));
  const out: TensorMismatch = { missing: [], unexpected: [], shape: [], dtype: [] };
  for (const [name, e] of exp) {
    const g = have.get(name);
    if (!g) {
      out.missing.push(name);
      continue;
    }
    if (e.shape.length !== g.shape.length || e.shape.some((d, i) => d !== g.shape[i])) out.shape.push({ name, expected: e.shape, got: g.shape });
    if (e.dtype !== g.dtype) out.dtype.push({ name, expected: e.dtype, got: g.dtype });
  }
  for (const name of have.keys()) if (!exp.has(name)) out.unexpected.push(name);
  return out;
}

/**
 * Thrown when a checkpoint's tensors do not match what the caller expected; lists every difference.
 * A FileError naming the checkpoint when it came from one (`file` is '' for tensors compared in memory).
 */
export class CheckpointMismatchError extends FileError {
  override name = 'CheckpointMismatchError';
  constructor(
    message: string,
    readonly mismatch: TensorMismatch,
    file?: string,
  ) {
    super(file ?? '', message);
  }
}

const shapeStr = (s: readonly number[]): string => {
  const text = `[${s.join(',')}]`;
  return text.length <= 40 ? text : `${text.slice(0, 40)}...] (${s.length} dims)`;
};
/** Names listed in a mismatch message, and the text its per-name parts may take, before "and N more". */
const LISTED_NAMES = 5;
const PARTS_TEXT = 700;
/** A name in a message: as it is when short, else quoted and cut (names come from files). */
const nameText = (name: string): string => (name.length <= 60 ? name : quoteName(name));
const nameList = (names: readonly string[]): string =>
  names.slice(0, LISTED_NAMES).map(nameText).join(', ') + (names.length > LISTED_NAMES ? ` and ${names.length - LISTED_NAMES} more` : '');

/**
 * Throw one CheckpointMismatchError listing every missing, unexpected, shape-mismatched and
 * dtype-mismatched name, e.g. `checkpoint model.safetensors does not match the model: missing
 * conv1.weight; unexpected fc4.bias; fc1.weight: shape [120,400] in the model, [84,400] in the file;
 * fc2.bias: dtype float32 in the model, float16 in the file`. With `strict: false`, missing and
 * unexpected names are allowed (only common names must agree). The message lists the first few of
 * each (a corrupt file may hold 20,000 names); `mismatch` holds them all.
 */
export function checkTensorsMatch(
  expected: ExpectedTensors,
  got: ExpectedTensors,
  options: { file?: string; target?: string; strict?: boolean } = {},
): void {
  const m = diffTensors(expected, got);
  const strict = options.strict ?? true;
  const target = options.target ?? 'the model';
  const source = options.file !== undefined ? 'the file' : 'the tensors';
  const parts: string[] = [];
  if (strict && m.missing.length) parts.push(`missing ${nameList(m.missing)}`);
  if (strict && m.unexpected.length) parts.push(`unexpected ${nameList(m.unexpected)}`);
  const perName = new Map<string, string[]>();
  for (const s of m.shape) perName.set(s.name, [`${nameText(s.name)}: shape ${shapeStr(s.expected)} in ${target}, ${shapeStr(s.got)} in ${source}`]);
  for (const d of m.dtype) {
    const text = `${nameText(d.name)}: dtype ${d.expected} in ${target}, ${d.got} in ${source}`;
    perName.set(d.name, [...(perName.get(d.name) ?? []), text]);
  }
  for (const texts of perName.values()) parts.push(...texts);
  if (parts.length === 0) return;
  let shown = 1;
  for (let length = parts[0]!.length; shown < parts.length && length + 2 + parts[shown]!.length <= PARTS_TEXT; shown++) length += 2 + parts[shown]!.length;
  const more = shown < parts.length ? `; and ${parts.length - shown} more mismatches` : '';
  const head = options.file !== undefined ? `checkpoint ${options.file} does not match ${target}` : `tensors do not match ${target}`;
  throw new CheckpointMismatchError(`${head}: ${parts.slice(0, shown).join('; ')}${more}`, strict ? m : { ...m, missing: [], unexpected: [] }, options.file);
}

// ----------------------------------------------------------------------------------------------
// Training state as JSON + tensors

export interface PackedState {
  /** JSON-safe value: tensors replaced by {"$tensor": name}, non-finite numbers by {"$number": ...}. */
  json: unknown;
  /** The tensors taken out of the value, by name (`<prefix>.<path>`). */
  tensors: Map<string, Tensor>;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v;
}

/**
 * Split a state value (e.g. an optimizer's stateDict(), or a whole `{ optimizer, scaler, epoch }`
 * object) into JSON and named tensors: each tensor becomes `{"$tensor": "<prefix>.<path>"}`, e.g.
 * `optimizer.state.0.momentumBuffer`. Plain objects, arrays, strings, booleans, null and numbers
 * (non-finite too) are allowed; anything else is refused with its path.
 */
export function packState(value: unknown, prefix = ''): PackedState {
  const tensors = new Map<string, Tensor>();
  const seen = new Set<object>();
  const walk = (v: unknown, path: string[]): unknown => {
    const where = path.length ? path.join('.') : '(the value itself)';
    if (v instanceof Tensor) {
      v.assertAlive(`checkpoint state ${where}`);
      const name = path.join('.');
      if (name === '') throw new TypeError('packState: a bare tensor needs a prefix to name it');
      if (tensors.has(name)) throw new RangeError(`packState: two tensors would both be named '${name}'`);
      tensors.set(name, v);
      return { $tensor: name };
    }
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') {
      if (Number.isNaN(v)) return { $number: 'NaN' };
      if (v === Infinity) return { $number: 'Infinity' };
      if (v === -Infinity) return { $number: '-Infinity' };
      if (Object.is(v, -0)) return { $number: '-0' };
      return v;
    }
    if (typeof v !== 'object') throw new TypeError(`checkpoint state ${where} is ${describe(v)}; expected JSON values, tensors, arrays and plain objects`);
    if (seen.has(v)) throw new TypeError(`checkpoint state ${where} refers back to itself (a cycle); expected a tree`);
    seen.add(v);
    try {
      if (Array.isArray(v)) return v.map((x, i) => (x === undefined ? null : walk(x, [...path, String(i)])));
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        const hint = ArrayBuffer.isView(v) ? ' (convert it with Array.from() or mx.tensor())' : '';
        throw new TypeError(`checkpoint state ${where} is a ${describe(v)}${hint}; expected JSON values, tensors, arrays and plain objects`);
      }
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = walk(x, [...path, k]);
      const keys = Object.keys(out);
      return keys.length === 1 && keys[0]!.startsWith('$') ? { $object: out } : out;
    } finally {
      seen.delete(v);
    }
  };
  const json = walk(value, prefix ? [prefix] : []);
  return { json, tensors };
}

/**
 * Undo packState: put the tensors back in place of their `{"$tensor": name}` markers. `file` (the
 * checkpoint's path) is named in the FileError a malformed marker raises.
 */
export function unpackState(json: unknown, tensors: ReadonlyMap<string, Tensor> | Record<string, Tensor>, file = '<state>'): unknown {
  const get = (name: string): Tensor | undefined => (tensors instanceof Map ? tensors.get(name) : (tensors as Record<string, Tensor>)[name]);
  const fail: (message: string) => never = (message) => {
    throw new FileError(file, `checkpoint ${file}: ${message}`);
  };
  const walk = (v: unknown, path: string): unknown => {
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}.${i}`));
    if (v === null || typeof v !== 'object') return v;
    path = path.length > 200 ? `${path.slice(0, 200)}...` : path;
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0]!.startsWith('$')) {
      const [k] = keys as [string];
      const x = o[k];
      if (k === '$tensor' && typeof x === 'string') {
        const t = get(x);
        if (!t) fail(`the state at ${path} refers to tensor ${quoteName(x)}, which the file does not hold`);
        return t;
      }
      if (k === '$number' && typeof x === 'string') {
        const n = ({ NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 } as Record<string, number>)[x];
        if (n === undefined) fail(`the state at ${path} is {"$number": ${quote(x, 40)}}; expected NaN, Infinity, -Infinity or -0`);
        return n;
      }
      if (k === '$object' && x !== null && typeof x === 'object' && !Array.isArray(x)) {
        return Object.fromEntries(Object.entries(x).map(([kk, xx]) => [kk, walk(xx, `${path}.${kk}`)]));
      }
      return fail(`the state at ${path} has the unknown marker ${quote(o)}`);
    }
    return Object.fromEntries(keys.map((k) => [k, walk(o[k], `${path}.${k}`)]));
  };
  return walk(json, 'meta');
}

// ----------------------------------------------------------------------------------------------
// Checkpoints

/** The `__metadata__` key holding the JSON state. */
export const METADATA_KEY = 'mixprec';
export const CHECKPOINT_FORMAT = 'mixprec.checkpoint';
export const CHECKPOINT_VERSION = 1;
/**
 * Deepest nesting of the JSON state loadCheckpoint accepts (a training run's is about 6: meta,
 * optimizer, state, parameter, value); checked before parsing, so a corrupt file cannot make the
 * parser build, or the unpacking recurse through, millions of levels.
 */
const MAX_STATE_DEPTH = 64;

export interface CheckpointContents<M = unknown> {
  /** Named tensors (e.g. a model's stateDict()), stored under their own names. */
  tensors?: TensorDict;
  /** Everything else: optimizer, GradScaler, scheduler, data order, RNG state, epoch, step... Tensors inside are allowed. */
  meta?: M;
}

export interface SaveCheckpointOptions extends AtomicWriteOptions {
  /** Also write `<path>.json`, a readable copy of the JSON state (never read back). Default false. */
  sidecar?: boolean;
}

export interface SaveCheckpointResult {
  path: string;
  /** Names of every tensor in the file: the given ones, then those taken from `meta`. */
  tensorNames: string[];
  sidecar?: string;
}

/** Save tensors and JSON state in one safetensors file, atomically (see the module comment). */
export async function saveCheckpoint(path: string, contents: CheckpointContents, options: SaveCheckpointOptions = {}): Promise<SaveCheckpointResult> {
  const given = namedEntries(contents.tensors ?? {});
  const packed = packState(contents.meta ?? null, '');
  const all = new Map<string, Tensor>();
  for (const [name, t] of given) {
    if (!(t instanceof Tensor)) throw new TypeError(`saveCheckpoint: tensors['${name}'] is not a Tensor (got ${describe(t)})`);
    all.set(name, t);
  }
  for (const [name, t] of packed.tensors) {
    if (all.has(name)) throw new RangeError(`saveCheckpoint: the tensor '${name}' of meta has the same name as one of tensors; rename one of them`);
    all.set(name, t);
  }
  const envelope = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, meta: packed.json };
  const metaJson = JSON.stringify(envelope);
  await saveSafetensors(path, all, { [METADATA_KEY]: metaJson }, options);
  const result: SaveCheckpointResult = { path, tensorNames: [...all.keys()] };
  if (options.sidecar) {
    const sidecar = `${path}.json`;
    const summary = {
      ...envelope,
      note: `a readable copy of __metadata__.${METADATA_KEY} of ${basename(path)}, which is what loadCheckpoint reads`,
      tensors: Object.fromEntries([...all].map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape }])),
    };
    try {
      await writeFileAtomic(sidecar, [new TextEncoder().encode(JSON.stringify(summary, null, 2) + '\n')], {});
    } catch (e) {
      throw new Error(`saveCheckpoint: ${path} was written, but its sidecar failed: ${(e as Error).message}`, { cause: e });
    }
    result.sidecar = sidecar;
  }
  return result;
}

export interface LoadCheckpointOptions {
  /** Names, shapes and dtypes the checkpoint's `tensors` must have (e.g. model.stateDict()); checked before reading data. */
  expect?: ExpectedTensors;
  /** With false, missing and unexpected names are allowed; shapes and dtypes of common names must still agree. Default true. */
  strict?: boolean;
  /** How the error names what was expected. Default 'the model'. */
  target?: string;
}

export interface LoadedCheckpoint<M = any> {
  /** The tensors saved under `tensors` (not those of `meta`), in file order. */
  tensors: Map<string, Tensor>;
  /** The saved `meta` with its tensors restored; null when the file has no mixprec state (any other safetensors file). */
  meta: M;
  /** The file's raw `__metadata__`. */
  metadata: Record<string, string> | null;
}

/** Load a checkpoint written by saveCheckpoint (or any safetensors file: then `meta` is null). */
export async function loadCheckpoint<M = any>(path: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint<M>> {
  const fh = await openForReading(path, 'checkpoint');
  try {
    const header = await readHeaderFrom(fh, path);
    const raw = header.metadata?.[METADATA_KEY];
    let envelope: { format?: unknown; version?: unknown; meta?: unknown } | null = null;
    if (raw !== undefined) {
      const depth = jsonDepth(raw, MAX_STATE_DEPTH);
      if (depth > MAX_STATE_DEPTH) {
        throw new FileError(path, `checkpoint ${path}: __metadata__.${METADATA_KEY} nests more than ${MAX_STATE_DEPTH} levels deep; expected the state written by saveCheckpoint`);
      }
      try {
        envelope = JSON.parse(raw);
      } catch (e) {
        throw new FileError(path, `checkpoint ${path}: __metadata__.${METADATA_KEY} is not valid JSON (${(e as Error).message}); expected the state written by saveCheckpoint`);
      }
      if (envelope === null || typeof envelope !== 'object' || envelope.format !== CHECKPOINT_FORMAT || typeof envelope.version !== 'number') {
        throw new FileError(path, `checkpoint ${path}: __metadata__.${METADATA_KEY} is not a mixprec checkpoint state; expected {"format": "${CHECKPOINT_FORMAT}", "version": ${CHECKPOINT_VERSION}, "meta": ...}`);
      }
      if (envelope.version > CHECKPOINT_VERSION) {
        throw new FileError(path, `checkpoint ${path} has format version ${envelope.version}, written by a newer mixprec; this one reads version ${CHECKPOINT_VERSION}`);
      }
    }
    const metaNames = new Set<string>();
    const collect = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(collect);
      else if (v !== null && typeof v === 'object') {
        const o = v as Record<string, unknown>;
        const keys = Object.keys(o);
        if (keys.length === 1 && keys[0] === '$tensor' && typeof o['$tensor'] === 'string') metaNames.add(o['$tensor']);
        else Object.values(o).forEach(collect);
      }
    };
    collect(envelope?.meta);
    const modelEntries = header.entries.filter((e) => !metaNames.has(e.name));
    if (options.expect) {
      checkTensorsMatch(options.expect, headerShapes(modelEntries), { file: path, target: options.target, strict: options.strict });
    }
    const all = await readTensors(fh, header, path);
    const tensors = new Map<string, Tensor>();
    for (const e of modelEntries) tensors.set(e.name, all.get(e.name)!);
    const meta = envelope ? unpackState(envelope.meta, all, path) : null;
    return { tensors, meta: meta as M, metadata: header.metadata };
  } finally {
    await fh.close();
  }
}
