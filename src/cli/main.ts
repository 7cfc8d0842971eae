#!/usr/bin/env node
/** The `mixprec` command. Today: `info` (backends, dtypes, op table). Training arrives with the training stack. */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import * as mx from '../index.js';

const HELP = `usage: mixprec <command> [options]

commands:
  info [--json]    backends, dtypes (finfo) and the op table with autocast categories
  --version        print the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function info(json: boolean): void {
  const dtypes = mx.dtypes.ALL_DTYPES.map((d) => ({ name: d.name, bits: d.bits, finfo: d.finfo }));
  const ops = mx.allOps().map((op) => ({
    name: op.name,
    kind: op.compose ? 'composite' : op.view ? 'view' : 'kernel',
    autocast: op.autocast,
    differentiable: Boolean(op.backward || op.compose),
  }));
  if (json) {
    console.log(JSON.stringify({ version: version(), backends: mx.listBackends(), dtypes, ops }, null, 2));
    return;
  }
  console.log(`mixprec ${version()}  backends: ${mx.listBackends().join(', ')}`);
  for (const d of dtypes) {
    const f = d.finfo;
    console.log(`  ${d.name.padEnd(9)} ${String(d.bits).padStart(2)} bits${f ? `  max ${f.max.toPrecision(5)}  eps ${f.eps.toPrecision(3)}  tiny ${f.tiny.toPrecision(3)}` : ''}`);
  }
  console.log(`${ops.length} ops:`);
  for (const op of ops) console.log(`  ${op.name.padEnd(28)} ${op.kind.padEnd(9)} autocast=${op.autocast}`);
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, version: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.version) {
    console.log(version());
    return 0;
  }
  const [command] = positionals;
  if (values.help || !command) {
    process.stdout.write(HELP);
    return values.help ? 0 : 1;
  }
  if (command === 'info') {
    info(values.json ?? false);
    return 0;
  }
  console.error(`mixprec: unknown command '${command}'. Run 'mixprec --help' for the list.`);
  return 2;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  console.error(`mixprec: ${(e as Error).message}`);
  process.exitCode = 2;
}
