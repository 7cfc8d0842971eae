// LeNet convolution layers, batch 64: time per batch of forward / grad-input /
// grad-weight / grad-bias with the AssemblyScript kernels.
//   node bench/standalone/bench-conv.mjs [--threads 1,2] [--dtypes f32,f16,bf16] [--variant simd|relaxed] [--min-time 0.5]
import { build, Pool, relaxedSimdSupported, opt } from "./harness.mjs";
import { DT, makeTensor, setSeed } from "./ref.mjs";
import { geom, writeDesc } from "./convref.mjs";

const threadList = opt("threads", "1,2").split(",").map(Number);
const dtypes = opt("dtypes", "f32,f16,bf16").split(",");
const variant = opt("variant", "simd");
const minTime = Number(opt("min-time", "0.5"));
if (variant === "relaxed" && !relaxedSimdSupported()) { console.error("relaxed SIMD unsupported"); process.exit(2); }
const layers = {
  conv1: { N: 64, Cin: 3, H: 32, W: 32, Cout: 6, KH: 5, KW: 5 },
  conv2: { N: 64, Cin: 6, H: 14, W: 14, Cout: 16, KH: 5, KW: 5 },
};
const wasm = build(variant);
function time(fn) {
  fn();
  let reps = 0, best = Infinity;
  const t0 = performance.now();
  while (performance.now() - t0 < minTime * 1000 || reps < 5) {
    const t = performance.now(); fn(); best = Math.min(best, performance.now() - t); reps++;
  }
  return { best, mean: (performance.now() - t0) / reps, reps };
}
for (const threads of threadList) {
  const pool = await Pool.create(wasm, threads);
  const base = pool.heap;
  for (const dn of dtypes) {
    const dt = DT[dn];
    for (const [layer, g] of Object.entries(layers)) {
      pool.reset(base);
      setSeed(3);
      const G = geom(g);
      const desc = pool.alloc(64); writeDesc(pool, desc, G);
      const scratch = pool.alloc(pool.exports.conv2d_scratch_bytes(desc, threads));
      const nx = G.N * G.Cin * G.H * G.W, nw = G.Cout * G.CG * G.KH * G.KW, ny = G.N * G.Cout * G.OH * G.OW;
      const X = makeTensor(pool, dt, nx), W = makeTensor(pool, dt, nw), B = makeTensor(pool, dt, G.Cout);
      const Y = makeTensor(pool, dt, ny), DY = makeTensor(pool, dt, ny), DX = makeTensor(pool, dt, nx), DW = makeTensor(pool, dt, nw), DB = makeTensor(pool, dt, G.Cout);
      const d3 = dt | (dt << 4) | (dt << 8) | (dt << 12);
      const flop = 2 * G.N * G.Cout * G.OH * G.OW * G.CG * G.KH * G.KW;
      const ops = {
        forward: () => pool.call("conv2d_forward", desc, d3, 0, X.p, W.p, B.p, Y.p, scratch, pool.sync()),
        grad_input: () => pool.call("conv2d_grad_input", desc, d3, 0, DY.p, W.p, DX.p, scratch, pool.sync()),
        grad_weight: () => pool.call("conv2d_grad_weight", desc, d3, 0, X.p, DY.p, DW.p, scratch, pool.sync()),
        grad_bias: () => pool.call("conv2d_grad_bias", desc, d3, 0, DY.p, DB.p),
      };
      const row = { impl: "mixprec-as", variant, threads, dtype: dn, layer, batch: G.N, shape: `${G.Cin}->${G.Cout} k${G.KH} ${G.H}x${G.W}` };
      let totBest = 0;
      for (const [name, fn] of Object.entries(ops)) {
        const r = time(fn);
        row[`${name}_ms`] = +r.best.toFixed(3);
        if (name !== "grad_bias") row[`${name}_gflops`] = +(flop / r.best / 1e6).toFixed(1);
        totBest += r.best;
      }
      row.total_ms = +totBest.toFixed(3);
      console.log(JSON.stringify(row));
    }
  }
  await pool.close();
}
process.exit(0);
