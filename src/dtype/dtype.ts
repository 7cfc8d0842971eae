/**
 * Dtypes as small immutable values: name, bit width, kind, storage array and limits.
 * Promotion follows PyTorch's result_type (see `promoteTypes`).
 */

export type DTypeName = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int32' | 'bool';
export type DTypeKind = 'bool' | 'int' | 'float';

/** Typed arrays that hold a tensor's storage: 16-bit floats are raw bit patterns in a Uint16Array. */
export type StorageArray = Float32Array | Float64Array | Uint16Array | Int32Array | Uint8Array;
type StorageCtor = { new (n: number): StorageArray; BYTES_PER_ELEMENT: number };

export interface FInfo {
  bits: number;
  max: number;
  min: number;
  eps: number;
  /** Smallest positive normal number (PyTorch's `tiny`, also `smallestNormal`). */
  tiny: number;
  smallestNormal: number;
  smallestSubnormal: number;
  /** Approximate decimal resolution, 10^-floor(digits). */
  resolution: number;
}

export class DType {
  constructor(
    readonly name: DTypeName,
    readonly bits: number,
    readonly kind: DTypeKind,
    /** Order within the kind, used by promotion. float16 and bfloat16 share a rank. */
    readonly rank: number,
    readonly storage: StorageCtor,
    readonly finfo: FInfo | null,
  ) {}

  get itemsize(): number {
    return this.bits / 8;
  }
  get isFloating(): boolean {
    return this.kind === 'float';
  }
  /** float16 or bfloat16: stored as 16 bits, computed in float32. */
  get isHalf(): boolean {
    return this.kind === 'float' && this.bits === 16;
  }
  toString(): string {
    return this.name;
  }
}

function finfo(bits: number, mantBits: number, maxExp: number, minExp: number, digits: number): FInfo {
  const max = (2 - 2 ** -mantBits) * 2 ** maxExp;
  return {
    bits,
    max,
    min: -max,
    eps: 2 ** -mantBits,
    tiny: 2 ** minExp,
    smallestNormal: 2 ** minExp,
    smallestSubnormal: 2 ** (minExp - mantBits),
    resolution: 10 ** -digits,
  };
}

export const float32 = new DType('float32', 32, 'float', 2, Float32Array, finfo(32, 23, 127, -126, 6));
export const float16 = new DType('float16', 16, 'float', 1, Uint16Array, finfo(16, 10, 15, -14, 3));
export const bfloat16 = new DType('bfloat16', 16, 'float', 1, Uint16Array, finfo(16, 7, 127, -126, 2));
export const float64 = new DType('float64', 64, 'float', 3, Float64Array, finfo(64, 52, 1023, -1022, 15));
export const int32 = new DType('int32', 32, 'int', 1, Int32Array, null);
export const bool = new DType('bool', 8, 'bool', 0, Uint8Array, null);

const byName: Record<DTypeName, DType> = { float32, float16, bfloat16, float64, int32, bool };
export const ALL_DTYPES: readonly DType[] = [float32, float16, bfloat16, float64, int32, bool];

export function dtypeOf(dtype: DTypeName | DType): DType {
  if (dtype instanceof DType) return dtype;
  const found = byName[dtype as DTypeName];
  if (!found) throw new TypeError(`unknown dtype '${String(dtype)}': expected one of ${Object.keys(byName).join(', ')}`);
  return found;
}

export function finfoOf(dtype: DTypeName | DType): FInfo {
  const d = dtypeOf(dtype);
  if (!d.finfo) throw new TypeError(`finfo: ${d.name} is not a floating dtype`);
  return { ...d.finfo };
}

const KIND_ORDER: Record<DTypeKind, number> = { bool: 0, int: 1, float: 2 };

/** PyTorch's promote_types for two tensor dtypes. float16 with bfloat16 gives float32. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === b) return a;
  const ka = KIND_ORDER[a.kind];
  const kb = KIND_ORDER[b.kind];
  if (ka !== kb) return ka > kb ? a : b;
  if (a.rank !== b.rank) return a.rank > b.rank ? a : b;
  return float32; // the two 16-bit floats meet at float32
}

/** What promotion reads of an operand: a Tensor, or anything shaped like one. */
export interface PromotionOperand {
  readonly dt: DType;
  readonly ndim: number;
  /** A JS number wrapped as a 0-d tensor: it only matters when its kind is higher. */
  readonly wrappedNumber: boolean;
}

const DEFAULT_OF_KIND: Record<DTypeKind, DType> = { bool, int: int32, float: float32 };

/**
 * PyTorch's result_type: dimensioned tensors take precedence over 0-d tensors, which take precedence
 * over wrapped JS numbers; a lower-priority operand only matters when its kind (bool < int < float) is higher.
 */
export function resultType(xs: readonly PromotionOperand[]): DType {
  let dims: DType | null = null;
  let zeros: DType | null = null;
  let wrappedKind: DTypeKind | null = null;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    if (x.wrappedNumber) {
      if (wrappedKind === null || KIND_ORDER[x.dt.kind] > KIND_ORDER[wrappedKind]) wrappedKind = x.dt.kind;
    } else if (x.ndim === 0) zeros = zeros ? promoteTypes(zeros, x.dt) : x.dt;
    else dims = dims ? promoteTypes(dims, x.dt) : x.dt;
  }
  let r = dims;
  if (zeros && (!r || KIND_ORDER[zeros.kind] > KIND_ORDER[r.kind])) r = r && zeros.kind === r.kind ? promoteTypes(r, zeros) : zeros;
  if (wrappedKind && (!r || KIND_ORDER[wrappedKind] > KIND_ORDER[r.kind])) r = DEFAULT_OF_KIND[wrappedKind];
  return r ?? float32;
}

/** Default dtype of floating results computed from integer or bool inputs (PyTorch's default dtype). */
export const DEFAULT_FLOAT = float32;
