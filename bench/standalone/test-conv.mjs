// Correctness of the conv2d kernels against float64 loops.
//   node bench/standalone/test-conv.mjs [--threads 2] [--variant simd|relaxed]
import { testPool } from "./harness.mjs";
import { DT, makeTensor, readTensor, readBits, compare, setSeed, rand, randInt, toBits } from "./ref.mjs";
import { geom, writeDesc, refForward, refGradInput, refGradWeight, refGradBias } from "./convref.mjs";

const { pool, threads, variant } = await testPool();
const E = pool.exports;
const base = pool.heap;
const U = 2 ** -24;
let failures = 0, passes = 0, boundary = 0, calls = 0, nondet = 0;
const dn = ["f32", "f16", "bf16"];

function check(name, dt, outT, init, ref, acc, nTerms) {
  const got = readTensor(pool, outT), bits = readBits(pool, outT);
  const r = ref.y.map((v, i) => v + (acc ? init[i] : 0));
  const bound = ref.s.map((v, i) => (nTerms + 3) * U * (v + (acc ? Math.abs(init[i]) : 0)));
  const res = compare(dt, got, bits, r, bound);
  boundary += res.boundary;
  if (res.bad) { failures++; console.log("FAIL", name, JSON.stringify(res)); } else passes++;
}

function runCase(g, { xDt, wDt, yDt, acc = false, useBias = true }) {
  const G = geom(g);
  if (G.OH <= 0 || G.OW <= 0) return;
  pool.reset(base);
  const desc = pool.alloc(64);
  writeDesc(pool, desc, G);
  const scratch = pool.alloc(E.conv2d_scratch_bytes(desc, threads));
  const nx = G.N * G.Cin * G.H * G.W, nw = G.Cout * G.CG * G.KH * G.KW, ny = G.N * G.Cout * G.OH * G.OW;
  const X = makeTensor(pool, xDt, nx), Wt = makeTensor(pool, wDt, nw), B = makeTensor(pool, wDt, G.Cout);
  const Y = makeTensor(pool, yDt, ny), DY = makeTensor(pool, xDt, ny);
  const DX = makeTensor(pool, yDt, nx), DW = makeTensor(pool, yDt, nw), DB = makeTensor(pool, yDt, G.Cout);
  const Y0 = Y.vals.slice(), DX0 = DX.vals.slice(), DW0 = DW.vals.slice(), DB0 = DB.vals.slice();
  const flags = acc ? 4 : 0;
  const name = `${JSON.stringify(g)} ${dn[xDt]}/${dn[wDt]}->${dn[yDt]}${acc ? " acc" : ""}${useBias ? " bias" : ""}`;
  const K = G.CG * G.KH * G.KW;
  // the threads take work from a sync block (dynamic split) or split it statically (sync = 0), alternately;
  // with threads > 1 every result must equal, bit for bit, the same call run as one part
  const run = (label, outT, init, kernel, ...argv) => {
    const sync = calls++ % 2 === 0 ? pool.sync() : 0;
    pool.call(kernel, ...argv, scratch, sync);
    if (threads > 1) {
      const es = outT.dt === 0 ? 4 : 2;
      const got = new Uint8Array(pool.memory.buffer, outT.p, outT.n * es).slice();
      writeBack(outT, init);
      E[kernel](...argv, scratch, 0, 0, 1);
      const one = new Uint8Array(pool.memory.buffer, outT.p, outT.n * es);
      if (!one.every((v, i) => v === got[i])) { nondet++; console.log("NONDETERMINISTIC", label); }
    }
  };
  run("forward " + name, Y, Y0, "conv2d_forward", desc, xDt | (wDt << 4) | (yDt << 8) | (wDt << 12), flags, X.p, Wt.p, useBias ? B.p : 0, Y.p);
  check("forward " + name, yDt, Y, Y0, refForward(G, X.vals, Wt.vals, useBias ? B.vals : null), acc, K + 1);
  run("grad_input " + name, DX, DX0, "conv2d_grad_input", desc, xDt | (wDt << 4) | (yDt << 8), flags, DY.p, Wt.p, DX.p);
  check("grad_input " + name, yDt, DX, DX0, refGradInput(G, DY.vals, Wt.vals), acc, G.OCG * G.KH * G.KW);
  run("grad_weight " + name, DW, DW0, "conv2d_grad_weight", desc, xDt | (xDt << 4) | (yDt << 8), flags, X.p, DY.p, DW.p);
  check("grad_weight " + name, yDt, DW, DW0, refGradWeight(G, X.vals, DY.vals), acc, G.N * G.OH * G.OW);
  pool.call("conv2d_grad_bias", desc, xDt | (yDt << 8), flags, DY.p, DB.p);
  check("grad_bias " + name, yDt, DB, DB0, refGradBias(G, DY.vals), acc, G.N * G.OH * G.OW);
}

