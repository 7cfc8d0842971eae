#!/usr/bin/python3
"""PyTorch peer of `mixprec bench train --model gpt`: the same GPT step on the CPU.

    /usr/bin/python3 bench/torch_gpt.py [--precisions fp32,fp16,bf16] [--steps 10] [--warmup 3] [--threads best|N]
                                        [--n-layer 4] [--n-head 4] [--n-embd 128] [--block-size 64]
                                        [--batch-size 12] [--vocab-size 65]

The model is nanoGPT's (tools/nanogpt_model.py; PyTorch 1.13 has no scaled_dot_product_attention,
so attention is nanoGPT's explicit path), bias False, dropout 0; random token blocks
[batch, block] of the vocabulary; AdamW with nanoGPT's groups (lr 1e-3, betas 0.9/0.99, weight
decay 0.1 on the 2-D weights); clip_grad_norm_ 1; each step reads its loss (.item()), as mixprec's.
fp32; bf16 through torch.autocast("cpu", dtype=torch.bfloat16); fp16 through
torch.autocast("cpu", dtype=torch.float16) with a GradScaler, which PyTorch 1.13 refuses on the CPU:
that precision's result then carries the error instead of a time.

At its best (bench/peer_common.py): the thread count given, or by default the faster of 1 and every
core per precision (timed over a few steps), warm-up steps before the clock, and the allocator warmed
as in a process that has loaded its data (one ~30 MB block malloc'ed and freed at start). Prints one
JSON object.
"""
import argparse
import json
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tools'))
from nanogpt_model import GPT  # noqa: E402
from peer_common import set_threads, thread_arg, warm_allocator  # noqa: E402


def make_step(a, precision):
    torch.manual_seed(0)
    config = dict(n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd, block_size=a.block_size, bias=False, vocab_size=a.vocab_size, dropout=0.0)
    model = GPT(config)
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    x = torch.randint(0, a.vocab_size, (a.batch_size, a.block_size))
    y = torch.randint(0, a.vocab_size, (a.batch_size, a.block_size))
    dtype = {'fp16': torch.float16, 'bf16': torch.bfloat16}.get(precision)
    scaler = torch.cuda.amp.GradScaler(enabled=False)  # a CPU GradScaler does not exist in 1.13

    def step():
        opt.zero_grad(set_to_none=True)
        if dtype is None:
            _, loss = model(x, y)
        else:
            with torch.autocast('cpu', dtype=dtype):
                _, loss = model(x, y)
        scaler.scale(loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    if precision == 'fp16':
        # PyTorch 1.13's CPU autocast knows only bfloat16: for float16 it warns and runs float32.
        # Time nothing under the fp16 label then; say why, and that the other route (the whole model
        # in float16) fails too.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try:
                with torch.autocast('cpu', dtype=torch.float16):
                    refused = None if torch.is_autocast_cpu_enabled() else 'autocast disabled'
            except RuntimeError as e:
                refused = str(e)
        if refused is not None:
            if caught:
                refused = f'{caught[-1].message}; {refused}'.replace('\n', ' ')
            try:
                GPT(config).half()(x, y)
                half = 'a float16 model runs'
            except RuntimeError as e:
                half = f'a float16 model fails: {e}'
            raise RuntimeError(f'PyTorch {torch.__version__} on the CPU: float16 autocast is refused ({refused}); {half}')
    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--precisions', default='fp32,fp16,bf16')
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--threads', type=thread_arg, default='best', help="a count, or 'best' (the faster of 1 and every core, per precision)")
    ap.add_argument('--n-layer', type=int, default=4)
    ap.add_argument('--n-head', type=int, default=4)
    ap.add_argument('--n-embd', type=int, default=128)
    ap.add_argument('--block-size', type=int, default=64)
    ap.add_argument('--batch-size', type=int, default=12)
    ap.add_argument('--vocab-size', type=int, default=65)
    a = ap.parse_args()
    warm_allocator()
    results = []
    for precision in a.precisions.split(','):
        try:
            step = make_step(a, precision)
        except RuntimeError as e:
            results.append({'precision': precision, 'error': str(e).split('\n')[0]})
            continue
        threads, trials = set_threads(torch, a.threads, step)
        for _ in range(a.warmup):
            step()
        t0 = time.perf_counter()
        loss = 0.0
        for _ in range(a.steps):
            loss = step()
        seconds = (time.perf_counter() - t0) / a.steps
        results.append({'precision': precision, 'step_ms': round(seconds * 1000, 2), 'tokens_per_s': round(a.batch_size * a.block_size / seconds, 1), 'loss': round(loss, 5), 'threads': threads, **({'thread_trials_ms': trials} if trials else {})})
    print(json.dumps({'peer': 'pytorch', 'torch': torch.__version__, 'threads': a.threads if a.threads != 'best' else max(r.get('threads', 1) for r in results), 'model': 'gpt', 'n_layer': a.n_layer, 'n_head': a.n_head,
                      'n_embd': a.n_embd, 'block_size': a.block_size, 'batch_size': a.batch_size, 'steps': a.steps, 'warmup': a.warmup,
                      'load_avg_1m': round(os.getloadavg()[0], 2), 'results': results}))


if __name__ == '__main__':
    main()
