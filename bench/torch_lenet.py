#!/usr/bin/env python3
"""PyTorch peer of `mixprec bench train`: the same training step of the same network (LeNet,
WideCNN or torchvision's ResNet), on the CPU (the default) or on a CUDA GPU.

    /usr/bin/python3 bench/torch_lenet.py [--model lenet|widecnn|resnet18|resnet34|resnet50] [--width 64]
                                          [--image-size 32] [--device cpu|cuda] [--batch-size 64]
                                          [--steps N] [--warmup N] [--precisions fp32,bf16]
                                          [--threads best|N] [--seed 0] [--no-malloc-warmup]

Networks (one definition each, here; the same as src/models/lenet.ts and src/models/wide_cnn.ts):
- lenet (PyTorch's CIFAR-10 tutorial Net): conv 3->6 5x5, ReLU, max-pool 2, conv 6->16 5x5, ReLU,
  max-pool 2, linear 400->120->84->10 with ReLUs;
- widecnn (VGG-style, w = --width): conv3x3 3->w, w->w, max-pool 2, w->2w, 2w->2w, max-pool 2,
  2w->4w, max-pool 2, each conv (padding 1, no bias) followed by BatchNorm2d and ReLU, then
  linear 4w*4*4 -> 10;
- resnet18/34/50: torchvision.models.resnetN(num_classes=10) (Debian's python3-torchvision), the
  network src/models/resnet.ts builds with torchvision's names (its imagenet stem).
Random CIFAR-shaped data (randn [B,3,S,S] float32, S = --image-size, labels randint 0..9),
cross-entropy, SGD lr 0.01 momentum 0.9. Each step reads its loss (loss.item()), as mixprec's does,
so the work is done when the clock stops.

The peer at its best (bench/peer_common.py): the allocator warmed first, as in a process that has
loaded its data (one 30 MB block malloc'ed and freed, which raises glibc's mmap threshold so that
later large tensors come from the heap instead of a fresh mmap + page faults each step;
--no-malloc-warmup skips it), and on the CPU --threads best by default: per precision, the faster of
1 and every core over a few steps (each result records its `threads` and the trial times).

Precisions: fp32; bf16 through torch.autocast(device, dtype=torch.bfloat16); on cuda also fp16 AMP,
torch.autocast("cuda", dtype=torch.float16) with a GradScaler (PyTorch 1.13's CPU autocast has no
float16). Defaults: on cpu --precisions fp32,bf16, --steps 10, --warmup 2 (as bench/peers.mjs and
bench/lenet-interleaved.sh run it); on cuda fp32,fp16,bf16, --steps 50, --warmup 10, with
torch.backends.cudnn.benchmark on (--no-cudnn-benchmark turns it off) and PyTorch's default TF32
settings (recorded in the output).

Prints one JSON object: torch version, device (and on cuda the GPU's name, CUDA and cuDNN versions),
threads, the BLAS torch was built against and the OpenBLAS kernel (core) it runs, and img/s per
precision (on cuda also the peak of allocated GPU memory over the timed steps). OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE pin OpenBLAS to another core's kernels / cache sizes; bench/peers.mjs runs this
script with both unset, and the output records their values as seen here.
"""
import argparse
import ctypes
import json
import os
import re
import sys
import time

from peer_common import set_threads, thread_arg, warm_allocator


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


def build_model(name, width, nn, F, torch):
    """The network by name (lenet, widecnn or a torchvision ResNet), as src/models builds it."""
    if name.startswith("resnet"):
        import torchvision
        return getattr(torchvision.models, name)(num_classes=10)
    if name == "lenet":
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

        return Net()
    if name == "widecnn":
        w = width

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        class WideCNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = nn.Sequential(
                    *block(3, w), *block(w, w), nn.MaxPool2d(2),
                    *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
                    *block(2 * w, 4 * w), nn.MaxPool2d(2),
                )
                self.classifier = nn.Linear(4 * w * 4 * 4, 10)

            def forward(self, x):
                return self.classifier(torch.flatten(self.features(x), 1))

        return WideCNN()
    raise ValueError(f"unknown model {name!r}")


