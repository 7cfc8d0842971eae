/**
 * The GEMM template of matmul.ts on the adapter's matrix units (Dawn's
 * `chromium-experimental-subgroup-matrix`: tensor cores on NVIDIA, simdgroup matrices on Apple,
 * XMX on Intel; cooperative matrices in lavapipe, which is how CI-less machines test it).
 *
 * Used when every operand the GEMM reads is float16 (what autocast feeds matmul and convolutions)
 * and the adapter offers an f16 x f16 -> f32 configuration: the products are exact in float32 and
 * accumulate in float32, and each output is rounded once by the same storeC as the tiled path, so
 * the numerics are those of matmul.ts up to the order of the float32 sums.
 *
 * A workgroup of 4 subgroups computes a (4·M0)x(4·N0) output tile (M0, N0, K0: the configuration);
 * each subgroup owns a 2x2 block of M0xN0 result matrices. Per K step of TK the workgroup stages A
 * and B in workgroup memory as f16 through the kernel's loadA/loadB (im2col happens there, as in the
 * tiled path), then each subgroup loads its left/right matrices from it and multiplies. Results go
 * through a small f32 scratch in workgroup memory to storeC (or to the split-K partials).
 */
import type { SubgroupMatrixShape } from '../device.js';

/** Subgroups per workgroup (2x2) and result matrices per subgroup (2x2). */
const SUBGROUPS = 4;
const PER_SUBGROUP = 2;

export interface MatrixTile {
  /** output rows and columns per workgroup */
  TM: number;
  TN: number;
  /** K per staging step */
  TK: number;
  /** invocations per workgroup */
  threads: number;
}

export function matrixTile(shape: SubgroupMatrixShape): MatrixTile {
  return {
    TM: 2 * PER_SUBGROUP * shape.M,
    TN: 2 * PER_SUBGROUP * shape.N,
    TK: Math.ceil(32 / shape.K) * shape.K,
    threads: SUBGROUPS * shape.subgroupSize,
  };
}

/** WGSL of the kernel. `funcs` defines loadA/loadB/storeC; `store` writes `v` at (z, m, n) (or to the split-K partials). */
export function subgroupGemmCode(funcs: string, store: string, shape: SubgroupMatrixShape): string {
  const { M: M0, N: N0, K: K0 } = shape;
  const { TM, TN, TK, threads } = matrixTile(shape);
  const left = `subgroup_matrix_left<f16, ${K0}, ${M0}>`;
  const right = `subgroup_matrix_right<f16, ${N0}, ${K0}>`;
  const result = `subgroup_matrix_result<f32, ${N0}, ${M0}>`;
  const accs = [0, 1, 2, 3];
  const cells = SUBGROUPS * M0 * N0;
  return `enable chromium_experimental_subgroup_matrix;
enable subgroups;
${funcs}
var<workgroup> As: array<f16, ${TM * TK}>;
var<workgroup> Bs: array<f16, ${TK * TN}>;
var<workgroup> Cs: array<f32, ${cells}>;
@compute @workgroup_size(${threads}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lix: u32, @builtin(subgroup_id) sg: u32) {
  let M = mi(0u); let N = mi(1u); let K = mi(2u); let splits = mi(4u); let chunk = mi(5u);
  let zs = i32(wid.z);
  let z = zs / splits;
  let sp = zs % splits;
  let m0 = i32(wid.y) * ${TM};
  let n0 = i32(wid.x) * ${TN};
  let tid = i32(lix);
  let rowBase = (sg / 2u) * ${PER_SUBGROUP * M0}u;
  let colBase = (sg % 2u) * ${PER_SUBGROUP * N0}u;
  let kBegin = sp * chunk;
  let kEnd = min(K, kBegin + chunk);
${accs.map((a) => `  var acc${a} = ${result}();`).join('\n')}
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${TK}) {
    for (var e = tid; e < ${TM * TK}; e = e + ${threads}) {
      let m = m0 + e / ${TK};
      let k = k0 + e % ${TK};
      var v = 0.0;
      if (m < M && k < kEnd) { v = loadA(z, m, k); }
      As[e] = f16(v);
    }
    for (var e = tid; e < ${TK * TN}; e = e + ${threads}) {
      let n = n0 + e % ${TN};
      let k = k0 + e / ${TN};
      var v = 0.0;
      if (n < N && k < kEnd) { v = loadB(z, k, n); }
      Bs[e] = f16(v);
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk = kk + ${K0}u) {
      let a0 = subgroupMatrixLoad<${left}, row_major>(&As, rowBase * ${TK}u + kk, ${TK}u);
      let a1 = subgroupMatrixLoad<${left}, row_major>(&As, (rowBase + ${M0}u) * ${TK}u + kk, ${TK}u);
      let b0 = subgroupMatrixLoad<${right}, row_major>(&Bs, kk * ${TN}u + colBase, ${TN}u);
      let b1 = subgroupMatrixLoad<${right}, row_major>(&Bs, kk * ${TN}u + colBase + ${N0}u, ${TN}u);
      acc0 = subgroupMatrixMultiplyAccumulate(a0, b0, acc0);
      acc1 = subgroupMatrixMultiplyAccumulate(a0, b1, acc1);
      acc2 = subgroupMatrixMultiplyAccumulate(a1, b0, acc2);
      acc3 = subgroupMatrixMultiplyAccumulate(a1, b1, acc3);
    }
    workgroupBarrier();
  }
${accs
  .map(
    (a) => `  subgroupMatrixStore<row_major>(&Cs, sg * ${M0 * N0}u, acc${a}, ${N0}u);
  workgroupBarrier();
  for (var e = tid; e < ${cells}; e = e + ${threads}) {
    let s = u32(e) / ${M0 * N0}u;
    let r = u32(e) % ${M0 * N0}u;
    let m = m0 + i32((s / 2u) * ${PER_SUBGROUP * M0}u + ${(a >> 1) * M0}u + r / ${N0}u);
    let n = n0 + i32((s % 2u) * ${PER_SUBGROUP * N0}u + ${(a & 1) * N0}u + r % ${N0}u);
    if (m < M && n < N) {
      let v = Cs[e];
      ${store}
    }
  }
  workgroupBarrier();`,
  )
  .join('\n')}
}
`;
}
