/**
 * Figures to SVG and PNG in Node, with no native code: Vega-Lite compiles each spec to Vega, Vega's
 * headless view renders SVG (text measured by Vega's estimate, no canvas needed), and resvg's
 * WebAssembly build rasterises the SVG with the DejaVu Sans font shipped by the dejavu-fonts-ttf
 * package (a wasm rasteriser reads no system fonts).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Figure } from './figures.js';

const require = createRequire(import.meta.url);

/** The figure as an SVG document. */
export async function figureSvg(figure: Figure): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(figure.spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let rasteriser: Promise<{ Resvg: typeof import('@resvg/resvg-wasm').Resvg; font: Uint8Array }> | null = null;

function loadRasteriser() {
  rasteriser ??= (async () => {
    const resvg = await import('@resvg/resvg-wasm');
    const [wasm, font] = await Promise.all([
      readFile(require.resolve('@resvg/resvg-wasm/index_bg.wasm')),
      readFile(require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf')),
    ]);
    await resvg.initWasm(wasm);
    return { Resvg: resvg.Resvg, font: new Uint8Array(font) };
  })();
  return rasteriser;
}

/** An SVG document as PNG bytes, at `zoom` times its size (2: sharp on high-density screens). */
export async function svgToPng(svg: string, zoom = 2): Promise<Uint8Array> {
  const { Resvg, font } = await loadRasteriser();
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: zoom },
    background: 'white',
    font: { fontBuffers: [font], defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  try {
    const image = r.render();
    try {
      return image.asPng();
    } finally {
      image.free();
    }
  } finally {
    r.free();
  }
}
