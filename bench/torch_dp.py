#!/usr/bin/env python3
"""PyTorch peer of bench/allreduce.mjs and bench/dp-train.mjs: torch.distributed on its gloo backend
(the same Gloo) with torch.multiprocessing, on the CPU.

    /usr/bin/python3 bench/torch_dp.py allreduce [--world 2] [--sizes 4096,...] [--min-time 1]
    /usr/bin/python3 bench/torch_dp.py train [--world 1|2] [--threads N] [--steps 60] [--warmup 10] [--batch 64]

allreduce: per message size (bytes of float32 gradient values), interleaved rep by rep:
  fp32        dist.all_reduce of a float32 tensor (then / world, DDP's average)
  fp16        DDP's fp16_compress_hook: float32 / world -> float16, all_reduce, back to float32
Prints the median time and the bandwidth in float32-payload bytes per second, as allreduce.mjs.

train: LeNet (src/models/lenet.ts's network) on a random CIFAR-shaped batch, SGD lr 0.01 momentum
0.9, cross-entropy, float32 (PyTorch 1.13's fastest on this CPU for LeNet); with --world 2 each of
two processes runs DistributedDataParallel on --batch / 2 images. Prints one JSON line with the
global images per second over the timed steps.

Each process first frees a ~30 MB malloc block, so that the allocator starts warm, as a process
that has loaded its data (bench/peer_common.py).
"""
import argparse
import json
import os
import socket
import time

from peer_common import warm_allocator


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init(rank, world, port, threads):
    import torch
    import torch.distributed as dist

    warm_allocator()
    torch.set_num_threads(threads)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    return torch, dist


def run_allreduce(rank, world, port, args, out):
    torch, dist = init(rank, world, port, 1)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n = size // 4
        grad = torch.randn(n)

        def fp32():
            t = grad.clone()
            dist.all_reduce(t)
            t.div_(world)

        def fp16():
            t = grad.div(world).half()
            dist.all_reduce(t)
            grad.copy_(t)

        ways = {"fp32": fp32, "fp16": fp16}
        for f in ways.values():
            f()
        times = {k: [] for k in ways}
        stop = torch.zeros(1, dtype=torch.int32)
        started = time.perf_counter()
        while True:
            for name, f in ways.items():
                t0 = time.perf_counter()
                f()
                times[name].append((time.perf_counter() - t0) * 1000)
            if rank == 0:
                stop[0] = int(time.perf_counter() - started >= args.min_time and len(times["fp32"]) >= 3)
            dist.broadcast(stop, 0)
            if stop.item() == 1:
                break
        for name, t in times.items():
            median = sorted(t)[len(t) // 2]
            gbps = size / (median / 1000) / 1e9
            rows.append({"bytes": size, "way": name, "reps": len(t), "median_ms": round(median, 4), "gb_per_s": round(gbps, 3)})
    if rank == 0:
        out.put({"torch": torch.__version__, "world": world, "load_avg_1m": os.getloadavg()[0], "rows": rows})
    dist.destroy_process_group()


def lenet(nn, F):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(400, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = x.flatten(1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    return Net()


def run_train(rank, world, port, args, out):
    if world > 1:
        torch, dist = init(rank, world, port, args.threads)
    else:
        import torch

        warm_allocator()
        torch.set_num_threads(args.threads)
    import torch.nn as nn
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = lenet(nn, F)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch = args.batch // world
    g = torch.Generator().manual_seed(1 + rank)
    x = torch.randn(batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    for s in range(args.warmup + args.steps):
        if s == args.warmup:
            started = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
    seconds = time.perf_counter() - started
    if rank == 0:
        out.put({
            "peer": "pytorch", "torch": torch.__version__, "processes": world, "threads": torch.get_num_threads(), "precision": "fp32",
            "global_batch": args.batch, "img_per_s": round(args.steps * args.batch / seconds), "step_ms": round(seconds / args.steps * 1000, 2),
            "load_avg_1m": os.getloadavg()[0],
        })
    if world > 1:
        dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["allreduce", "train"])
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="4096,65536,262144,1048576,4194304,16777216,67108864")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    import torch.multiprocessing as mp

    target = run_allreduce if args.what == "allreduce" else run_train
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=target, args=(r, args.world, port, args, out)) for r in range(args.world)]
    for p in procs:
        p.start()
    result = out.get()
    for p in procs:
        p.join()
    if args.what == "allreduce":
        print(f"# PyTorch {result['torch']} gloo all-reduce, {result['world']} ranks, load {result['load_avg_1m']:.2f}")
        print("| float32 bytes | way | ms per all-reduce | GB/s (float32 payload) |")
        print("|---|---|---|---|")
        for r in result["rows"]:
            print(f"| {r['bytes']:,} | torch-{r['way']} | {r['median_ms']} | {r['gb_per_s']} |")
    else:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
