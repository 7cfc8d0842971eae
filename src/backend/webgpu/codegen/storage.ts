/**
 * How each dtype lives in a GPU buffer and the WGSL that reads and writes it.
 *
 * The bytes of a GPU buffer are exactly the host storage array's (little-endian), so `write` and
 * `read` are plain copies:
 *   float32  array<f32>
 *   float16  array<f16> with shader-f16, else 16-bit halves of array<u32> ('packed')
 *   bfloat16 16-bit halves of array<u32> (WGSL has no bf16 type); converted with bit operations
 *   int32    array<i32>
 *   bool     bytes of array<u32> (0 or 1)
 * float64 has no WGSL type and stays on the host (see docs/webgpu.md).
 * Sub-word elements are written with two atomics on their own bits (atomicAnd then atomicOr), so
 * threads writing neighbouring elements of one word never race.
 *
 * Per binding `bN` the generator emits ld_bN(e) -> f32 (the value), ldr_bN(e) -> u32 (the raw bits),
 * and for writable bindings st_bN(e, v: f32) (rounded once into the format) and str_bN(e, bits: u32).
 */
import type { DType } from '../../../dtype/dtype.js';

export type StorageFormat = 'f32' | 'f16' | 'u16' | 'i32' | 'u8';

export function storageFormat(dtype: DType, nativeF16: boolean): StorageFormat {
  switch (dtype.name) {
    case 'float32':
      return 'f32';
    case 'float16':
      return nativeF16 ? 'f16' : 'u16';
    case 'bfloat16':
      return 'u16';
    case 'int32':
      return 'i32';
    case 'bool':
      return 'u8';
    default:
      throw new Error(`webgpu backend: ${dtype.name} has no GPU storage format`);
  }
}

export interface BindingDecl {
  /** binding number (0 is the meta buffer) */
  readonly index: number;
  readonly dtype: DType;
  readonly writable: boolean;
}

/** WGSL declaration and accessors of one data binding. */
export function bindingCode(b: BindingDecl, nativeF16: boolean): string {
  const fmt = storageFormat(b.dtype, nativeF16);
  const n = `b${b.index}`;
  const access = b.writable ? 'read_write' : 'read';
  const atomic = b.writable && (fmt === 'u16' || fmt === 'u8');
  const elem = fmt === 'f32' ? 'f32' : fmt === 'f16' ? 'f16' : fmt === 'i32' ? 'i32' : atomic ? 'atomic<u32>' : 'u32';
  const lines: string[] = [`@group(0) @binding(${b.index}) var<storage, ${access}> ${n}: array<${elem}>;`];
  const word = (e: string) => (atomic ? `atomicLoad(&${n}[${e}])` : `${n}[${e}]`);
  const isF16 = b.dtype.name === 'float16';
  switch (fmt) {
    case 'f32':
      lines.push(`fn ld_${n}(e: i32) -> f32 { return ${n}[e]; }`);
      lines.push(`fn ldr_${n}(e: i32) -> u32 { return bitcast<u32>(${n}[e]); }`);
      if (b.writable) {
        lines.push(`fn st_${n}(e: i32, v: f32) { ${n}[e] = v; }`);
        lines.push(`fn str_${n}(e: i32, v: u32) { ${n}[e] = bitcast<f32>(v); }`);
      }
      break;
    case 'i32':
      lines.push(`fn ld_${n}(e: i32) -> f32 { return f32(${n}[e]); }`);
      lines.push(`fn ldi_${n}(e: i32) -> i32 { return ${n}[e]; }`);
      lines.push(`fn ldr_${n}(e: i32) -> u32 { return bitcast<u32>(${n}[e]); }`);
      if (b.writable) {
        lines.push(`fn st_${n}(e: i32, v: f32) { ${n}[e] = f32_to_i32(v); }`);
        lines.push(`fn str_${n}(e: i32, v: u32) { ${n}[e] = bitcast<i32>(v); }`);
      }
      break;
    case 'f16':
      lines.push(`fn ldr_${n}(e: i32) -> u32 { return bitcast<u32>(vec2<f16>(${n}[e], 0.0h)) & 0xffffu; }`);
      // hardware widening (exact); NaN quieted as the reference does
      lines.push(`fn ld_${n}(e: i32) -> f32 { let v = f32(${n}[e]); if (is_nan(v)) { return bitcast<f32>(bitcast<u32>(v) | 0x400000u); } return v; }`);
      if (b.writable) {
        lines.push(`fn str_${n}(e: i32, v: u32) { ${n}[e] = bitcast<vec2<f16>>(v & 0xffffu).x; }`);
        lines.push(`fn st_${n}(e: i32, v: f32) { str_${n}(e, f32_to_f16_bits(v)); }`);
      }
      break;
    case 'u16': {
      lines.push(`fn ldr_${n}(e: i32) -> u32 { return (${word('u32(e) >> 1u')} >> ((u32(e) & 1u) * 16u)) & 0xffffu; }`);
      lines.push(`fn ld_${n}(e: i32) -> f32 { return ${isF16 ? 'f16' : 'bf16'}_bits_to_f32(ldr_${n}(e)); }`);
      if (b.writable) {
        lines.push(
          `fn str_${n}(e: i32, v: u32) { let w = u32(e) >> 1u; let sh = (u32(e) & 1u) * 16u; ` +
            `atomicAnd(&${n}[w], ~(0xffffu << sh)); atomicOr(&${n}[w], (v & 0xffffu) << sh); }`,
        );
        lines.push(`fn st_${n}(e: i32, v: f32) { str_${n}(e, ${isF16 ? 'f32_to_f16_bits' : 'f32_to_bf16_bits'}(v)); }`);
      }
      break;
    }
    case 'u8':
      lines.push(`fn ldr_${n}(e: i32) -> u32 { return (${word('u32(e) >> 2u')} >> ((u32(e) & 3u) * 8u)) & 0xffu; }`);
      lines.push(`fn ld_${n}(e: i32) -> f32 { return f32(ldr_${n}(e)); }`);
      if (b.writable) {
        lines.push(
          `fn str_${n}(e: i32, v: u32) { let w = u32(e) >> 2u; let sh = (u32(e) & 3u) * 8u; ` +
            `atomicAnd(&${n}[w], ~(0xffu << sh)); atomicOr(&${n}[w], (v & 0xffu) << sh); }`,
        );
        lines.push(`fn st_${n}(e: i32, v: f32) { str_${n}(e, select(0u, 1u, nonzero(v))); }`);
      }
      break;
  }
  return lines.join('\n');
}
