/**
 * `mixprec serve`: the browser playground (built by `npm run build` into dist/web/) on a local HTTP
 * server, with the COOP/COEP headers that make the page cross-origin isolated (SharedArrayBuffer,
 * so the wasm backend runs on Web Workers), and the digits of the `mnist` package at
 * /data/digits.bin.
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBundledDigits } from '../data/bundled_digits.js';
import { encodeDigitSplits } from '../data/digits_format.js';
import { number, parseFlags } from './args.js';
import { CliError, usage } from './errors.js';
import type { Output } from './train.js';

export const SERVE_HELP = `usage: mixprec serve [--port N] [--host ADDRESS]

Serves the browser playground: train LeNet in the page on the bundled MNIST digits or a CIFAR-10
archive picked from disk, on WebGPU (float16 shaders where the adapter has shader-f16) or
WebAssembly threads, in fp32, fp16 or bf16, with live plots. The page is cross-origin isolated
(COOP/COEP headers), which the wasm backend's threads need. Ctrl-C stops the server.

  --port N          (default 8000; 0: any free port)
  --host ADDRESS    (default 127.0.0.1: this machine only; a secure context for WebGPU)
`;

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

/** Cross-origin isolation: the page may use SharedArrayBuffer, and loads nothing from elsewhere. */
const ISOLATION = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** dist/web/, next to this file's dist/cli/. */
export const WEB_ROOT = fileURLToPath(new URL('../web/', import.meta.url));

/** The playground's HTTP server (not yet listening). */
export function playgroundServer(root = WEB_ROOT): Server {
  let digits: Promise<Uint8Array> | null = null;
  return createServer(async (req, res) => {
    const send = (status: number, body: Uint8Array | string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { ...ISOLATION, 'Content-Type': type, 'Cache-Control': 'no-cache' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'only GET and HEAD\n');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      return send(400, 'bad path\n');
    }
    if (path === '/data/digits.bin') {
      // Read once, on first request: ~10 MB of JSON in the mnist package to 8 MB of bytes.
      digits ??= Promise.resolve().then(() => encodeDigitSplits(readBundledDigits()));
      try {
        return send(200, await digits, 'application/octet-stream');
      } catch (e) {
        digits = null;
        return send(500, `${(e as Error).message}\n`);
      }
    }
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(normalize(root.endsWith(sep) ? root : root + sep))) return send(404, 'not found\n');
    try {
      send(200, await readFile(file), TYPES[extname(file)] ?? 'application/octet-stream');
    } catch {
      send(404, 'not found\n');
    }
  });
}

export async function runServe(argv: string[], out: Output): Promise<number> {
  const v = parseFlags('serve', argv, FLAGS);
  if (v['help']) {
    out.log(SERVE_HELP.trimEnd());
    return 0;
  }
  const port = number('serve', 'port', v['port'], 8000, { integer: true, min: 0 });
  if (port > 65535) throw usage(`mixprec serve: --port must be at most 65535 (got '${String(v['port'])}')`);
  const host = typeof v['host'] === 'string' && v['host'] !== '' ? v['host'] : '127.0.0.1';
  if (!existsSync(join(WEB_ROOT, 'index.html'))) throw new CliError(`mixprec serve: the playground is not built (no ${join(WEB_ROOT, 'index.html')}): run npm run build`);
  const server = playgroundServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new CliError(`mixprec serve: cannot listen on ${host}:${port} (${e.code === 'EADDRINUSE' ? 'the port is in use; try --port 0' : e.message})`)),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address() as { port: number };
  const shown = host.includes(':') ? `[${host}]` : host;
  out.log(`mixprec playground: http://${shown}:${address.port}/ (cross-origin isolated; Ctrl-C stops the server)`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return 0;
}
