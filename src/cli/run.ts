/**
 * `mixprec run`: torchrun's launcher for one node. Starts --nproc-per-node copies of COMMAND with
 * torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, GROUP_RANK), so `mx.distributed.initProcessGroup()` (env://) joins them, on
 * this machine or, with --nnodes, across machines (one launcher per node). The same COMMAND runs
 * unchanged under Kubernetes, where Kubeflow's PyTorchJob sets these variables itself.
 *
 * - COMMAND `mixprec ...` runs this very CLI with this node; a .js/.mjs file runs with this node.
 * - The ranks get their own process group: a signal to the launcher (Ctrl-C, SIGTERM) reaches each
 *   rank exactly once, forwarded.
 * - A rank that fails (non-zero exit, killed) is named in one line (and so is each that follows); the others get a grace period
 *   to fail on their own (mx.distributed notices the lost peer at once and says so), then SIGTERM,
 *   then SIGKILL. The launcher exits with the first failure's code (128 + signal for a killed rank).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { number, parseFlags } from './args.js';
import { usage } from './errors.js';
import type { Output } from './train.js';

export const RUN_HELP = `usage: mixprec run --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P] -- COMMAND [ARGS...]

Starts N ranks of COMMAND on this node for data-parallel training (torchrun's environment:
MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE). mixprec train,
train-lm and train-gan become data-parallel when started this way.

  --nproc-per-node N   ranks on this node (default 1)
  --nnodes M           nodes in the job (default 1); start one launcher per node
  --node-rank R        this node's index in [0, M) (default 0); node 0 hosts rank 0
  --master-addr A      rank 0's address, reachable from every node (default 127.0.0.1)
  --master-port P      rank 0's rendezvous port (default: a free port with one node, else 29500)
  --grace-seconds S    after a rank fails, how long the others may take to stop by themselves (default 10)

Example: mixprec run --nproc-per-node 2 -- mixprec train --epochs 2 --batch-size 32
`;

const FLAGS = {
  'nproc-per-node': { type: 'string' },
  nnodes: { type: 'string' },
  'node-rank': { type: 'string' },
  'master-addr': { type: 'string' },
  'master-port': { type: 'string' },
  'grace-seconds': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface RunArgs {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number | null;
  graceSeconds: number;
  command: string[];
  help: boolean;
}

export function parseRunArgs(argv: string[]): RunArgs {
  const split = argv.indexOf('--');
  const flags = split < 0 ? argv : argv.slice(0, split);
  const command = split < 0 ? [] : argv.slice(split + 1);
  const v = parseFlags('run', flags, FLAGS);
  const args: RunArgs = {
    nprocPerNode: number('run', 'nproc-per-node', v['nproc-per-node'], 1, { integer: true, min: 1 }),
    nnodes: number('run', 'nnodes', v['nnodes'], 1, { integer: true, min: 1 }),
    nodeRank: number('run', 'node-rank', v['node-rank'], 0, { integer: true, min: 0 }),
    masterAddr: typeof v['master-addr'] === 'string' && v['master-addr'] !== '' ? v['master-addr'] : '127.0.0.1',
    masterPort: v['master-port'] === undefined ? null : number('run', 'master-port', v['master-port'], 0, { integer: true, min: 1 }),
    graceSeconds: number('run', 'grace-seconds', v['grace-seconds'], 10, { min: 0 }),
    command,
    help: Boolean(v['help']),
  };
  if (args.help) return args;
  if (args.nodeRank >= args.nnodes) throw usage(`mixprec run: --node-rank ${args.nodeRank} is not in [0, --nnodes ${args.nnodes})`);
  if (args.masterPort !== null && args.masterPort > 65535) throw usage(`mixprec run: --master-port must be <= 65535 (got ${args.masterPort})`);
  if (command.length === 0) throw usage('mixprec run: give the command to run after -- (e.g. mixprec run --nproc-per-node 2 -- mixprec train)');
  return args;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The program and arguments to spawn for COMMAND. */
