/**
 * The safetensors format (https://github.com/huggingface/safetensors), encoded and decoded in memory,
 * without dependencies. Files written here are read by Python's `safetensors` (and by
 * `tools/check_safetensors.py`), and files written by it are read here.
 *
 * Layout: an 8-byte little-endian unsigned header length N; N bytes of UTF-8 JSON
 *
 *   {"__metadata__": {"key": "string value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 *
 * padded with spaces so that N is a multiple of 8; then the data section, every tensor row-major and
 * little-endian, back to back without gaps, `data_offsets` counted from the start of the data section.
 *
 * Writing follows the reference implementation byte for byte: tensors sorted by dtype alignment
 * (F64, F32, I32, BF16, F16, BOOL), then by name (UTF-8 bytes); the compact JSON header lists
 * `__metadata__` first, then the tensors in data order, each as dtype, shape, data_offsets. So every
 * tensor's data is aligned to its item size when the file is mapped.
 *
 * Reading validates what the reference reader validates, and a little more, and each error names the
 * file and what was expected: the header length (at most 100,000,000 bytes, within the file), UTF-8,
 * a JSON object starting with `{`, every entry's fields, known dtypes, offsets that tile the data
 * section from 0 to its end without gaps or overlaps, byte lengths equal to numel x itemsize, and
 * bool bytes that are 0 or 1. Dtypes: F32, F16, BF16, F64, I32 and BOOL map to mixprec's dtypes
 * (F16/BF16 as raw bits, so a round trip is bit-exact); I64 (PyTorch's integer default) is read as
 * int32 when every value fits and refused otherwise; the other safetensors dtypes are refused.
 */
import { endianness } from 'node:os';
import { dtypeOf, type DTypeName, type StorageArray } from '../dtype/dtype.js';
import { FileError, quote, quoteName } from '../util/file_error.js';
import { jsonDepth } from '../util/json_depth.js';

/** The reference implementation's limit on the header length. */
export const MAX_HEADER_SIZE = 100_000_000;

/** The safetensors dtypes mixprec writes. */
export type SafetensorsDtype = 'F64' | 'F32' | 'I32' | 'BF16' | 'F16' | 'BOOL';

const TO_FILE: Record<DTypeName, SafetensorsDtype> = {
  float64: 'F64', float32: 'F32', int32: 'I32', bfloat16: 'BF16', float16: 'F16', bool: 'BOOL',
};
const FROM_FILE: Record<string, DTypeName> = {
  F64: 'float64', F32: 'float32', I32: 'int32', BF16: 'bfloat16', F16: 'float16', BOOL: 'bool', I64: 'int32',
};
/**
 * Position of each dtype in the reference implementation's `Dtype` enum (increasing alignment); the
 * writer sorts by it, descending. Only the relative order of the dtypes mixprec writes matters.
 */
const ENUM_ORDER: Record<SafetensorsDtype, number> = { BOOL: 0, F16: 7, BF16: 8, I32: 9, F32: 11, F64: 12 };
/** Dtypes of the safetensors specification that mixprec cannot hold (named in errors). */
const OTHER_SPEC_DTYPES = new Set([
  'U8', 'I8', 'I16', 'U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64',
]);
const FILE_ITEMSIZE: Record<string, number> = { F64: 8, F32: 4, I32: 4, BF16: 2, F16: 2, BOOL: 1, I64: 8 };
const SUPPORTED = 'F32, F16, BF16, F64, I32, BOOL (and I64 within the int32 range)';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** A tensor in storage format: float16/bfloat16 as raw bits in a Uint16Array, bool as 0/1 bytes. */
export interface RawTensor {
  dtype: DTypeName;
  shape: readonly number[];
  data: StorageArray;
}

/** Named tensors: a record, a Map, or [name, value] pairs. */
export type Named<T> = Record<string, T> | ReadonlyMap<string, T> | Iterable<readonly [string, T]>;

