/**
 * The wasm backend's module: its export list. tools/build-wasm.mjs compiles this file with
 * AssemblyScript (--runtime stub --importMemory --sharedMemory --enable simd,threads) into
 * src/backend/wasm/generated/kernels.ts; every export below becomes a kernel the runtime
 * (src/backend/wasm) can call on the main thread or on any worker over the one shared memory.
 *
 * Conventions for kernel files (see assembly/kernels/elementwise.ts for the full list):
 * - arguments are numbers only: byte addresses (usize) into the shared memory, counts and
 *   strides in elements (i32), scalars (f32 / f64); no allocation inside kernels (the runtime
 *   owns the heap, src/backend/wasm/memory.ts; ask it for scratch space), no globals written;
 * - a kernel takes a range of work units (rows, chunks, columns) so the runtime can split one
 *   call across its threads; results must not depend on the split;
 * - a file re-exported with `export *` exports only kernels; shared helpers live in files not
 *   re-exported (kernels/convert16.ts: 16-bit <-> float32 conversions in registers), or the file
 *   is re-exported by name.
 */
export * from './kernels/elementwise';
export * from './kernels/reduce';
export * from './kernels/logical';
export * from './kernels/softmax';
export * from './kernels/unary'; // tanh, sigmoid, leakyRelu and gradients (src/backend/wasm/native_unary.ts)
export * from './kernels/gather';
export * from './kernels/nll'; // the negative log-likelihood's per-target loops (src/backend/wasm/native_nll.ts)
export * from './kernels/optim'; // fused Adam/AdamW (src/backend/wasm/native_optim.ts)
export * from './kernels/attention'; // fused attention (src/backend/wasm/native_attention.ts)
export * from './kernels/math_more'; // gelu, reciprocal, clamp, pow, index_add (src/backend/wasm/native_math.ts)
export * from './kernels/int_arith'; // int32 add / sub (src/backend/wasm/native.ts)
export * from './kernels/adaptive_pool'; // adaptive average pooling (src/backend/wasm/native_pool.ts)
export * from './kernels/layer_norm'; // fused layer norm (src/backend/wasm/native_layer_norm.ts)

// GEMM, convolution and pooling (docs/kernels.md: their ABI). By name: those files also export
// internal helpers that take v128 and must not become module exports. Called from src/backend/wasm/native_linalg.ts.
export { gemm, gemm_scratch_bytes } from './kernels/gemm';
export {
  conv2d_forward, conv2d_grad_input, conv2d_grad_weight, conv2d_grad_bias, conv2d_scratch_bytes,
} from './kernels/conv';
export {
  conv_im2col, conv_col2im, conv_to_channel_major, conv_from_channel_major, conv_round_f32, conv_crop_taps, conv_uncrop_taps, conv_flip_weight, conv_im2col_pixel, conv_pixel_from_channel_major,
} from './kernels/conv_gemm'; // whole-batch convolution GEMMs (src/backend/wasm/native_conv_gemm.ts)
export { lstm_scratch_bytes, lstm_pack, lstm_forward, lstm_backward } from './kernels/lstm'; // fused LSTM layer (src/backend/wasm/native_lstm.ts)
export { bn_stats, bn_train, bn_grad_sums, bn_backward_input } from './kernels/batch_norm'; // fused batch norm (src/backend/wasm/native_batch_norm.ts)
export {
  maxpool2d_forward, maxpool2d_backward, maxpool2d_scratch_bytes, bias_relu_forward, relu_backward,
} from './kernels/pool';

/** Start of the heap the runtime manages: everything below is the module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
