#!/usr/bin/python3
"""The PyTorch twin of one `mixprec train-gpt` run, step 2 of 2 (step 1: tools/gpt_same_start.mjs).

    /usr/bin/python3 tools/gpt_same_start.py OUT_DIR [THREADS]

Trains nanoGPT's model (tools/nanogpt_model.py) with nanoGPT's loop (configure_optimizers' AdamW
groups, weight decay 0.1, betas (0.9, 0.99), get_lr's warm-up and cosine schedule, clipping at 1.0)
from mixprec's initial weights (OUT_DIR/init.pt) on mixprec's batches (OUT_DIR/batches.json), and
prints estimate_loss at every evaluation, to set beside the run's --log-json eval lines. Writes
OUT_DIR/torch.json.
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nanogpt_model import GPT  # noqa: E402

out = sys.argv[1]
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
b = json.load(open(os.path.join(out, 'batches.json')))
r = b['recipe']
text = open(b['data'], encoding='utf-8').read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data))
splits = {'train': data[:n], 'val': data[n:]}
T = r['blockSize']
model = GPT(dict(n_layer=r['nLayer'], n_head=r['nHead'], n_embd=r['nEmbd'], block_size=T, bias=False, vocab_size=len(chars), dropout=0.0))
keys = model.load_state_dict(torch.load(os.path.join(out, 'init.pt')), strict=False)
assert not keys.unexpected_keys and all(k.endswith('attn.bias') for k in keys.missing_keys), keys  # only the causal-mask buffers


def batch(split, offsets):
    d = splits[split]
    return torch.stack([d[i:i + T] for i in offsets]), torch.stack([d[i + 1:i + 1 + T] for i in offsets])


def get_lr(it, lr=1e-3, min_lr=1e-4, warmup=100, decay=2000):
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > decay:
        return min_lr
    ratio = (it - warmup) / (decay - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
result = {'evals': {}, 'losses': []}
for it in range(len(b['train']) + 1):
    if str(it) in b['evals']:
        model.eval()
        with torch.no_grad():
            est = {s: sum(model(*batch(s, o))[1].item() for o in b['evals'][str(it)][s]) / len(b['evals'][str(it)][s]) for s in ('train', 'val')}
        model.train()
        result['evals'][it] = est
        print(f"iter {it}: train loss {est['train']:.7f}, val loss {est['val']:.7f}", flush=True)
    if it == len(b['train']):
        break
    for group in opt.param_groups:
        group['lr'] = get_lr(it)
    _, loss = model(*batch('train', b['train'][it]))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    result['losses'].append(loss.item())
json.dump(result, open(os.path.join(out, 'torch.json'), 'w'))
