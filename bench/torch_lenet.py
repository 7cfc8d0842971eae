#!/usr/bin/env python3
"""PyTorch peer of `mixprec bench train`: the same LeNet training step on the CPU.

    /usr/bin/python3 bench/torch_lenet.py [--batch-size 64] [--steps 10] [--warmup 2]
                                          [--precisions fp32,bf16] [--threads N] [--seed 0]

Network (PyTorch's CIFAR-10 tutorial Net, as src/models/lenet.ts): conv 3->6 5x5, ReLU, max-pool 2,
conv 6->16 5x5, ReLU, max-pool 2, linear 400->120->84->10 with ReLUs. Random CIFAR-shaped data
(randn [B,3,32,32], labels randint 0..9), cross-entropy, SGD lr 0.01 momentum 0.9. fp32, and bf16
through torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch 1.13's CPU autocast has no float16).
Each step reads its loss (loss.item()), as mixprec's does.

Prints one JSON object: torch version, threads, the BLAS torch was built against and the OpenBLAS
kernel (core) it runs, and img/s per precision. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE pin OpenBLAS to
another core's kernels / cache sizes; bench/peers.mjs runs this script with both unset, and the
output records their values as seen here.
"""
import argparse
import ctypes
import json
import os
import re
import sys
import time


def openblas_info():
    """The OpenBLAS library mapped into this process, its core (kernel set) and build config."""
    path = None
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                name = line.split()[-1]
                if name.startswith("/") and re.match(r"libopenblas.*\.so", os.path.basename(name)):
                    path = name
                    break
    except OSError:
        return None
    if not path:
        return None
    info = {"library": path}
    try:
        lib = ctypes.CDLL(path)
        for fn in ("openblas_get_corename", "openblas_get_config"):
            f = getattr(lib, fn, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                info[fn.replace("openblas_get_", "")] = f().decode()
        f = getattr(lib, "openblas_get_num_threads", None)
        if f is not None:
            info["num_threads"] = int(f())
    except OSError as e:
        info["error"] = str(e)
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    config = torch.__config__.show()
    blas_info = re.search(r"BLAS_INFO=([^,\s]+)", config)
    capability = re.search(r"CPU capability usage: (\S+)", config)
    out = {
        "peer": "torch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas_info": blas_info.group(1) if blas_info else None,
        "cpu_capability": capability.group(1) if capability else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "openblas": openblas_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")},
        "batch_size": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "results": [],
    }

    for precision in [p for p in args.precisions.split(",") if p]:
        if precision not in ("fp32", "bf16"):
            sys.exit(f"torch_lenet.py: precision {precision!r} not supported on the CPU (fp32, bf16)")
        torch.manual_seed(args.seed)
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(args.batch_size, 3, 32, 32)
        y = torch.randint(0, 10, (args.batch_size,))

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        for _ in range(max(1, args.warmup)):
            step()
        t0 = time.perf_counter()
        loss = float("nan")
        for _ in range(args.steps):
            loss = step()
        seconds = time.perf_counter() - t0
        out["results"].append({
            "precision": precision,
            "img_per_s": round(args.batch_size * args.steps / seconds, 2),
            "step_ms": round(seconds * 1000 / args.steps, 3),
            "seconds": round(seconds, 4),
            "loss": round(loss, 5),
        })
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
