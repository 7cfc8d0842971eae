// LeNet max-pool 2x2 and ReLU, batch 64: time per batch (forward, backward).
//   node bench/standalone/bench-pool.mjs [--threads 1,2] [--dtypes f32,f16,bf16]
import { build, Pool, opt } from "./harness.mjs";
import { DT, makeTensor, setSeed } from "./ref.mjs";

const threadList = opt("threads", "1,2").split(",").map(Number);
const dtypes = opt("dtypes", "f32,f16,bf16").split(",");
const minTime = Number(opt("min-time", "0.3"));
const layers = { pool1: [64, 6, 28, 28], pool2: [64, 16, 10, 10] };
function time(fn) {
  fn();
  let reps = 0, best = Infinity;
  const t0 = performance.now();
  while (performance.now() - t0 < minTime * 1000 || reps < 5) { const t = performance.now(); fn(); best = Math.min(best, performance.now() - t); reps++; }
  return +best.toFixed(4);
}
const wasm = build("simd");
for (const threads of threadList) {
  const pool = await Pool.create(wasm, threads);
  const base = pool.heap;
  for (const dn of dtypes) {
    const dt = DT[dn];
    for (const [layer, [N, C, H, W]] of Object.entries(layers)) {
      pool.reset(base); setSeed(5);
      const desc = pool.alloc(64);
      new Int32Array(pool.memory.buffer, desc, 16).set([N, C, H, W, 2, 2, 2, 2, 0, 0]);
      const scratch = pool.alloc(pool.exports.maxpool2d_scratch_bytes(desc) * threads);
      const n = N * C * H * W, no = N * C * (H / 2) * (W / 2);
      const X = makeTensor(pool, dt, n), Y = makeTensor(pool, dt, no), DY = makeTensor(pool, dt, no), DX = makeTensor(pool, dt, n), R = makeTensor(pool, dt, n);
      const d = dt | (dt << 4) | (dt << 8);
      console.log(JSON.stringify({ impl: "mixprec-as", threads, dtype: dn, layer, input: [N, C, H, W],
        relu_forward_ms: time(() => pool.call("bias_relu_forward", d, N * C, C, H * W, X.p, 0, R.p)),
        maxpool_forward_ms: time(() => pool.call("maxpool2d_forward", desc, d, R.p, Y.p)),
        maxpool_backward_ms: time(() => pool.call("maxpool2d_backward", desc, d, 0, R.p, DY.p, DX.p, scratch)),
        relu_backward_ms: time(() => pool.call("relu_backward", d, 0, n, R.p, DX.p, DX.p)),
      }));
    }
  }
  await pool.close();
}
process.exit(0);