export function namedEntries<T>(named: Named<T>): [string, T][] {
  if (named instanceof Map) return [...named.entries()];
  if (typeof (named as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return [...(named as Iterable<readonly [string, T]>)].map(([k, v]) => [k, v]);
  }
  return Object.entries(named as Record<string, T>);
}

/** A file that is not a valid safetensors file; `file` names it and `problem` says what was expected. */
export class SafetensorsError extends FileError {
  override name = 'SafetensorsError';
  constructor(
    file: string,
    readonly problem: string,
  ) {
    super(file, `${file} is not a valid safetensors file: ${problem}`);
  }
}

/** Nesting of a header: the object, a tensor's entry, its shape or offsets array. */
const MAX_HEADER_DEPTH = 3;

export function toSafetensorsDtype(dtype: DTypeName): SafetensorsDtype {
  return TO_FILE[dtypeOf(dtype).name];
}

export function fromSafetensorsDtype(dtype: string): DTypeName | undefined {
  return Object.prototype.hasOwnProperty.call(FROM_FILE, dtype) ? FROM_FILE[dtype] : undefined;
}

// ----------------------------------------------------------------------------------------------
// Writing

/** What the header needs of a tensor (the data can come later, streamed). */
export interface TensorSpec {
  dtype: DTypeName;
  shape: readonly number[];
}

export interface SafetensorsPlan<T extends TensorSpec> {
  /** The 8-byte length and the padded JSON header: the first bytes of the file. */
  header: Uint8Array;
  /** The tensors in the order their data follows the header. */
  order: { name: string; tensor: T; begin: number; end: number }[];
  /** Total file size in bytes. */
  byteLength: number;
}

function checkShape(where: string, shape: readonly number[]): number {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new RangeError(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  let n = 1;
  for (const d of shape) n *= d;
  if (!Number.isSafeInteger(n)) throw new RangeError(`${where}: shape ${JSON.stringify(shape)} has too many elements`);
  return n;
}

const utf8 = new TextEncoder();
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Lay out a file: sort the tensors as the reference writer does, assign offsets and build the
 * header. `metadata` (string values only) becomes `__metadata__`; omitted when undefined.
 */
export function planSafetensors<T extends TensorSpec>(tensors: Named<T>, metadata?: Record<string, string>): SafetensorsPlan<T> {
  const entries = namedEntries(tensors);
  const seen = new Set<string>();
  for (const [name, t] of entries) {
    if (typeof name !== 'string') throw new TypeError(`safetensors: tensor names must be strings, got ${String(name)}`);
    if (name === '__metadata__') throw new RangeError(`safetensors: '__metadata__' is reserved and cannot name a tensor`);
    if (seen.has(name)) throw new RangeError(`safetensors: tensor name '${name}' appears twice`);
    seen.add(name);
    dtypeOf(t.dtype);
    checkShape(`safetensors: tensor '${name}'`, t.shape);
  }
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new TypeError('safetensors: metadata must be an object of strings');
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`safetensors: metadata '${k}' must be a string (the format stores strings only), got ${typeof v}`);
    }
  }
  entries.sort(([na, a], [nb, b]) => ENUM_ORDER[TO_FILE[b.dtype]] - ENUM_ORDER[TO_FILE[a.dtype]] || compareUtf8(na, nb));

  let offset = 0;
  const order: SafetensorsPlan<T>['order'] = [];
  const parts: string[] = [];
  if (metadata !== undefined) {
    parts.push(`"__metadata__":{${Object.entries(metadata).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  }
  for (const [name, tensor] of entries) {
    const fileDtype = TO_FILE[tensor.dtype];
    const n = checkShape(name, tensor.shape) * FILE_ITEMSIZE[fileDtype]!;
    const begin = offset;
    offset += n;
    order.push({ name, tensor, begin, end: offset });
    parts.push(`${JSON.stringify(name)}:{"dtype":"${fileDtype}","shape":[${tensor.shape.join(',')}],"data_offsets":[${begin},${offset}]}`);
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const n = json.length + ((8 - (json.length % 8)) % 8);
  if (n > MAX_HEADER_SIZE) throw new RangeError(`safetensors: the header would be ${n} bytes, over the format's limit of ${MAX_HEADER_SIZE}`);
  const header = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, 8);
  return { header, order, byteLength: header.length + offset };
}

