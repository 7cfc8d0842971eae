#!/usr/bin/python3
"""nanoGPT's CPU recipe in PyTorch 1.13 from a chosen start: the twin of `mixprec train-gpt`.

    /usr/bin/python3 tools/gpt_same_start.py OUT_DIR [--threads N]         # mixprec's start
    /usr/bin/python3 tools/gpt_same_start.py OUT_DIR --torch-seed S [--data FILE.txt]

With OUT_DIR alone (written by tools/gpt_same_start.mjs, step 1 of 2) it trains from mixprec's initial
weights (OUT_DIR/init.pt) on mixprec's batches (OUT_DIR/batches.json). With --torch-seed it is
nanoGPT's train.py itself: torch.manual_seed(S), the model built and initialised under it, and every
batch (training and estimate_loss) drawn by torch.randint from the same generator in train.py's order.
Both train nanoGPT's model (tools/nanogpt_model.py) with nanoGPT's loop (configure_optimizers' AdamW
groups, weight decay 0.1, betas (0.9, 0.99), get_lr's warm-up and cosine schedule, clipping at 1.0),
print estimate_loss at every evaluation and, at the end, the loss over the whole validation split
(every character predicted once, in consecutive windows of the block size: no sampling noise).
Writes OUT_DIR/torch.json and the trained weights OUT_DIR/final.pt.
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nanogpt_model import GPT  # noqa: E402

RECIPE = {'nLayer': 4, 'nHead': 4, 'nEmbd': 128, 'blockSize': 64, 'batchSize': 12, 'maxIters': 2000, 'evalInterval': 250, 'evalIters': 20}

ap = argparse.ArgumentParser()
ap.add_argument('out')
ap.add_argument('--threads', type=int, default=1)
ap.add_argument('--torch-seed', type=int, default=None)
ap.add_argument('--data', default='../shared/datasets/tinyshakespeare.txt')
a = ap.parse_args()
torch.set_num_threads(a.threads)
os.makedirs(a.out, exist_ok=True)
native = a.torch_seed is not None
b = None if native else json.load(open(os.path.join(a.out, 'batches.json')))
r = RECIPE if native else b['recipe']
text = open(a.data if native else b['data'], encoding='utf-8').read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data))
splits = {'train': data[:n], 'val': data[n:]}
T, B = r['blockSize'], r['batchSize']
if native:
    torch.manual_seed(a.torch_seed)
model = GPT(dict(n_layer=r['nLayer'], n_head=r['nHead'], n_embd=r['nEmbd'], block_size=T, bias=False, vocab_size=len(chars), dropout=0.0))
if not native:
    keys = model.load_state_dict(torch.load(os.path.join(a.out, 'init.pt')), strict=False)
    assert not keys.unexpected_keys and all(k.endswith('attn.bias') for k in keys.missing_keys), keys  # only the causal-mask buffers


def batch(split, offsets):
    d = splits[split]
    return torch.stack([d[i:i + T] for i in offsets]), torch.stack([d[i + 1:i + 1 + T] for i in offsets])


def draw(split):
    """nanoGPT's get_batch: offsets from the global generator."""
    return torch.randint(len(splits[split]) - T, (B,)).tolist()


def train_offsets(it):
    return draw('train') if native else b['train'][it]


def eval_offsets(it, split):
    return [draw(split) for _ in range(r['evalIters'])] if native else b['evals'][str(it)][split]


def get_lr(it, lr=1e-3, min_lr=1e-4, warmup=100, decay=2000):
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > decay:
        return min_lr
    ratio = (it - warmup) / (decay - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


@torch.no_grad()
def whole_split_loss(split):
    d = splits[split]
    count = (len(d) - 1) // T
    total = 0.0
    for w in range(0, count, 256):
        offsets = [k * T for k in range(w, min(count, w + 256))]
        total += model(*batch(split, offsets))[1].item() * len(offsets)
    return total / count


opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
result = {'start': f'torch seed {a.torch_seed}' if native else f"mixprec seed {b['seed']}", 'evals': {}, 'losses': []}
# train.py draws its first batch before the loop, then the next one after each forward pass
next_offsets = train_offsets(0)
for it in range(r['maxIters'] + 1):
    if it % r['evalInterval'] == 0:
        model.eval()
        with torch.no_grad():
            est = {}
            for s in ('train', 'val'):
                offs = eval_offsets(it, s)
                est[s] = sum(model(*batch(s, o))[1].item() for o in offs) / len(offs)
        model.train()
        result['evals'][it] = est
        print(f"iter {it}: train loss {est['train']:.7f}, val loss {est['val']:.7f}", flush=True)
    if it == r['maxIters']:
        break
    for group in opt.param_groups:
        group['lr'] = get_lr(it)
    _, loss = model(*batch('train', next_offsets))
    if native or it + 1 < r['maxIters']:  # train.py draws one more after the last step
        next_offsets = train_offsets(it + 1)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    result['losses'].append(loss.item())
model.eval()
result['whole_val_loss'] = whole_split_loss('val')
print(f"whole validation split: loss {result['whole_val_loss']:.7f}", flush=True)
json.dump(result, open(os.path.join(a.out, 'torch.json'), 'w'))
torch.save(model.state_dict(), os.path.join(a.out, 'final.pt'))
