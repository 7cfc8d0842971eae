/**
 * A pickle virtual machine that builds data and never runs code: the reader of `data.pkl` inside
 * PyTorch files (protocol 2; the opcodes of protocols 0-5 that describe data are read too).
 *
 * What makes it safe, as PyTorch's `weights_only=True` unpickler: a global (`GLOBAL`,
 * `STACK_GLOBAL`) is looked up through the caller's resolver, which returns a `PyCallable` from its
 * allow-list or throws; `REDUCE`/`NEWOBJ` call only such objects, and `BUILD` applies only to dicts
 * (PyTorch's OrderedDict `_metadata`). Every length in the stream is checked against the bytes that
 * remain before anything is sliced, so a hostile stream cannot make it allocate more than its size.
 *
 * Values: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
 * str -> string, bytes -> Uint8Array, list/tuple/set -> array (tuples frozen), dict -> PyDict
 * (keys in order, any key type; the caller turns them into plain objects).
 */

/** A problem with the stream itself; the file reader puts the file name in front. */
export class PickleError extends Error {
  override name = 'PickleError';
}

/** A Python dict (or OrderedDict) in insertion order. */
export class PyDict {
  readonly entries = new Map<unknown, unknown>();
  /** Attributes set by BUILD (PyTorch's `_metadata` on state dicts); kept, not interpreted. */
  attributes: PyDict | null = null;
  constructor(readonly ordered = false) {}
}

/** Something a resolved global stands for: a function or class the VM may call. */
export interface PyCallable {
  /** `module.name`, for messages. */
  readonly pyName: string;
  /** REDUCE: `callable(*args)`. */
  call(args: readonly unknown[]): unknown;
  /** NEWOBJ: `cls.__new__(cls, *args)`; absent: NEWOBJ on it is refused. */
  newObject?(args: readonly unknown[]): unknown;
}

export function isPyCallable(v: unknown): v is PyCallable {
  return typeof v === 'object' && v !== null && typeof (v as PyCallable).call === 'function' && typeof (v as PyCallable).pyName === 'string';
}

export interface UnpickleOptions {
  /** Return the allowed object for `module.name`, or throw (refusing the file). */
  resolveGlobal(module: string, name: string): PyCallable | unknown;
  /** BINPERSID / PERSID: what a persistent id stands for (PyTorch: a storage). */
  persistentLoad(pid: unknown): unknown;
}

const MARK = Symbol('mark');

const OPNAMES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x92: 'NEWOBJ_EX',
  0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x56: 'UNICODE', 0x53: 'STRING',
};

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v === MARK) return 'a mark';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'a tuple' : 'a list';
  if (v instanceof PyDict) return 'a dict';
  if (isPyCallable(v)) return v.pyName;
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v;
}