/** The little-endian bytes of a tensor's storage (a view on little-endian hosts, a swapped copy otherwise). */
export function storageBytes(data: StorageArray): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return LITTLE_ENDIAN_HOST || data.BYTES_PER_ELEMENT === 1 ? bytes : swapBytes(bytes, data.BYTES_PER_ELEMENT);
}

function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += size) for (let j = 0; j < size; j++) out[i + j] = bytes[i + size - 1 - j]!;
  return out;
}

/** Check that `data` is the storage array of `dtype` holding numel(shape) values. */
export function checkRawTensor(name: string, t: RawTensor): void {
  const dt = dtypeOf(t.dtype);
  const n = checkShape(`safetensors: tensor '${name}'`, t.shape);
  if (!(t.data instanceof dt.storage)) {
    throw new TypeError(`safetensors: tensor '${name}' of dtype ${dt.name} must hold a ${dt.storage.name}, got ${t.data?.constructor?.name}`);
  }
  if (t.data.length !== n) {
    throw new RangeError(`safetensors: tensor '${name}' of shape ${JSON.stringify(t.shape)} needs ${n} values, got ${t.data.length}`);
  }
}

/** A whole safetensors file in memory. */
export function encodeSafetensors(tensors: Named<RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = namedEntries(tensors);
  for (const [name, t] of entries) checkRawTensor(name, t);
  const plan = planSafetensors(entries, metadata);
  const out = new Uint8Array(plan.byteLength);
  out.set(plan.header, 0);
  for (const { tensor, begin } of plan.order) out.set(storageBytes(tensor.data), plan.header.length + begin);
  return out;
}

// ----------------------------------------------------------------------------------------------
// Reading

/** One tensor's entry in a header. Offsets are counted from the start of the data section. */
export interface HeaderEntry {
  name: string;
  /** The mixprec dtype the tensor is read as. */
  dtype: DTypeName;
  /** The dtype as written in the file (F32, ..., I64). */
  fileDtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** N, the length of the JSON header (without the 8-byte length field). */
  headerSize: number;
  /** Byte position of the data section in the file: 8 + N. */
  dataStart: number;
  /** `__metadata__`, or null when the file has none. */
  metadata: Record<string, string> | null;
  /** The tensors in data order. */
  entries: HeaderEntry[];
}

