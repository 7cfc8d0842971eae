#!/usr/bin/env node
/**
 * Build the Gloo addon of mx.distributed (native/: binding.gyp, src/*.cc) with node-gyp against the
 * Node headers installed next to this `node` (`--nodedir`: offline, nothing is downloaded), linking
 * the system's libgloo. Run by `npm run build` and `npm run build:test`.
 *
 * Optional by design: where Gloo, a C++ compiler, make, python3 (node-gyp's) or Node's headers are
 * missing, or the compile fails, it prints one line saying what is missing, records the reason in
 * native/build/status.json (mx.distributed repeats it when used) and exits 0, so the rest of the
 * build, `npm start` and the tests work without distributed training. make keeps the build
 * incremental; `--force` rebuilds from scratch.
 *
 * node-gyp is the one that comes with npm (npm_config_node_gyp when run by npm, else npm's own
 * copy next to this node), so it is no dependency of ours; node-addon-api is (headers only).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const buildDir = join(nativeDir, 'build');
const addon = join(buildDir, 'Release', 'mixprec_gloo.node');
const force = process.argv.includes('--force');

function record(status) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(join(buildDir, 'status.json'), `${JSON.stringify(status)}\n`);
}

/** Give up without failing the build: one line, the reason kept for mx.distributed's error. */
function skip(reason) {
  rmSync(addon, { force: true });
  record({ ok: false, reason });
  console.log(`build-native: mx.distributed disabled: ${reason} (everything else works; to enable it: apt-get install libgloo-dev g++ make python3, then npm run build)`);
  process.exit(0);
}

function found(command, args = ['--version']) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

// Node's headers: <prefix>/include/node next to <prefix>/bin/node (Debian's nodejs, nodesource, nvm, official tarballs).
const nodedir = resolve(dirname(process.execPath), '..');
if (!existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) skip(`Node's headers are not at ${join(nodedir, 'include', 'node')}`);

const cxx = process.env.CXX || 'c++';
if (!found(cxx)) skip(`no C++ compiler (${cxx})`);
if (!found('make')) skip('make is missing');
const python = process.env.PYTHON || 'python3';
if (!found(python)) skip(`node-gyp needs Python 3 (${python})`);

// Gloo's headers (the preprocessor only: quick); a missing library shows up as a link error below.
const probe = spawnSync(cxx, ['-x', 'c++', '-std=c++17', '-E', '-', '-o', '/dev/null'], { input: '#include <gloo/allreduce.h>\n', encoding: 'utf8' });
if (probe.status !== 0) skip(/No such file/.test(probe.stderr ?? '') ? "Gloo's headers are missing (libgloo-dev)" : `Gloo's headers do not compile: ${(probe.stderr ?? '').split('\n')[0]}`);

try {
  createRequire(join(root, 'package.json')).resolve('node-addon-api/package.json');
} catch {
  skip('the npm package node-addon-api is not installed (npm install)');
}

const npmGyp = [process.env.npm_config_node_gyp, join(nodedir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find((p) => p && existsSync(p));
if (!npmGyp) skip('node-gyp (which comes with npm) was not found');

function gyp(...args) {
  const result = spawnSync(process.execPath, [npmGyp, ...args, `--nodedir=${nodedir}`, '--loglevel=error'], {
    cwd: nativeDir,
    encoding: 'utf8',
  });
  if (result.status !== 0) {
    const log = join(buildDir, 'build.log');
    mkdirSync(buildDir, { recursive: true });
    writeFileSync(log, `${result.stdout ?? ''}${result.stderr ?? ''}`);
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    if (/cannot find -lgloo/.test(output)) skip('libgloo is missing (libgloo-dev)');
    const firstError = output.split('\n').find((l) => /error/i.test(l)) ?? `node-gyp ${args[0]} failed`;
    skip(`the addon did not compile (${firstError.trim()}; full log in native/build/build.log)`);
  }
}

const started = Date.now();
if (force) rmSync(buildDir, { recursive: true, force: true });
if (!existsSync(join(buildDir, 'Makefile'))) gyp('configure');
gyp('build');
record({ ok: true });
if (!existsSync(addon)) skip('node-gyp reported success but produced no addon');
const seconds = ((Date.now() - started) / 1000).toFixed(1);
try {
  execFileSync(process.execPath, ['-e', `require(${JSON.stringify(addon)})`], { stdio: 'pipe' });
} catch (e) {
  skip(`the addon does not load: ${String(e.stderr ?? e).split('\n').find((l) => l.trim()) ?? ''}`);
}
console.log(`build-native: mx.distributed's Gloo addon ready (${seconds} s)`);
