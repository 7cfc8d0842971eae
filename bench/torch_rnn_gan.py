#!/usr/bin/env python3
"""PyTorch peer of bench/rnn-gan-step.mjs: the README's two recipes, one training step each, on the CPU.

    /usr/bin/python3 bench/torch_rnn_gan.py [--model lstm|dcgan] [--steps 20] [--warmup 10]
                                            [--precisions fp32,bf16] [--threads best|N]

lstm: Embedding(65, 64) -> LSTM(64, 256, 2 layers) -> Linear(256, 65) on random ids [64, 32]
(seq 64, batch 32), cross-entropy, AdamW lr 0.002 wd 0.01, gradient clipping at norm 1 (the
`mixprec train-lm` recipe). dcgan: the `mixprec train-gan` networks at width 32 on random images
[64, 3, 32, 32], BCE with logits, two Adam (lr 2e-4, betas 0.5/0.999), D step then G step.
fp32, and bf16 through torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch 1.13's CPU autocast
has no float16). Each step reads its loss (.item()), as mixprec's does. The peer at its best
(bench/peer_common.py): the allocator warmed at start (one ~30 MB malloc block freed, as in a process
that has loaded its data) and, by default, per precision the faster of 1 and every core over a few
steps. Prints one JSON object.
"""
import argparse
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_common import set_threads, thread_arg, warm_allocator


class CharLSTM(nn.Module):
    def __init__(self, vocab=65, embed=64, hidden=256, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, layers)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids):
        y, _ = self.lstm(self.embed(ids))
        return self.head(y)


def generator(w, nz=100):
    up = lambda i, o: nn.ConvTranspose2d(i, o, 4, 2, 1, bias=False)
    return nn.Sequential(nn.ConvTranspose2d(nz, w * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(w * 4), nn.ReLU(True),
                         up(w * 4, w * 2), nn.BatchNorm2d(w * 2), nn.ReLU(True),
                         up(w * 2, w), nn.BatchNorm2d(w), nn.ReLU(True), up(w, 3), nn.Tanh())


def discriminator(w):
    down = lambda i, o: nn.Conv2d(i, o, 4, 2, 1, bias=False)
    return nn.Sequential(down(3, w), nn.LeakyReLU(0.2, True), down(w, w * 2), nn.BatchNorm2d(w * 2), nn.LeakyReLU(0.2, True),
                         down(w * 2, w * 4), nn.BatchNorm2d(w * 4), nn.LeakyReLU(0.2, True), nn.Conv2d(w * 4, 1, 4, 1, 0, bias=False))


def lstm_step(precision):
    model = CharLSTM()
    opt = torch.optim.AdamW(model.parameters(), lr=0.002, weight_decay=0.01)
    ids = torch.randint(0, 65, (65, 32))

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(ids[:64])
            loss = F.cross_entropy(logits.reshape(-1, 65).float(), ids[1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    return step, 64 * 32, "chars"


def dcgan_step(precision):
    G, D = generator(32), discriminator(32)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(64, 3, 32, 32) * 2 - 1
    ones, zeros = torch.ones(64), torch.zeros(64)
    bce = F.binary_cross_entropy_with_logits

    def step():
        cast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
        optD.zero_grad()
        with cast:
            fake = G(torch.randn(64, 100, 1, 1))
            loss_d = bce(D(real).view(-1).float(), ones) + bce(D(fake.detach()).view(-1).float(), zeros)
        loss_d.backward()
        optD.step()
        optG.zero_grad()
        with cast:
            loss_g = bce(D(fake).view(-1).float(), ones)
        loss_g.backward()
        optG.step()
        return loss_d.item() + loss_g.item()

    return step, 1, "iterations"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lstm", choices=["lstm", "dcgan"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--threads", type=thread_arg, default="best", help="a count, or best (the faster of 1 and every core, per precision)")
    a = ap.parse_args()
    warm_allocator()
    torch.manual_seed(0)
    results = []
    for precision in a.precisions.split(","):
        step, units, unit = (lstm_step if a.model == "lstm" else dcgan_step)(precision)
        threads, trials = set_threads(torch, a.threads, step)
        for _ in range(a.warmup):
            step()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        seconds = (time.perf_counter() - t0) / a.steps
        results.append({"precision": precision, "ms_per_step": round(seconds * 1000, 2), f"{unit}_per_s": round(units / seconds, 1), "threads": threads, **({"thread_trials_ms": trials} if trials else {})})
    print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "threads": a.threads, "model": a.model, "malloc_warmup": True, "results": results}))


if __name__ == "__main__":
    main()
