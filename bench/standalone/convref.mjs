// Float64 reference convolution (NCHW) returning values and |term| sums (for error bounds).
export function geom(g) {
  const { N, Cin, H, W, Cout, KH, KW, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1 } = g;
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  return { N, Cin, H, W, Cout, KH, KW, sh, sw, ph, pw, dh, dw, groups, OH, OW, CG: Cin / groups, OCG: Cout / groups };
}
export function writeDesc(pool, p, g) {
  const d = new Int32Array(pool.memory.buffer, p, 16);
  d.set([g.N, g.Cin, g.H, g.W, g.Cout, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.groups, 0, 0]);
}
/** visit(n, co, oh, ow, ci, kh, kw, xIndex, wIndex, yIndex) for every valid product */
function forEachTerm(G, f) {
  const { N, Cin, H, W, Cout, KH, KW, sh, sw, ph, pw, dh, dw, OH, OW, CG, OCG } = G;
  for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) {
    const g = Math.floor(co / OCG);
    for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      const yi = ((n * Cout + co) * OH + oh) * OW + ow;
      for (let c = 0; c < CG; c++) for (let kh = 0; kh < KH; kh++) {
        const ih = oh * sh - ph + kh * dh;
        if (ih < 0 || ih >= H) continue;
        for (let kw = 0; kw < KW; kw++) {
          const iw = ow * sw - pw + kw * dw;
          if (iw < 0 || iw >= W) continue;
          f(((n * Cin + g * CG + c) * H + ih) * W + iw, ((co * CG + c) * KH + kh) * KW + kw, yi);
        }
      }
    }
  }
}
export function refForward(G, x, w, bias) {
  const ny = G.N * G.Cout * G.OH * G.OW;
  const y = new Float64Array(ny), s = new Float64Array(ny);
  forEachTerm(G, (xi, wi, yi) => { const t = x[xi] * w[wi]; y[yi] += t; s[yi] += Math.abs(t); });
  if (bias) for (let i = 0; i < ny; i++) { const co = Math.floor(i / (G.OH * G.OW)) % G.Cout; y[i] += bias[co]; s[i] += Math.abs(bias[co]); }
  return { y, s };
}
export function refGradInput(G, dy, w) {
  const nx = G.N * G.Cin * G.H * G.W;
  const y = new Float64Array(nx), s = new Float64Array(nx);
  forEachTerm(G, (xi, wi, yi) => { const t = dy[yi] * w[wi]; y[xi] += t; s[xi] += Math.abs(t); });
  return { y, s };
}
export function refGradWeight(G, x, dy) {
  const nw = G.Cout * G.CG * G.KH * G.KW;
  const y = new Float64Array(nw), s = new Float64Array(nw);
  forEachTerm(G, (xi, wi, yi) => { const t = dy[yi] * x[xi]; y[wi] += t; s[wi] += Math.abs(t); });
  return { y, s };
}
export function refGradBias(G, dy) {
  const y = new Float64Array(G.Cout), s = new Float64Array(G.Cout);
  const P = G.OH * G.OW;
  for (let n = 0; n < G.N; n++) for (let c = 0; c < G.Cout; c++) for (let p = 0; p < P; p++) { const v = dy[(n * G.Cout + c) * P + p]; y[c] += v; s[c] += Math.abs(v); }
  return { y, s };
}