export function resolveCommand(command: readonly string[]): [string, string[]] {
  const [program, ...rest] = command as [string, ...string[]];
  if (program === 'mixprec') return [process.execPath, [fileURLToPath(new URL('./main.js', import.meta.url)), ...rest]];
  if (/\.(m|c)?js$/.test(program)) return [process.execPath, [program, ...rest]];
  return [program, rest];
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

interface Rank {
  rank: number;
  localRank: number;
  child: ChildProcess;
  exited: boolean;
}

function signalNumber(signal: NodeJS.Signals): number {
  return (constants.signals as Record<string, number>)[signal] ?? 1;
}

export async function runRun(args: RunArgs, out: Output): Promise<number> {
  if (args.help) {
    out.log(RUN_HELP.trimEnd());
    return 0;
  }
  const port = args.masterPort ?? (args.nnodes === 1 ? await freePort() : 29500);
  const worldSize = args.nnodes * args.nprocPerNode;
  const [program, programArgs] = resolveCommand(args.command);
  const ranks: Rank[] = [];
  const say = (line: string) => process.stderr.write(`mixprec run: ${line}\n`);

  return new Promise<number>((resolve) => {
    let failure: { code: number; line: string } | null = null;
    let forwarded: NodeJS.Signals | null = null;
    let escalation: NodeJS.Timeout | null = null;

    const live = () => ranks.filter((r) => !r.exited);
    const signalAll = (signal: NodeJS.Signals) => {
      for (const r of live()) {
        try {
          r.child.kill(signal);
        } catch {
          // already gone
        }
      }
    };
    const onSignal = (signal: NodeJS.Signals) => {
      forwarded = signal;
      signalAll(signal);
    };
    for (const s of FORWARDED) process.on(s, onSignal);

    const finish = () => {
      for (const s of FORWARDED) process.off(s, onSignal);
      if (escalation) clearTimeout(escalation);
      if (failure) resolve(failure.code);
      else if (forwarded) resolve(128 + signalNumber(forwarded));
      else resolve(0);
    };

    // After a failure the others may fail on their own (mx.distributed names the lost rank); then they are stopped.
    const stopOthers = () => {
      escalation = setTimeout(() => {
        if (live().length === 0) return;
        say(`stopping ${live().length} remaining rank(s) with SIGTERM`);
        signalAll('SIGTERM');
        escalation = setTimeout(() => signalAll('SIGKILL'), 10_000);
        escalation.unref();
      }, args.graceSeconds * 1000);
      escalation.unref();
    };

    for (let localRank = 0; localRank < args.nprocPerNode; localRank++) {
      const rank = args.nodeRank * args.nprocPerNode + localRank;
      const child = spawn(program, programArgs, {
        stdio: 'inherit',
        // Own process group: a terminal's Ctrl-C reaches the launcher only, which forwards it once.
        detached: true,
        env: {
          ...process.env,
          MASTER_ADDR: args.masterAddr,
          MASTER_PORT: String(port),
          RANK: String(rank),
          WORLD_SIZE: String(worldSize),
          LOCAL_RANK: String(localRank),
          LOCAL_WORLD_SIZE: String(args.nprocPerNode),
          GROUP_RANK: String(args.nodeRank),
        },
      });
      const entry: Rank = { rank, localRank, child, exited: false };
      ranks.push(entry);
      child.on('error', (e) => {
        entry.exited = true;
        failure ??= { code: 127, line: `rank ${rank}: cannot start ${args.command[0]}: ${e.message}` };
        say(failure.line);
        if (live().length === 0) finish();
        else if (!escalation) stopOthers();
      });
      child.on('exit', (code, signal) => {
        entry.exited = true;
        // after a forwarded Ctrl-C / SIGTERM the ranks stop as asked: that is no failure to report
        const failed = forwarded === null && (signal !== null || code !== 0);
        if (failed) {
          const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
          const line = `rank ${rank} (local rank ${localRank}, pid ${child.pid}) ${how}`;
          say(line);
          if (!failure) {
            failure = { code: signal !== null ? 128 + signalNumber(signal) : code!, line };
            if (live().length > 0) stopOthers();
          }
        }
        if (live().length === 0) finish();
      });
    }
  });
}
