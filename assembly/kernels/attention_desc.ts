/**
 * Reading the fused attention's descriptor block (layout: attention.ts's header) and addressing
 * its operands; shared by attention.ts and attention_tiles.ts. Module-internal (all @inline).
 */
import { F32 } from './convert16';

/** Word i of the descriptor (int32). */
// @ts-ignore: decorator
@inline export function word(desc: usize, i: i32): i32 {
  return load<i32>(desc + (<usize>i << 2));
}

/** Word i of the descriptor as float32 bits. */
// @ts-ignore: decorator
@inline export function wordF(desc: usize, i: i32): f32 {
  return load<f32>(desc + (<usize>i << 2));
}

/** Element offset of batch b's first row in the operand whose strides start at desc word w. */
// @ts-ignore: decorator
@inline export function batchBase(desc: usize, w: i32, b: i32): i32 {
  const B2 = word(desc, 4);
  return (b / B2) * word(desc, w) + (b % B2) * word(desc, w + 1);
}

/** Address of element i of an array of `fmt` at p. */
// @ts-ignore: decorator
@inline export function elem(fmt: i32, p: usize, i: i32): usize {
  return p + (<usize>i << (fmt == F32 ? 2 : 1));
}
