/**
 * The collectives of torch.distributed, in camelCase, on the default group. Each returns a promise
 * and runs on the group's Gloo thread: the tensor's values are copied to the host, reduced or
 * exchanged there, and written back in place (any backend; WebGPU tensors are read asynchronously).
 * Every rank must call the same collectives in the same order.
 *
 * dtypes: float32, float16, bfloat16, float64, int32. 16-bit tensors travel as 16 bits; each
 * reduction step widens to float32, combines and rounds once (Gloo has no bfloat16; see
 * native/src/reduce.h), so with two ranks the result is the exactly rounded sum.
 */
import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/mode.js';
import type { StorageArray } from '../dtype/dtype.js';
import type { NativeArray } from './native.js';
import { defaultGroup } from './process_group.js';

export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';
const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];
const DTYPES = ['float32', 'float16', 'bfloat16', 'float64', 'int32'];

export interface ReduceOptions {
  /** Default 'sum'. 'avg' divides the sum by the world size (floating tensors only). */
  op?: ReduceOp;
}

function checkTensor(caller: string, t: Tensor): void {
  if (!(t instanceof Tensor)) throw new TypeError(`mx.distributed.${caller}: expected a Tensor, got ${typeof t}`);
  if (!DTYPES.includes(t.dtype)) throw new TypeError(`mx.distributed.${caller}: ${t.dtype} tensors are not supported (${DTYPES.join(', ')})`);
}

function checkOp(caller: string, op: string): ReduceOp {
  if (!REDUCE_OPS.includes(op as ReduceOp)) throw new TypeError(`mx.distributed.${caller}: unknown op '${op}' (${REDUCE_OPS.join(', ')})`);
  return op as ReduceOp;
}

function shapeOf(t: Tensor): string {
  return `[${t.shape.join(', ')}] ${t.dtype}`;
}

/**
 * The tensor's values in storage format, in an array of their own: storageData gathers the view
 * into a fresh array (never a view of device memory, which the Gloo thread must not touch).
 */
async function hostCopy(t: Tensor): Promise<StorageArray> {
  return t.storageData();
}

/** Write storage-format values back into `t` (in place, no autograd). */
function writeBack(t: Tensor, values: StorageArray, shape: readonly number[] = t.shape): void {
  t.assertAlive('mx.distributed');
  if (t.isContiguous && t.offset === 0 && t.numel === t.storage.size) {
    // the tensor is its whole storage: one copy into it, no temporary tensor
    t.backend.write(t.storage.buffer, values);
    return;
  }
  const src = Tensor.fromStorage(values, shape, t.dt, {}, t.backend);
  noGrad(() => t.copy_(src));
  src.dispose();
}

/** Reduce `t` over all ranks, in place (torch.distributed.all_reduce). */
export async function allReduce(t: Tensor, options: ReduceOptions = {}): Promise<void> {
  const group = defaultGroup('allReduce');
  checkTensor('allReduce', t);
  const op = checkOp('allReduce', options.op ?? 'sum');
  if (op === 'avg' && t.dtype === 'int32') throw new TypeError(`mx.distributed.allReduce: op 'avg' needs a floating tensor, got int32 (use 'sum')`);
  const values = await hostCopy(t);
  await group.native.allReduce(values as NativeArray, t.dtype, op);
  writeBack(t, values);
}

/** Copy rank `src`'s `t` into `t` on every rank (torch.distributed.broadcast). */
export async function broadcast(t: Tensor, src: number): Promise<void> {
  const group = defaultGroup('broadcast');
  checkTensor('broadcast', t);
  if (!Number.isInteger(src) || src < 0 || src >= group.worldSize) throw new RangeError(`mx.distributed.broadcast: src ${src} is not a rank in [0, ${group.worldSize})`);
  const values = await hostCopy(t);
  await group.native.broadcast(values as NativeArray, src);
  if (group.rank !== src) writeBack(t, values);
}

/** Every rank's `t`, in rank order, into `tensorList` (torch.distributed.all_gather). */
export async function allGather(tensorList: Tensor[], t: Tensor): Promise<void> {
  const group = defaultGroup('allGather');
  checkTensor('allGather', t);
  if (!Array.isArray(tensorList) || tensorList.length !== group.worldSize) {
    throw new RangeError(`mx.distributed.allGather: tensorList must hold worldSize (${group.worldSize}) tensors, got ${Array.isArray(tensorList) ? tensorList.length : typeof tensorList}`);
  }
  tensorList.forEach((out, i) => {
    if (!(out instanceof Tensor) || out.dtype !== t.dtype || out.numel !== t.numel) {
      throw new TypeError(`mx.distributed.allGather: tensorList[${i}] is ${out instanceof Tensor ? shapeOf(out) : typeof out}, expected ${t.numel} elements of ${t.dtype} like the input ${shapeOf(t)}`);
    }
  });
  const input = await hostCopy(t);
  const output = new t.dt.storage(t.numel * group.worldSize);
  await group.native.allGather(input as NativeArray, output as NativeArray);
  tensorList.forEach((out, i) => writeBack(out, output.slice(i * t.numel, (i + 1) * t.numel), out.shape));
}

/**
 * Reduce `inputList` (worldSize tensors shaped like `output`, or one tensor of worldSize times
 * output's elements) over all ranks and give rank r the r-th block in `output`
 * (torch.distributed.reduce_scatter / reduce_scatter_tensor), with Gloo's halving-doubling
 * reduce-scatter.
 */
export async function reduceScatter(output: Tensor, inputList: Tensor[] | Tensor, options: ReduceOptions = {}): Promise<void> {
  const group = defaultGroup('reduceScatter');
  checkTensor('reduceScatter', output);
  const op = checkOp('reduceScatter', options.op ?? 'sum');
  if (op === 'avg' && output.dtype === 'int32') throw new TypeError(`mx.distributed.reduceScatter: op 'avg' needs a floating tensor, got int32 (use 'sum')`);
  const n = output.numel;
  const world = group.worldSize;
  const data = new output.dt.storage(n * world);
  if (Array.isArray(inputList)) {
    if (inputList.length !== world) throw new RangeError(`mx.distributed.reduceScatter: inputList must hold worldSize (${world}) tensors, got ${inputList.length}`);
    for (let i = 0; i < world; i++) {
      const input = inputList[i]!;
      if (!(input instanceof Tensor) || input.dtype !== output.dtype || input.numel !== n) {
        throw new TypeError(`mx.distributed.reduceScatter: inputList[${i}] is ${input instanceof Tensor ? shapeOf(input) : typeof input}, expected ${n} elements of ${output.dtype} like the output ${shapeOf(output)}`);
      }
      data.set(await hostCopy(input) as never, i * n);
    }
  } else {
    if (!(inputList instanceof Tensor) || inputList.dtype !== output.dtype || inputList.numel !== n * world) {
      throw new TypeError(`mx.distributed.reduceScatter: the input is ${inputList instanceof Tensor ? shapeOf(inputList) : typeof inputList}, expected worldSize x ${n} = ${n * world} elements of ${output.dtype}`);
    }
    data.set(await hostCopy(inputList) as never);
  }
  await group.native.reduceScatter(data as NativeArray, output.dtype, op);
  writeBack(output, data.slice(0, n));
}

/** Wait until every rank has reached this barrier (torch.distributed.barrier). */
export async function barrier(): Promise<void> {
  await defaultGroup('barrier').native.barrier();
}
