#!/usr/bin/env node
/** The `mixprec` command: train, eval, info. */
import { readFileSync } from 'node:fs';
// The API without the default-backend start-up: each command selects its backend from its flags.
import * as mx from '../api.js';
import { CliError } from './errors.js';
import { parseTrainArgs, runTrain } from './train.js';
import { parseTrainGanArgs, runTrainGan } from './train_gan.js';
import { parseTrainLmArgs, runTrainLm } from './train_lm.js';
import { parseTrainGptArgs, runTrainGpt } from './train_gpt.js';
import { runEval } from './eval.js';
import { runBench } from './bench.js';
import { runReport } from './report.js';
import { runServe } from './serve.js';
import { parseRunArgs, runRun } from './run.js';

const HELP = `usage: mixprec <command> [options]

commands:
  train     train the seed's CNN with mixed precision (mixprec train --help)
  train-lm  train a character-level LSTM language model with mixed precision (mixprec train-lm --help)
  train-gpt train a character-level GPT (nanoGPT's recipe) with mixed precision (mixprec train-gpt --help)
  train-gan train a DCGAN on CIFAR-10 with mixed precision, one GradScaler for two optimizers (mixprec train-gan --help)
  eval      accuracy of a training checkpoint (mixprec eval --help)
  report    training logs to an HTML page of plots (and PNGs) (mixprec report --help)
  serve     the browser playground: train LeNet in a web page (mixprec serve [--port N])
  bench     GEMM GFLOP/s and LeNet training img/s and memory (mixprec bench --help) [--json]
  info      backends, dtypes and the op table with autocast categories [--json]
  run       start data-parallel ranks of a command, as torchrun (mixprec run --help)
  --version print the version
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

const out = { log: (line: string) => console.log(line), isTTY: Boolean(process.stderr.isTTY) };

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'train':
      return runTrain(parseTrainArgs(rest), out);
    case 'train-lm':
      return runTrainLm(parseTrainLmArgs(rest), out);
    case 'train-gpt':
      return runTrainGpt(parseTrainGptArgs(rest), out);
    case 'train-gan':
      return runTrainGan(parseTrainGanArgs(rest), out);
    case 'eval':
      return runEval(rest, out);
    case 'report':
      return runReport(rest, out);
    case 'serve':
      return runServe(rest, out);
    case 'bench':
      return runBench(rest, out);
    case 'run':
      return runRun(parseRunArgs(rest), out);
    case 'info':
      info(rest.includes('--json'));
      return 0;
    case '--version':
    case '-v':
      console.log(version());
      return 0;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    default:
      throw new CliError(`mixprec: unknown command '${command}' (commands: train, train-lm, train-gpt, train-gan, eval, report, serve, bench, info, run; see mixprec --help)`, 2);
  }
}

const argv = process.argv.slice(2);
const verbose = argv.includes('--verbose');
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const err = e as Error;
    const message = (err?.message ?? String(e)).split('\n')[0];
    console.error(message!.startsWith('mixprec') ? message : `mixprec: ${message}`);
    if (verbose && err?.stack) console.error(err.stack);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  },
);