/** Run the pickle in `bytes` and return the object it builds. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number, what: string): void => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > bytes.length) {
      throw new PickleError(`the pickle ends inside ${what} at byte ${pos} (${n} bytes needed, ${bytes.length - pos} left): truncated or corrupt`);
    }
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = (what: string) => take(1, what)[0]!;
  const u16 = (what: string) => (need(2, what), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = (what: string) => (need(4, what), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = (what: string) => (need(4, what), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = (what: string): number => {
    need(8, what);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`a length of ${v} bytes in ${what} at byte ${pos - 8}: corrupt`);
    return Number(v);
  };
  const line = (what: string): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError(`the pickle ends inside ${what} at byte ${pos} (no end of line): truncated or corrupt`);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const text = (n: number, what: string): string => {
    const raw = take(n, what);
    try {
      return utf8.decode(raw);
    } catch {
      throw new PickleError(`${what} at byte ${pos - n} is not valid UTF-8`);
    }
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new PickleError(`the pickle pops an empty stack at byte ${pos - 1}: corrupt`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new PickleError(`the pickle reads an empty stack at byte ${pos - 1}: corrupt`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) throw new PickleError(`the pickle closes a mark it never opened at byte ${pos - 1}: corrupt`);
    stack = prev;
    return items;
  };
  const longFromBytes = (raw: Uint8Array): number | bigint => {
    if (raw.length === 0) return 0;
    let v = 0n;
    for (let i = raw.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(raw[i]!);
    if (raw[raw.length - 1]! & 0x80) v -= 1n << BigInt(8 * raw.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const intFromText = (s: string, what: string): number | bigint | boolean => {
    const t = s.trim().replace(/L$/, '');
    if (what === 'INT' && t === '00') return false;
    if (what === 'INT' && t === '01') return true;
    if (!/^[-+]?\d+$/.test(t)) throw new PickleError(`${what} at byte ${pos} holds '${s.slice(0, 40)}', not an integer`);
    const v = BigInt(t);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const memoKey = (i: number, what: string): number => {
    if (!memo.has(i)) throw new PickleError(`${what} at byte ${pos} reads memo slot ${i}, which was never written: corrupt`);
    return i;
  };
  const dictOf = (v: unknown, what: string): PyDict => {
    if (!(v instanceof PyDict)) throw new PickleError(`${what} at byte ${pos - 1} applies to ${describe(v)}, not a dict`);
    return v;
  };
  const listOf = (v: unknown, what: string): unknown[] => {
    if (!Array.isArray(v) || Object.isFrozen(v)) throw new PickleError(`${what} at byte ${pos - 1} applies to ${describe(v)}, not a list`);
    return v;
  };
  const setItems = (d: PyDict, items: unknown[]): void => {
    if (items.length % 2 !== 0) throw new PickleError(`SETITEMS at byte ${pos - 1} has an odd number of items: corrupt`);
    for (let i = 0; i < items.length; i += 2) {
      const k = items[i];
      if (typeof k === 'object' && k !== null && !Object.isFrozen(k)) throw new PickleError(`a dict key at byte ${pos - 1} is ${describe(k)}, which Python cannot hash`);
      d.entries.set(k, items[i + 1]);
    }
  };
  const callable = (v: unknown, what: string): PyCallable => {
    if (!isPyCallable(v)) throw new PickleError(`${what} at byte ${pos - 1} calls ${describe(v)}, which is not an allowed function or class`);
    return v;
  };
  const global = (module: string, name: string): unknown => options.resolveGlobal(module, name);

  for (;;) {
    if (pos >= bytes.length) throw new PickleError(`the pickle ends at byte ${pos} without its STOP opcode: truncated`);
    const op = bytes[pos++]!;
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8('PROTO');
        if (proto > 5) throw new PickleError(`pickle protocol ${proto} is newer than this reader (protocols 0-5)`);
        break;
      }
      case 0x95: // FRAME: a length hint only
        u64('FRAME');
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || metastack.length !== 0) {
          throw new PickleError(`the pickle stops with ${stack.length} values on its stack and ${metastack.length} open marks; expected exactly one value: corrupt`);
        }
        return stack[0];
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x30: // POP
        if (stack.length === 0) popMark();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;

      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32('BININT')); break;
      case 0x4b: stack.push(u8('BININT1')); break;
      case 0x4d: stack.push(u16('BININT2')); break;
      case 0x8a: stack.push(longFromBytes(take(u8('LONG1'), 'LONG1'))); break;
      case 0x8b: {
        const n = i32('LONG4');
        if (n < 0) throw new PickleError(`LONG4 at byte ${pos - 5} has a negative length: corrupt`);
        stack.push(longFromBytes(take(n, 'LONG4')));
        break;
      }
      case 0x49: stack.push(intFromText(line('INT'), 'INT')); break;
      case 0x4c: stack.push(intFromText(line('LONG'), 'LONG')); break;
      case 0x47: // BINFLOAT: big-endian double
        need(8, 'BINFLOAT');
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: { // FLOAT (text)
        const s = line('FLOAT').trim();
        const v = Number(s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : s);
        if (Number.isNaN(v) && s !== 'nan') throw new PickleError(`FLOAT at byte ${pos} holds '${s.slice(0, 40)}', not a number`);
        stack.push(v);
        break;
      }
      case 0x58: stack.push(text(u32('BINUNICODE'), 'BINUNICODE')); break;
      case 0x8c: stack.push(text(u8('SHORT_BINUNICODE'), 'SHORT_BINUNICODE')); break;
      case 0x8d: stack.push(text(u64('BINUNICODE8'), 'BINUNICODE8')); break;
      // Python 2 str: PyTorch files written by Python 2 hold names this way; latin-1 as Python 3 reads them.
      case 0x54: stack.push(latin1.decode(take(i32('BINSTRING'), 'BINSTRING'))); break;
      case 0x55: stack.push(latin1.decode(take(u8('SHORT_BINSTRING'), 'SHORT_BINSTRING'))); break;
      case 0x42: stack.push(take(u32('BINBYTES'), 'BINBYTES').slice()); break;
      case 0x43: stack.push(take(u8('SHORT_BINBYTES'), 'SHORT_BINBYTES').slice()); break;
      case 0x8e: stack.push(take(u64('BINBYTES8'), 'BINBYTES8').slice()); break;
      case 0x96: stack.push(take(u64('BYTEARRAY8'), 'BYTEARRAY8').slice()); break;

      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const d = new PyDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(dictOf(top(), 'SETITEM'), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(dictOf(top(), 'SETITEMS'), items);
        break;
      }
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { // LIST
        const items = popMark(); // before reading `stack`: popMark replaces it
        stack.push(items);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        listOf(top(), 'APPEND').push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = listOf(top(), 'APPENDS');
        for (const x of items) list.push(x);
        break;
      }
      case 0x29: stack.push(Object.freeze([])); break; // EMPTY_TUPLE
      case 0x74: { // TUPLE
        const items = Object.freeze(popMark());
        stack.push(items);
        break;
      }
      case 0x85: stack.push(Object.freeze([pop()])); break; // TUPLE1
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(Object.freeze([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(Object.freeze([pop(), b, c]));
        break;
      }
      case 0x8f: stack.push([]); break; // EMPTY_SET: read as a list
      case 0x90: { // ADDITEMS
        const items = popMark();
        const set = listOf(top(), 'ADDITEMS');
        for (const x of items) set.push(x);
        break;
      }
      case 0x91: { // FROZENSET
        const items = Object.freeze(popMark());
        stack.push(items);
        break;
      }

      case 0x70: memo.set(Number(intFromText(line('PUT'), 'PUT')), top()); break;
      case 0x71: memo.set(u8('BINPUT'), top()); break;
      case 0x72: memo.set(u32('LONG_BINPUT'), top()); break;
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: stack.push(memo.get(memoKey(Number(intFromText(line('GET'), 'GET')), 'GET'))); break;
      case 0x68: stack.push(memo.get(memoKey(u8('BINGET'), 'BINGET'))); break;
      case 0x6a: stack.push(memo.get(memoKey(u32('LONG_BINGET'), 'LONG_BINGET'))); break;

      case 0x63: { // GLOBAL
        const module = line('GLOBAL');
        stack.push(global(module, line('GLOBAL')));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError(`STACK_GLOBAL at byte ${pos - 1} names ${describe(module)}.${describe(name)}, not strings: corrupt`);
        stack.push(global(module, name));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = callable(pop(), 'REDUCE');
        if (!Array.isArray(args)) throw new PickleError(`REDUCE at byte ${pos - 1} calls ${fn.pyName} with ${describe(args)}, not a tuple of arguments`);
        stack.push(fn.call(args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = callable(pop(), 'NEWOBJ');
        if (!cls.newObject) throw new PickleError(`NEWOBJ at byte ${pos - 1} instantiates ${cls.pyName}, which is not an allowed class`);
        if (!Array.isArray(args)) throw new PickleError(`NEWOBJ at byte ${pos - 1} gives ${cls.pyName} ${describe(args)}, not a tuple of arguments`);
        stack.push(cls.newObject(args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = dictOf(top(), 'BUILD');
        if (!(state instanceof PyDict)) throw new PickleError(`BUILD at byte ${pos - 1} sets the state of a dict from ${describe(state)}; only attribute dicts are allowed`);
        obj.attributes = state;
        break;
      }
      case 0x51: stack.push(options.persistentLoad(pop())); break; // BINPERSID
      case 0x50: stack.push(options.persistentLoad(line('PERSID'))); break; // PERSID

      default: {
        const name = OPNAMES[op];
        throw new PickleError(
          name ? `the pickle uses the ${name} opcode at byte ${pos - 1}, which this reader refuses (it does not appear in PyTorch files)`
            : `the pickle holds the unknown opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}: corrupt`,
        );
      }
    }
  }
}