/** Restore a tensor's initial values (an accumulating kernel is run again on them). */
function writeBack(T, init) {
  if (T.dt === 0) pool.f32(T.p, T.n).set(init);
  else pool.u16(T.p, T.n).set(init.map((v) => toBits(T.dt, v)));
}

setSeed(7);
const cases = [
  { N: 4, Cin: 3, H: 32, W: 32, Cout: 6, KH: 5, KW: 5 }, // LeNet conv1 (smaller batch)
  { N: 4, Cin: 6, H: 14, W: 14, Cout: 16, KH: 5, KW: 5 }, // LeNet conv2
  { N: 2, Cin: 4, H: 9, W: 11, Cout: 5, KH: 3, KW: 3, ph: 1, pw: 1 },
  { N: 2, Cin: 4, H: 10, W: 9, Cout: 6, KH: 3, KW: 2, sh: 2, sw: 2, ph: 1, pw: 0 },
  { N: 3, Cin: 6, H: 8, W: 8, Cout: 4, KH: 3, KW: 3, dh: 2, dw: 2, ph: 2, pw: 1, groups: 2 },
  { N: 1, Cin: 2, H: 7, W: 13, Cout: 3, KH: 1, KW: 1 },
  { N: 1, Cin: 8, H: 12, W: 12, Cout: 8, KH: 3, KW: 3, ph: 1, pw: 1, groups: 8 }, // depthwise
  { N: 2, Cin: 3, H: 11, W: 10, Cout: 7, KH: 4, KW: 3, sh: 3, sw: 2, ph: 2, pw: 1, dh: 1, dw: 2 },
  { N: 1, Cin: 5, H: 6, W: 6, Cout: 130, KH: 2, KW: 2 }, // Cout > MC
  { N: 1, Cin: 30, H: 9, W: 9, Cout: 9, KH: 3, KW: 3, ph: 1, pw: 1 }, // K = 270 > KC
  { N: 1, Cin: 2, H: 30, W: 40, Cout: 3, KH: 3, KW: 3 }, // cols > NC
  { N: 2, Cin: 2, H: 5, W: 5, Cout: 2, KH: 3, KW: 3, sh: 2, sw: 2, ph: 3, pw: 3 }, // pad > (K-1)d
  { N: 19, Cin: 6, H: 14, W: 14, Cout: 16, KH: 5, KW: 5 }, // grad-weight: 3 chunks of <= 8 images, the last partial
  { N: 11, Cin: 3, H: 12, W: 12, Cout: 6, KH: 5, KW: 5, ph: 2, pw: 2 }, // 6 rows: 3-row panels (forward and grad-input)
  { N: 2, Cin: 5, H: 7, W: 9, Cout: 129, KH: 2, KW: 3, groups: 1 }, // 129 rows: 3-row panels across the 126-row block
  { N: 3, Cin: 9, H: 6, W: 7, Cout: 5, KH: 3, KW: 3, ph: 1, pw: 1 }, // 5 and 9 rows
  { N: 33, Cin: 110, H: 3, W: 3, Cout: 120, KH: 3, KW: 3, ph: 1, pw: 1 }, // grad-weight: chunk sums past the shared region's cap (static only)
];
const dts = [[0, 0, 0], [1, 1, 1], [2, 2, 2], [1, 1, 0]];
for (const c of cases) {
  for (const [xDt, wDt, yDt] of dts) runCase(c, { xDt, wDt, yDt, acc: rand() < 0.3, useBias: rand() < 0.7 });
}
for (let i = 0; i < 12; i++) {
  const groups = randInt(1, 2);
  const c = { N: randInt(1, 3), Cin: groups * randInt(1, 4), H: randInt(3, 13), W: randInt(3, 13), Cout: groups * randInt(1, 5), KH: randInt(1, 4), KW: randInt(1, 4),
    sh: randInt(1, 3), sw: randInt(1, 3), ph: randInt(0, 2), pw: randInt(0, 2), dh: randInt(1, 2), dw: randInt(1, 2), groups };
  const [xDt, wDt, yDt] = dts[randInt(0, 3)];
  runCase(c, { xDt, wDt, yDt, acc: rand() < 0.3, useBias: rand() < 0.7 });
}
console.log(`conv (${variant}, ${threads} threads): ${boundary} 16-bit results within the f32-accumulation bound of a rounding boundary`);
if (threads > 1) {
  console.log(`bitwise identical to the 1-part result: ${nondet ? "NO (" + nondet + " calls)" : "yes, all calls"}`);
  if (nondet) failures++;
}
console.log(`${passes} passed, ${failures} failed`);
await pool.close();
process.exit(failures ? 1 : 0);