def make_scaler(torch, enabled):
    """A CUDA GradScaler: torch.amp.GradScaler("cuda") where it exists (PyTorch >= 2.3), else torch.cuda.amp's."""
    amp_scaler = getattr(getattr(torch, "amp", None), "GradScaler", None)
    if amp_scaler is not None:
        return amp_scaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("lenet", "widecnn", "resnet18", "resnet34", "resnet50"), default="lenet")
    ap.add_argument("--image-size", type=int, default=32, help="side of the square images (default 32)")
    ap.add_argument("--no-malloc-warmup", action="store_true", help="skip freeing a 30 MB malloc block at start")
    ap.add_argument("--width", type=int, default=64, help="widecnn's channel width (default 64)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 10 on cpu, 50 on cuda)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2 on cpu, 10 on cuda)")
    ap.add_argument("--precisions", default=None, help="default fp32,bf16 on cpu, fp32,fp16,bf16 on cuda")
    ap.add_argument("--threads", type=thread_arg, default="best", help="a count, or best (default: on cpu the faster of 1 and every core, per precision; on cuda torch's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cudnn-benchmark", action="store_true", help="cuda: leave torch.backends.cudnn.benchmark off")
    args = ap.parse_args()
    cuda = args.device == "cuda"
    steps = args.steps if args.steps is not None else (50 if cuda else 10)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    precisions = args.precisions if args.precisions is not None else ("fp32,fp16,bf16" if cuda else "fp32,bf16")
    if args.width < 1 or args.batch_size < 1 or steps < 1 or args.image_size < 8:
        sys.exit("torch_lenet.py: --width, --batch-size and --steps must be positive, --image-size at least 8")
    if args.model in ("lenet", "widecnn") and args.image_size != 32:
        sys.exit(f"torch_lenet.py: {args.model} is built for 32x32 images here")
    if not args.no_malloc_warmup:
        warm_allocator()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    if args.threads != "best":
        torch.set_num_threads(args.threads)
    if cuda:
        if not torch.cuda.is_available():
            sys.exit(f"torch_lenet.py: --device cuda but torch {torch.__version__} sees no CUDA device")
        torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    device = torch.device(args.device)

    config = torch.__config__.show()
    blas_info = re.search(r"BLAS_INFO=([^,\s]+)", config)
    capability = re.search(r"CPU capability usage: (\S+)", config)
    out = {
        "peer": "torch",
        "torch_version": torch.__version__,
        "device": args.device,
        "model": args.model,
        "threads": args.threads if args.threads != "best" else None,
        "blas_info": blas_info.group(1) if blas_info else None,
        "cpu_capability": capability.group(1) if capability else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "openblas": openblas_info(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")},
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "malloc_warmup": not args.no_malloc_warmup,
        "steps": steps,
        "warmup": warmup,
        "results": [],
    }
    if args.model == "widecnn":
        out["width"] = args.width
    if cuda:
        out["device_name"] = torch.cuda.get_device_name(0)
        out["cuda_version"] = torch.version.cuda
        out["cudnn_version"] = torch.backends.cudnn.version()
        out["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        out["float32_matmul_precision"] = torch.get_float32_matmul_precision()
        out["cudnn_allow_tf32"] = bool(getattr(torch.backends.cudnn, "allow_tf32", False))

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for precision in [p for p in precisions.split(",") if p]:
        allowed = ("fp32", "fp16", "bf16") if cuda else ("fp32", "bf16")
        if precision not in allowed:
            sys.exit(f"torch_lenet.py: precision {precision!r} not supported on {args.device} ({', '.join(allowed)})")
        torch.manual_seed(args.seed)
        model = build_model(args.model, args.width, nn, F, torch).to(device)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn(args.batch_size, 3, args.image_size, args.image_size).to(device)
        y = torch.randint(0, 10, (args.batch_size,)).to(device)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        # fp16 on cuda: AMP's loss scaling; fp32 and bf16 need none (a disabled scaler is a no-op).
        scaler = make_scaler(torch, precision == "fp16") if cuda else None

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(args.device, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            return loss.item()

        threads, trials = (torch.get_num_threads(), None) if cuda else set_threads(torch, args.threads, step)
        for _ in range(max(1, warmup)):
            step()
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        loss = float("nan")
        for _ in range(steps):
            loss = step()
        sync()
        seconds = time.perf_counter() - t0
        result = {
            "precision": precision,
            "img_per_s": round(args.batch_size * steps / seconds, 2),
            "step_ms": round(seconds * 1000 / steps, 3),
            "seconds": round(seconds, 4),
            "loss": round(loss, 5),
            "threads": threads,
        }
        if trials:
            result["thread_trials_ms"] = trials
        if cuda:
            result["peak_bytes"] = int(torch.cuda.max_memory_allocated())
            if precision == "fp16":
                result["loss_scale"] = float(scaler.get_scale())
        out["results"].append(result)
        del model, opt, x, y
        if cuda:
            torch.cuda.empty_cache()
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
