/**
 * The pickle writer for `data.pkl` (protocol 2, the opcodes `torch.save` emits): None, booleans,
 * integers (BININT*, LONG1 beyond int32), floats (BINFLOAT), strings, lists, dicts, and tensors as
 * `torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride, False, OrderedDict())`,
 * which PyTorch's `weights_only=True` loader accepts. Globals are memoized, as Python's pickler does.
 */

/** How a tensor appears in the pickle: its storage (written as a zip entry by the caller) and shape. */
export interface PickledTensor {
  /** The storage's key: its zip entry is `<archive>/data/<key>`. */
  key: string;
  /** `FloatStorage`, `LongStorage`, ...: the storage class in `torch`. */
  storageType: string;
  numel: number;
  shape: readonly number[];
}

/** What the writer does with each value it meets: a tensor (PickledTensor), or null for plain data. */
export type TensorVisitor = (value: unknown, path: string) => PickledTensor | null;

const OP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d,
  LONG1: 0x8a, BINFLOAT: 0x47, BINUNICODE: 0x58, EMPTY_DICT: 0x7d, SETITEMS: 0x75, EMPTY_LIST: 0x5d, APPENDS: 0x65,
  EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, GLOBAL: 0x63, REDUCE: 0x52, BINPERSID: 0x51,
  BINPUT: 0x71, LONG_BINPUT: 0x72, BINGET: 0x68, LONG_BINGET: 0x6a,
} as const;
/** Python's pickler batches SETITEMS and APPENDS by 1000. */
const BATCH = 1000;

class ByteWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  /** `size` bytes written by `set` on a DataView at the end. */
  private put(size: number, set: (view: DataView, at: number) => void): void {
    this.reserve(size);
    set(this.view, this.length);
    this.length += size;
  }
  u16(v: number): void {
    this.put(2, (d, at) => d.setUint16(at, v, true));
  }
  u32(v: number): void {
    this.put(4, (d, at) => d.setUint32(at, v, true));
  }
  i32(v: number): void {
    this.put(4, (d, at) => d.setInt32(at, v, true));
  }
  f64be(v: number): void {
    this.put(8, (d, at) => d.setFloat64(at, v, false));
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

/** Two's complement little-endian bytes of an integer, as LONG1 holds it (shortest form). */
function longBytes(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    const signBit = (out[out.length - 1]! & 0x80) !== 0;
    if ((x === 0n && !signBit) || (x === -1n && signBit)) break;
  }
  return Uint8Array.from(out);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Pickle `value` (see the module comment); `visit` recognises tensors, `renameKey` may rename a dict's
 * string key given its value. Throws TypeError naming the path of anything it cannot write.
 */
export function pickleValue(value: unknown, visit: TensorVisitor, renameKey: (key: string, value: unknown) => string = (k) => k): Uint8Array {
  const w = new ByteWriter();
  const memo = new Map<string, number>();
  const seen = new Set<object>();

  /** A memo opcode with its slot: the one-byte form below 256, else the four-byte one. */
  const memoOp = (short: number, long: number, slot: number): void => {
    if (slot < 256) {
      w.byte(short);
      w.byte(slot);
    } else {
      w.byte(long);
      w.u32(slot);
    }
  };
  const global = (module: string, name: string): void => {
    const id = `${module}\n${name}`;
    const slot = memo.get(id);
    if (slot !== undefined) return memoOp(OP.BINGET, OP.LONG_BINGET, slot);
    w.byte(OP.GLOBAL);
    w.bytes(utf8.encode(`${id}\n`));
    memo.set(id, memo.size);
    memoOp(OP.BINPUT, OP.LONG_BINPUT, memo.get(id)!);
  };
  const int = (v: number | bigint): void => {
    if (typeof v === 'number' && v >= 0 && v < 256) {
      w.byte(OP.BININT1);
      w.byte(v);
    } else if (typeof v === 'number' && v >= 0 && v < 65536) {
      w.byte(OP.BININT2);
      w.u16(v);
    } else if (typeof v === 'number' && v >= -(2 ** 31) && v < 2 ** 31) {
      w.byte(OP.BININT);
      w.i32(v);
    } else {
      const b = longBytes(BigInt(v));
      w.byte(OP.LONG1);
      w.byte(b.length);
      w.bytes(b);
    }
  };
  const str = (s: string): void => {
    const b = utf8.encode(s);
    w.byte(OP.BINUNICODE);
    w.u32(b.length);
    w.bytes(b);
  };
  const tuple = (write: (() => void)[]): void => {
    if (write.length === 0) return w.byte(OP.EMPTY_TUPLE);
    if (write.length > 3) w.byte(OP.MARK);
    for (const f of write) f();
    w.byte(write.length === 1 ? OP.TUPLE1 : write.length === 2 ? OP.TUPLE2 : write.length === 3 ? OP.TUPLE3 : OP.TUPLE);
  };
  const ints = (list: readonly number[]) => tuple(list.map((n) => () => int(n)));

  const tensor = (t: PickledTensor): void => {
    global('torch._utils', '_rebuild_tensor_v2');
    const strides: number[] = new Array(t.shape.length);
    for (let i = t.shape.length - 1, s = 1; i >= 0; i--) {
      strides[i] = s;
      s *= t.shape[i]!;
    }
    w.byte(OP.MARK);
    tuple([() => str('storage'), () => global('torch', t.storageType), () => str(t.key), () => str('cpu'), () => int(t.numel)]);
    w.byte(OP.BINPERSID);
    int(0);
    ints(t.shape);
    ints(strides);
    w.byte(OP.NEWFALSE);
    global('collections', 'OrderedDict');
    w.byte(OP.EMPTY_TUPLE);
    w.byte(OP.REDUCE);
    w.byte(OP.TUPLE);
    w.byte(OP.REDUCE);
  };

  const write = (v: unknown, path: string): void => {
    const t = visit(v, path);
    if (t) return tensor(t);
    if (v === null || v === undefined) return w.byte(OP.NONE);
    if (typeof v === 'boolean') return w.byte(v ? OP.NEWTRUE : OP.NEWFALSE);
    if (typeof v === 'bigint') return int(v);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) return int(v);
      w.byte(OP.BINFLOAT);
      return w.f64be(v);
    }
    if (typeof v === 'string') return str(v);
    if (typeof v !== 'object') throw new TypeError(`${path || 'the value'} is a ${typeof v}; saveTorch writes tensors, numbers, strings, booleans, null, arrays and plain objects`);
    if (seen.has(v)) throw new TypeError(`${path || 'the value'} refers back to itself (a cycle); saveTorch writes trees`);
    seen.add(v);
    try {
      if (Array.isArray(v)) {
        w.byte(OP.EMPTY_LIST);
        for (let i = 0; i < v.length; i += BATCH) {
          w.byte(OP.MARK);
          v.slice(i, i + BATCH).forEach((x, j) => write(x, `${path}[${i + j}]`));
          w.byte(OP.APPENDS);
        }
        return;
      }
      const entries = v instanceof Map ? [...v.entries()] : isPlainObject(v) ? Object.entries(v) : null;
      if (!entries) {
        throw new TypeError(`${path || 'the value'} is a ${(v as object).constructor?.name ?? 'object'}; saveTorch writes tensors, numbers, strings, booleans, null, arrays, Maps and plain objects`);
      }
      w.byte(OP.EMPTY_DICT);
      for (let i = 0; i < entries.length; i += BATCH) {
        w.byte(OP.MARK);
        for (const [k, x] of entries.slice(i, i + BATCH)) {
          if (typeof k !== 'string' && typeof k !== 'number') throw new TypeError(`${path || 'the value'} has a key of type ${typeof k}; expected strings or numbers`);
          const key = typeof k === 'string' ? renameKey(k, x) : k;
          write(key, path);
          write(x, path ? `${path}.${String(key)}` : String(key));
        }
        w.byte(OP.SETITEMS);
      }
    } finally {
      seen.delete(v);
    }
  };

  w.byte(OP.PROTO);
  w.byte(2);
  write(value, '');
  w.byte(OP.STOP);
  return w.result();
}
