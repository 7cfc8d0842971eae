/**
 * Scalar formulas that the optimizer kernels' contract fixes (src/backend/kernels.ts), shared by
 * the optimizers that compute them on the host (src/optim) and the backends' kernels that compute
 * them from a device `step` input, so both give the same bits.
 */

/** Adam's bias corrections 1 - beta1^step and sqrt(1 - beta2^step), in float64. */
export function adamBiasCorrections(beta1: number, beta2: number, step: number): [number, number] {
  return [1 - beta1 ** step, Math.sqrt(1 - beta2 ** step)];
}
