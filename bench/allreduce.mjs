#!/usr/bin/env node
// All-reduce bandwidth by message size over Gloo (TCP, loopback or whatever MASTER_ADDR routes to),
// float32 against float16 on the wire. Start it on 2 (or more) ranks:
//
//   npm run build && node dist/cli/main.js run --nproc-per-node 2 -- bench/allreduce.mjs [--sizes 4096,65536,...] [--min-time 1] [--json]
//
// Per message size (bytes of float32 gradient values), four ways, interleaved rep by rep:
//   ddp-fp32    DistributedDataParallel's bucket all-reduce, float32 on the wire (the gradient average)
//   ddp-fp16    the same with gradientCompression 'fp16': divide, round to float16, all-reduce 16 bits
//               (summed in float32 per step), widen back: half the bytes, plus the conversions
//   tensor-fp32 mx.distributed.allReduce of a float32 tensor (copy to the host and back included)
//   tensor-fp16 mx.distributed.allReduce of a float16 tensor of the same element count
// Rank 0 prints time per all-reduce and the bandwidth in float32-gradient bytes per second (the
// same payload for every way: what a DDP bucket of that size moves), and NCCL's bus bandwidth
// (x 2(n-1)/n: the bytes each rank sends and receives in a ring). The PyTorch peer is
// bench/torch_allreduce.py (torch.distributed's gloo backend).
import os from 'node:os';
import * as mx from '../dist/index.js';
import { defaultGroup } from '../dist/distributed/process_group.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const sizes = opt('sizes', '4096,65536,262144,1048576,4194304,16777216,67108864').split(',').map(Number);
const minTime = Number(opt('min-time', '1'));
const json = args.includes('--json');

// tensors on the default backend (wasm: LOCAL_WORLD_SIZE ranks share the cores)
await mx.distributed.initProcessGroup({ backend: 'gloo' });
const rank = mx.distributed.getRank();
const world = mx.distributed.getWorldSize();
const native = defaultGroup('bench').native;
const log = (line) => rank === 0 && console.log(line);

const ways = {
  'ddp-fp32': (s) => native.wait(native.averageBucket(s.f32, 'none', true)),
  'ddp-fp16': (s) => native.wait(native.averageBucket(s.f32, 'fp16', true)),
  'tensor-fp32': (s) => mx.distributed.allReduce(s.t32, { op: 'avg' }),
  'tensor-fp16': (s) => mx.distributed.allReduce(s.t16, { op: 'avg' }),
};

log(`# all-reduce over Gloo, ${world} ranks, node ${process.version}, ${os.availableParallelism?.() ?? os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
log('| float32 bytes | way | ms per all-reduce | GB/s (float32 payload) | bus GB/s |');
log('|---|---|---|---|---|');
const rows = [];
for (const bytes of sizes) {
  const n = bytes / 4;
  const setup = {
    f32: Float32Array.from({ length: n }, (_, i) => ((i % 1000) - 500) * 1e-3),
    t32: mx.randn([n]),
    t16: mx.randn([n]).to('float16'),
  };
  for (const w of Object.values(ways)) await w(setup); // warm-up (buffers, connections)
  const times = Object.fromEntries(Object.keys(ways).map((k) => [k, []]));
  // Every rank must run the same number of reps: rank 0 decides when to stop (broadcast).
  const stop = mx.zeros([1], { dtype: 'int32' });
  const started = performance.now();
  for (;;) {
    for (const [name, w] of Object.entries(ways)) {
      const t0 = performance.now();
      await w(setup);
      times[name].push(performance.now() - t0);
    }
    if (rank === 0) stop.copy_(mx.tensor([(performance.now() - started) / 1000 >= minTime && times['ddp-fp32'].length >= 3 ? 1 : 0], { dtype: 'int32' }));
    await mx.distributed.broadcast(stop, 0);
    if ((await stop.item()) === 1) break;
  }
  for (const [name, list] of Object.entries(times)) {
    const sorted = [...list].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    const gbps = bytes / (median / 1000) / 1e9;
    const row = { bytes, way: name, reps: list.length, median_ms: Number(median.toFixed(4)), gb_per_s: Number(gbps.toFixed(3)), bus_gb_per_s: Number(((gbps * 2 * (world - 1)) / world).toFixed(3)) };
    rows.push(row);
    log(`| ${bytes.toLocaleString('en-US')} | ${name} | ${row.median_ms} | ${row.gb_per_s} | ${row.bus_gb_per_s} |`);
  }
}
if (json) log(JSON.stringify({ world, load_avg_1m: os.loadavg()[0], rows }));
mx.distributed.destroyProcessGroup();
