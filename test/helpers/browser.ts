/**
 * Running the compiled library in headless Chromium (Debian's, driven by playwright-core), shared by
 * the browser tests: build/src is served over a small HTTP server next to a page script that imports
 * the modules from '/src/...' and leaves what it checked in `window.result`.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** CHROMIUM_PATH, else the Debian package's binary (`.ci/run` installs it); undefined when neither exists. */
export const chromiumPath: string | undefined =
  process.env['CHROMIUM_PATH'] ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** build/ (this file is build/test/helpers/browser.js): build/src holds the compiled library. */
const buildRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.map': 'application/json', '.html': 'text/html' };

export interface PageServer {
  server: Server;
  url: string;
  /** Paths the page asked for that do not exist (a missing module shows up here first). */
  notFound: string[];
}

/**
 * Serve a page that runs `pageScript` as a module, and build/src under /src. `isolated` adds the
 * COOP/COEP headers that make the page cross-origin isolated (SharedArrayBuffer available).
 * 127.0.0.1 is a secure context, which WebGPU needs.
 */
export function serve(isolated: boolean, pageScript: string): Promise<PageServer> {
  const notFound: string[] = [];
  const server = createServer(async (req, res) => {
    const headers: Record<string, string> = isolated
      ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }
      : {};
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/html' });
      res.end(`<!doctype html><meta charset="utf-8"><title>mixprec</title><script type="module" src="/page.js"></script>`);
      return;
    }
    if (path === '/page.js') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' });
      res.end(pageScript);
      return;
    }
    const file = normalize(join(buildRoot, path));
    if (!file.startsWith(join(buildRoot, 'src'))) {
      if (path !== '/favicon.ico') notFound.push(path);
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      notFound.push(path);
      res.writeHead(404).end();
    }
  });
  return new Promise((done) => server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as { port: number };
    done({ server, url: `http://127.0.0.1:${port}/`, notFound });
  }));
}

export type Browser = Awaited<ReturnType<typeof import('playwright-core').chromium.launch>>;

/** Flags every run wants: no network chatter, no first-run UI; `--no-sandbox` because tests may run as root. */
const COMMON_ARGS = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launch Chromium (chromiumPath must be set) with the common flags plus `extraArgs`. */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  if (!chromiumPath) throw new Error('Chromium is not installed (apt-get install chromium; .ci/run does)');
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: chromiumPath, args: [...COMMON_ARGS, ...extraArgs] });
}

export interface PageOptions {
  /** Serve with COOP/COEP (cross-origin isolated). Default false. */
  isolated?: boolean;
  /** How long the page may take to set window.result (default 120 s). */
  timeoutMs?: number;
}

export interface PageRun<T> {
  result: T;
  /** The page's console messages and uncaught errors, in order. */
  logs: string[];
}

/**
 * Open a fresh page on `pageScript` and wait for its `window.result`. A result with `error` (the
 * page's catch-all) fails with the page's console output and any missing files in the message.
 */
export async function runPage<T extends object>(browser: Browser, pageScript: string, options: PageOptions = {}): Promise<PageRun<T>> {
  const { server, url, notFound } = await serve(options.isolated ?? false, pageScript);
  const page = await browser.newPage();
  const logs: string[] = [];
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(String(e)));
  const context = () => [...logs, ...notFound.map((p) => `404 ${p}`)].join('\n');
  try {
    await page.goto(url);
    try {
      await page.waitForFunction(() => (globalThis as { result?: unknown }).result !== undefined, undefined, { timeout: options.timeoutMs ?? 120_000 });
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${context()}`);
    }
    const result = (await page.evaluate(() => (globalThis as { result?: unknown }).result)) as T & { error?: string };
    assert.equal(result.error, undefined, `${result.error}\n${context()}`);
    return { result, logs };
  } finally {
    await page.close();
    server.close();
  }
}

/**
 * Where a test's screenshot goes: MIXPREC_SCREENSHOT_DIR (`npm run screenshots` sets docs/images,
 * the README's pictures), else build/screenshots.
 */
export function screenshotPath(name: string): string {
  const dir = process.env['MIXPREC_SCREENSHOT_DIR'] ? resolve(process.env['MIXPREC_SCREENSHOT_DIR']) : join(buildRoot, 'screenshots');
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
