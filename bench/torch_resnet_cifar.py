"""PyTorch's twin of `mixprec train --model resnet18 --dataset cifar10 --epochs 3 --seed 0`.

The same recipe as mixprec's CLI defaults: torchvision's resnet18 (its default stem, conv 7x7 stride 2 +
max-pool, on 32x32 images; 10 classes; --stem cifar for conv 3x3 stride 1 without the max-pool), SGD lr
0.01 momentum 0.9 no weight decay, the rate annealed to 0 along a half cosine over all the run's
steps (CosineAnnealingLR stepped every batch; --lr-schedule constant keeps 0.01), batch 64 reshuffled every epoch (the last partial batch kept), no
augmentation, pixels / 255 normalised with CIFAR-10's channel statistics (mixprec's CIFAR10_STATS),
cross entropy; after each epoch the test accuracy in eval mode (running batch-norm statistics).
--precision fp32, or bf16 (CPU autocast to bfloat16; PyTorch 1.13 has no CPU float16 autocast).
The peer at its best (bench/peer_common.py): allocator warmed (the data set is loaded first anyway),
--threads best (the faster of 1 and every core, timed on a few steps).

  /usr/bin/python3 bench/torch_resnet_cifar.py --data ../shared/datasets/cifar-10-binary.tar.gz \
      [--epochs 3] [--seed 0] [--precision fp32|bf16] [--stem imagenet|cifar] [--lr-schedule cosine|constant]
      [--json-out FILE]

Prints one line per epoch and a final JSON object (also written to --json-out).
"""
import argparse
import json
import os
import sys
import tarfile
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import set_threads, thread_arg, warm_allocator  # noqa: E402

MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
STD = np.array([0.247, 0.2435, 0.2616], dtype=np.float32)
RECORD = 1 + 3 * 32 * 32


def read_cifar(path):
    """(train images, train labels, test images, test labels) from the official binary .tar.gz."""
    train, test = [], []
    with tarfile.open(path, "r:*") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = os.path.basename(member.name)
            if not name.endswith(".bin") or not (name.startswith("data_batch_") or name == "test_batch.bin"):
                continue
            raw = tar.extractfile(member).read()
            if len(raw) % RECORD:
                raise ValueError(f"{path}: {member.name} has {len(raw)} bytes, not a multiple of {RECORD}")
            (test if name == "test_batch.bin" else train).append(np.frombuffer(raw, np.uint8).reshape(-1, RECORD))
    if len(train) != 5 or len(test) != 1:
        raise ValueError(f"{path}: expected data_batch_1..5.bin and test_batch.bin, found {len(train)} train and {len(test)} test files")

    def split(rows):
        rows = np.concatenate(rows)
        x = rows[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
        x = (x - MEAN[None, :, None, None]) / STD[None, :, None, None]
        return torch.from_numpy(x), torch.from_numpy(rows[:, 0].astype(np.int64))

    return (*split(train), *split(test))


def build_model(stem):
    model = torchvision.models.resnet18(num_classes=10)
    if stem == "cifar":
        model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = torch.nn.Identity()
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--stem", choices=["imagenet", "cifar"], default="imagenet")
    ap.add_argument("--lr-schedule", choices=["cosine", "constant"], default="cosine")
    ap.add_argument("--threads", type=thread_arg, default="best")
    ap.add_argument("--json-out")
    args = ap.parse_args()

    warm_allocator()
    xtr, ytr, xte, yte = read_cifar(args.data)
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")  # noqa: E731
    sgd = lambda net: torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum)  # noqa: E731

    def step(net, opt, x, y):
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    # The thread trial trains a throw-away network, before the seed, so the run starts from the seeded draw.
    trial = build_model(args.stem)
    trial_opt = sgd(trial)
    threads, trials = set_threads(torch, args.threads, lambda: step(trial, trial_opt, xtr[: args.batch_size], ytr[: args.batch_size]))
    del trial, trial_opt
    torch.manual_seed(args.seed)
    model = build_model(args.stem)
    opt = sgd(model)
    steps_per_epoch = (len(ytr) + args.batch_size - 1) // args.batch_size
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * steps_per_epoch) if args.lr_schedule == "cosine" else None
    generator = torch.Generator().manual_seed(args.seed)

    epochs = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(ytr), generator=generator)
        t0 = time.perf_counter()
        loss_sum, batches = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            idx = order[i : i + args.batch_size]
            loss_sum += step(model, opt, xtr[idx], ytr[idx]).item()
            if scheduler:
                scheduler.step()
            batches += 1
        seconds = time.perf_counter() - t0
        model.eval()
        correct = 0
        with torch.no_grad(), autocast():
            for i in range(0, len(yte), 500):
                correct += (model(xte[i : i + 500]).argmax(1) == yte[i : i + 500]).sum().item()
        accuracy = 100.0 * correct / len(yte)
        row = {"epoch": epoch, "train_loss": round(loss_sum / batches, 4), "test_accuracy": round(accuracy, 2),
               "train_seconds": round(seconds, 1), "img_per_s": round(len(ytr) / seconds, 1)}
        epochs.append(row)
        print(f"epoch {epoch}: train loss {row['train_loss']:.4f}, test accuracy {accuracy:.2f}%, "
              f"{row['train_seconds']} s ({row['img_per_s']} img/s)", flush=True)
    result = {"library": "pytorch", "version": torch.__version__, "model": "resnet18", "stem": args.stem,
              "precision": args.precision, "seed": args.seed, "threads": threads, "thread_trials_ms": trials,
              "batch_size": args.batch_size, "lr": args.lr, "lr_schedule": args.lr_schedule, "momentum": args.momentum, "epochs": epochs,
              "test_accuracy": epochs[-1]["test_accuracy"]}
    print(json.dumps(result))
    if args.json_out:
        with open(args.json_out + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(args.json_out + ".tmp", args.json_out)


if __name__ == "__main__":
    main()
