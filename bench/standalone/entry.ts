// Standalone build entry for the kernel benchmarks/tests. The runtime's
// assembly/index.ts should re-export the same public names (only these: the
// kernels' internal helpers take/return v128 and must not become exports).
export { gemm, gemm_scratch_bytes } from "../../assembly/kernels/gemm";
export {
  conv2d_forward, conv2d_grad_input, conv2d_grad_weight, conv2d_grad_bias, conv2d_scratch_bytes,
} from "../../assembly/kernels/conv";
export {
  maxpool2d_forward, maxpool2d_backward, maxpool2d_scratch_bytes, bias_relu_forward, relu_backward,
} from "../../assembly/kernels/pool";