/** Recognise what a file is when it is not safetensors, for the error message. */
export function sniff(bytes: Uint8Array): string {
  const starts = (...sig: number[]): boolean => sig.every((b, i) => bytes[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return ' (it starts like a PNG image)';
  if (starts(0x50, 0x4b, 0x03, 0x04)) return ' (it starts like a ZIP archive, e.g. a PyTorch torch.save() file)';
  if (starts(0x1f, 0x8b)) return ' (it starts like a gzip file)';
  if (starts(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59)) return ' (it starts like a NumPy .npy file)';
  if (starts(0x89, 0x48, 0x44, 0x46)) return ' (it starts like an HDF5 file)';
  if (bytes[0] === 0x80 && bytes[1] !== undefined && bytes[1] >= 2 && bytes[1] <= 5) return ' (it starts like a Python pickle)';
  if (starts(0xff, 0xd8, 0xff)) return ' (it starts like a JPEG image)';
  const head = Buffer.from(bytes.subarray(0, 16)).toString('latin1').trimStart();
  if (head.startsWith('{') || head.startsWith('[')) return ' (it starts like a JSON text)';
  return '';
}

/**
 * Validate the first 8 bytes against the file size; returns N. `first` holds at least the first 8
 * bytes (more help the error message recognise other formats).
 */
export function readHeaderSize(first: Uint8Array, fileSize: number, file: string): number {
  if (fileSize === 0) throw new SafetensorsError(file, 'the file is empty; expected an 8-byte header length, a JSON header and the tensor data');
  if (fileSize < 8 || first.length < 8) {
    throw new SafetensorsError(file, `the file has ${fileSize} bytes, fewer than the 8-byte header length that starts a safetensors file${sniff(first)}`);
  }
  const n = new DataView(first.buffer, first.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsError(file, `the header length field says ${n} bytes; expected at most ${MAX_HEADER_SIZE}${sniff(first)}`);
  }
  const size = Number(n);
  if (8 + size > fileSize) {
    throw new SafetensorsError(
      file,
      `the header length field says ${size} bytes but only ${fileSize - 8} bytes follow it; expected the whole header in the file (truncated file?)${sniff(first)}`,
    );
  }
  return size;
}


const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isIndex = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * Parse and validate the JSON header (`json`: the N header bytes) of a file of `fileSize` bytes.
 * Throws a SafetensorsError naming the file and the first problem found.
 */
export function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerSize = json.length;
  const dataStart = 8 + headerSize;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    throw new SafetensorsError(file, `the ${headerSize}-byte header is not valid UTF-8; expected a UTF-8 JSON object${sniff(json)}`);
  }
  if (!text.startsWith('{')) {
    throw new SafetensorsError(file, `the header starts with ${JSON.stringify(text.slice(0, 12))}; expected a JSON object starting with '{'`);
  }
  const depth = jsonDepth(text, MAX_HEADER_DEPTH);
  if (depth > MAX_HEADER_DEPTH) {
    throw new SafetensorsError(file, `the header nests arrays or objects more than ${MAX_HEADER_DEPTH} levels deep; expected {"name": {"dtype", "shape": [...], "data_offsets": [...]}, ...}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, `the ${headerSize}-byte header is not valid JSON (${(e as Error).message}); expected a JSON object`);
  }
  if (!isObject(header)) throw new SafetensorsError(file, 'the header is not a JSON object; expected {"name": {"dtype", "shape", "data_offsets"}, ...}');

  let metadata: Record<string, string> | null = null;
  const entries: HeaderEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (info === null) continue;
      if (!isObject(info)) throw new SafetensorsError(file, `__metadata__ is ${quote(info)}; expected an object of strings`);
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__.${JSON.stringify(k).slice(1, -1).slice(0, 60)}${k.length > 60 ? '...' : ''} is ${quote(v)}; expected a string`);
      }
      metadata = { ...(info as Record<string, string>) };
      continue;
    }
    const where = `tensor ${quoteName(name)}`;
    if (!isObject(info)) throw new SafetensorsError(file, `${where} is ${quote(info)}; expected {"dtype", "shape", "data_offsets"}`);
    const { dtype: fileDtype, shape, data_offsets: offsets } = info;
    if (typeof fileDtype !== 'string') throw new SafetensorsError(file, `${where} has dtype ${quote(fileDtype)}; expected a string such as "F32"`);
    const dtype = fromSafetensorsDtype(fileDtype);
    if (!dtype) {
      const known = OTHER_SPEC_DTYPES.has(fileDtype) ? `the safetensors dtype ${fileDtype}, which mixprec does not support` : `an unknown dtype ${quote(fileDtype, 40)}`;
      throw new SafetensorsError(file, `${where} has ${known}; expected one of ${SUPPORTED}`);
    }
    if (!Array.isArray(shape) || !shape.every(isIndex)) {
      throw new SafetensorsError(file, `${where} has shape ${quote(shape)}; expected a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
      throw new SafetensorsError(file, `${where} has data_offsets ${quote(offsets)}; expected [begin, end], two non-negative integers`);
    }
    entries.push({ name, dtype, fileDtype, shape: shape as number[], begin: offsets[0] as number, end: offsets[1] as number });
  }

  // As the reference reader: in offset order, each tensor starts where the previous one ends, and its
  // byte length is numel x itemsize; the last one ends at the end of the file.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataSize = fileSize - dataStart;
  let start = 0;
  for (const e of entries) {
    const where = `tensor ${quoteName(e.name)}`;
    if (e.begin !== start || e.end < e.begin) {
      const what = e.begin > start ? `leaving a gap after byte ${start}` : e.end < e.begin ? 'ending before it begins' : `overlapping the data before byte ${start}`;
      throw new SafetensorsError(
        file,
        `${where} has data_offsets [${e.begin}, ${e.end}], ${what}; expected it to begin at ${start} (tensors lie back to back from offset 0, without gaps or overlaps)`,
      );
    }
    let numel = 1;
    for (const d of e.shape) numel *= d;
    const nbytes = numel * FILE_ITEMSIZE[e.fileDtype]!;
    if (!Number.isSafeInteger(nbytes)) throw new SafetensorsError(file, `${where} has shape ${quote(e.shape)}, too many elements`);
    if (e.end - e.begin !== nbytes) {
      throw new SafetensorsError(
        file,
        `${where} (${e.fileDtype}, shape ${quote(e.shape)}) has data_offsets [${e.begin}, ${e.end}], ${e.end - e.begin} bytes; expected ${numel} x ${FILE_ITEMSIZE[e.fileDtype]} = ${nbytes} bytes`,
      );
    }
    if (e.end > dataSize) {
      throw new SafetensorsError(
        file,
        `${where} has data_offsets [${e.begin}, ${e.end}] but the data section holds ${dataSize} bytes; expected every tensor within the file (truncated file?)`,
      );
    }
    start = e.end;
  }
  if (start !== dataSize) {
    throw new SafetensorsError(file, `the tensors cover ${start} bytes of data but ${dataSize} bytes follow the header; expected the last tensor to end at the end of the file`);
  }
  return { headerSize, dataStart, metadata, entries };
}

/**
 * A fresh storage array from the little-endian bytes of one entry (`bytes.length` = end - begin).
 * Bool bytes must be 0 or 1; I64 values must fit in int32.
 */
export function decodeEntry(entry: HeaderEntry, bytes: Uint8Array, file: string): StorageArray {
  if (bytes.length !== entry.end - entry.begin) throw new RangeError(`decodeEntry: got ${bytes.length} bytes for '${entry.name}', expected ${entry.end - entry.begin}`);
  const n = entry.shape.reduce((a, b) => a * b, 1);
  if (entry.fileDtype === 'I64') {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = view.getBigInt64(8 * i, true);
      if (v < -2147483648n || v > 2147483647n) {
        throw new SafetensorsError(file, `tensor ${quoteName(entry.name)} (I64) holds ${v} at flat index ${i}; mixprec reads I64 as int32, so expected values in [-2^31, 2^31)`);
      }
      out[i] = Number(v);
    }
    return out;
  }
  const ctor = dtypeOf(entry.dtype).storage;
  const out = new ctor(n);
  const outBytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  outBytes.set(LITTLE_ENDIAN_HOST || ctor.BYTES_PER_ELEMENT === 1 ? bytes : swapBytes(bytes, ctor.BYTES_PER_ELEMENT));
  if (entry.dtype === 'bool') {
    const i = (out as Uint8Array).findIndex((b) => b > 1);
    if (i >= 0) throw new SafetensorsError(file, `bool tensor ${quoteName(entry.name)} holds byte ${out[i]} at flat index ${i}; expected 0 or 1`);
  }
  return out;
}

export interface DecodedSafetensors {
  metadata: Record<string, string> | null;
  /** In data order. */
  tensors: Map<string, RawTensor>;
  header: SafetensorsHeader;
}

/** Decode a whole file held in memory; `file` names it in errors. */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): DecodedSafetensors {
  const n = readHeaderSize(bytes.subarray(0, 16), bytes.length, file);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length, file);
  const tensors = new Map<string, RawTensor>();
  for (const e of header.entries) {
    const data = decodeEntry(e, bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end), file);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { metadata: header.metadata, tensors, header };
}
