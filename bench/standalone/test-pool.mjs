// Correctness of max-pool forward/backward, bias+ReLU and ReLU backward vs plain JS.
//   node bench/standalone/test-pool.mjs [--threads 2]
import { build, Pool, opt } from "./harness.mjs";
import { DT, makeTensor, readTensor, readBits, toBits, setSeed, rand, randInt } from "./ref.mjs";

const threads = Number(opt("threads", "2"));
const pool = await Pool.create(build("simd"), threads);
const E = pool.exports;
const base = pool.heap;
let failures = 0, passes = 0;
const dn = ["f32", "f16", "bf16"];

/** exact comparison: f32 results bitwise (±0 equal), 16-bit results = once-rounded reference */
function expectEq(name, t, ref) {
  const got = readTensor(pool, t), bits = readBits(pool, t);
  let bad = 0, first = null;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    const ok = Number.isNaN(r) ? Number.isNaN(got[i]) : t.dt === DT.f32 ? got[i] === Math.fround(r) : bits[i] === toBits(t.dt, r) || (r === 0 && got[i] === 0);
    if (!ok) { bad++; first ??= { i, got: got[i], ref: r }; }
  }
  if (bad) { failures++; console.log("FAIL", name, bad, JSON.stringify(first)); } else passes++;
}

function poolCase(g, xDt, yDt, acc, special) {
  pool.reset(base);
  const { N, C, H, W, KH, KW, sh, sw, ph, pw } = g;
  const OH = Math.floor((H + 2 * ph - KH) / sh) + 1, OW = Math.floor((W + 2 * pw - KW) / sw) + 1;
  const desc = pool.alloc(64);
  new Int32Array(pool.memory.buffer, desc, 16).set([N, C, H, W, KH, KW, sh, sw, ph, pw]);
  const scratch = pool.alloc(E.maxpool2d_scratch_bytes(desc) * threads);
  // many ties (small integer grid), some NaN / Inf when `special`
  const gen = () => { const u = rand(); if (special && u < 0.03) return NaN; if (special && u < 0.05) return -Infinity; if (u > 0.95) return -0; return randInt(-4, 4) / 4; };
  const X = makeTensor(pool, xDt, N * C * H * W, gen);
  const Y = makeTensor(pool, yDt, N * C * OH * OW), DY = makeTensor(pool, xDt, N * C * OH * OW), DX = makeTensor(pool, yDt, N * C * H * W);
  const DX0 = DX.vals.slice();
  pool.call("maxpool2d_forward", desc, xDt | (yDt << 8), X.p, Y.p);
  pool.call("maxpool2d_backward", desc, xDt | (xDt << 4) | (yDt << 8), acc ? 4 : 0, X.p, DY.p, DX.p, scratch);
  const yr = new Float64Array(Y.n), dxr = new Float64Array(DX.n);
  for (let pl = 0; pl < N * C; pl++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    let m = -Infinity, bi = -1;
    for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const ih = oh * sh - ph + kh, iw = ow * sw - pw + kw;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      const v = X.vals[(pl * H + ih) * W + iw];
      // the reference backend's rule: the first maximum, a NaN beating any number (the first NaN)
      if (bi < 0 || v > m || (Number.isNaN(v) && !Number.isNaN(m))) { m = v; bi = (pl * H + ih) * W + iw; }
    }
    yr[(pl * OH + oh) * OW + ow] = m;
    if (bi >= 0) dxr[bi] += DY.vals[(pl * OH + oh) * OW + ow]; // float64 in scan order (the reference backend's), rounded once
  }
  if (acc) for (let i = 0; i < dxr.length; i++) dxr[i] += DX0[i];
  const name = `${JSON.stringify(g)} ${dn[xDt]}->${dn[yDt]}${acc ? " acc" : ""}${special ? " nan/inf" : ""}`;
  expectEq("maxpool fwd " + name, Y, yr);
  expectEq("maxpool bwd " + name, DX, dxr);
}

setSeed(11);
const geoms = [
  { N: 3, C: 6, H: 28, W: 28, KH: 2, KW: 2, sh: 2, sw: 2, ph: 0, pw: 0 },
  { N: 2, C: 3, H: 13, W: 11, KH: 2, KW: 2, sh: 2, sw: 2, ph: 0, pw: 0 },
  { N: 2, C: 2, H: 9, W: 10, KH: 3, KW: 3, sh: 2, sw: 2, ph: 1, pw: 1 },
  { N: 1, C: 3, H: 7, W: 8, KH: 3, KW: 2, sh: 1, sw: 2, ph: 1, pw: 0 },
  { N: 2, C: 2, H: 36, W: 37, KH: 2, KW: 2, sh: 2, sw: 2, ph: 0, pw: 0 },
  // 2x2 / stride 2 row widths around the SIMD steps (4 f32 / 8 16-bit windows, overlapping tails)
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 14, 15, 16, 17, 23].map((OW) => ({ N: 1, C: 5, H: 2 * (OW % 4) + 3, W: 2 * OW + (OW & 1), KH: 2, KW: 2, sh: 2, sw: 2, ph: 0, pw: 0 })),
  { N: 4, C: 16, H: 10, W: 10, KH: 2, KW: 2, sh: 2, sw: 2, ph: 0, pw: 0 },
  { N: 1, C: 3, H: 1, W: 9, KH: 2, KW: 2, sh: 2, sw: 2, ph: 0, pw: 0 },
];
for (const g of geoms) for (const [xDt, yDt] of [[0, 0], [1, 1], [2, 2], [1, 0]]) for (const special of [false, true]) for (const acc of [false, true]) poolCase(g, xDt, yDt, acc, special);

// bias + relu, relu backward
for (const [xDt, yDt] of [[0, 0], [1, 1], [2, 2], [0, 1]]) {
  pool.reset(base);
  const rows = 24, C = 6, hw = 37;
  const gen = () => { const u = rand(); return u < 0.02 ? NaN : u < 0.04 ? -0 : rand() * 2 - 1; };
  const X = makeTensor(pool, xDt, rows * hw, gen), B = makeTensor(pool, xDt, C), Y = makeTensor(pool, yDt, rows * hw);
  pool.call("bias_relu_forward", xDt | (xDt << 4) | (yDt << 8), rows, C, hw, X.p, B.p, Y.p);
  const yr = new Float64Array(Y.n);
  for (let r = 0; r < rows; r++) for (let j = 0; j < hw; j++) {
    const v = Math.fround(X.vals[r * hw + j] + B.vals[r % C]);
    yr[r * hw + j] = Number.isNaN(v) ? NaN : v > 0 ? v : 0;
  }
  expectEq(`bias_relu ${dn[xDt]}->${dn[yDt]}`, Y, yr);
  const DY = makeTensor(pool, xDt, rows * hw), DX = makeTensor(pool, yDt, rows * hw);
  const DX0 = DX.vals.slice();
  pool.call("relu_backward", xDt | (xDt << 4) | (yDt << 8), 4, rows * hw, X.p, DY.p, DX.p);
  const dr = X.vals.map((y, i) => (y <= 0 ? 0 : DY.vals[i]) + DX0[i]);
  expectEq(`relu_backward acc ${dn[xDt]}->${dn[yDt]}`, DX, dr);
}
console.log(`${passes} passed, ${failures} failed`);
await pool.close();
process.exit(failures ? 1 : 0);
