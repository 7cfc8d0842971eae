#!/usr/bin/python3
"""nanoGPT checkpoints written by PyTorch, for test/gpt.test.ts (mx.io.loadTorch + GPT.loadStateDict).

    /usr/bin/python3 tools/gen_nanogpt_fixture.py        (Debian's python3 with torch 1.13)

The model (tools/nanogpt_model.py) is nanoGPT's model.py as it runs on PyTorch < 2.0: no
F.scaled_dot_product_attention, so each attention layer registers its causal mask as the buffer
`attn.bias` [1, 1, block_size, block_size], which lands in the state dict. Each checkpoint is
nanoGPT's train.py layout: {'model', 'optimizer', 'model_args', 'iter_num', 'best_val_loss', 'config'},
written after a few AdamW steps (nanoGPT's configure_optimizers grouping) on random tokens.

Files in test/fixtures/gpt/:
  ckpt.pt                  bias=True, plain keys
  ckpt_compiled_nobias.pt  bias=False, every model key prefixed '_orig_mod.' as torch.compile's
                           wrapper writes them (nanoGPT's sample.py strips the prefix)
  expected.json            per file: model_args, the input ids idx [2, 12], targets, PyTorch's float32
                           logits [2, 12, vocab] for (idx, targets) and the loss
Deterministic (seeded); rerunning gives the same tensors.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_json import enc_list  # noqa: E402
from nanogpt_model import GPT  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, 'test', 'fixtures', 'gpt')


def make(name, bias, compiled, seed):
    torch.manual_seed(seed)
    model_args = dict(n_layer=2, n_head=2, n_embd=16, block_size=16, bias=bias, vocab_size=11, dropout=0.0)
    model = GPT(model_args)
    opt = model.configure_optimizers(0.1, 1e-2, (0.9, 0.99))
    for _ in range(3):  # a few steps: weights off their initial values, optimizer state filled
        x = torch.randint(0, 11, (4, 16))
        _, loss = model(x, torch.roll(x, -1, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    idx = torch.randint(0, 11, (2, 12))
    targets = torch.randint(0, 11, (2, 12))
    targets[1, 3] = -1  # ignored, as nanoGPT's ignore_index
    with torch.no_grad():
        logits, loss = model(idx, targets)
    state = model.state_dict()
    if compiled:
        state = {'_orig_mod.' + k: v for k, v in state.items()}
    checkpoint = {
        'model': state,
        'optimizer': opt.state_dict(),
        'model_args': model_args,
        'iter_num': 3,
        'best_val_loss': torch.tensor(float(loss)),
        'config': {'dataset': 'fixture', 'learning_rate': 1e-2, 'weight_decay': 0.1, 'beta2': 0.99, 'compile': compiled},
    }
    torch.save(checkpoint, os.path.join(OUT_DIR, name))
    return {
        'model_args': model_args,
        'idx': idx.reshape(-1).tolist(),
        'targets': targets.reshape(-1).tolist(),
        'shape': list(logits.shape),
        'logits': enc_list(logits.numpy()),
        'loss': float(loss),
        'keys': list(state.keys()),
    }


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    expected = {
        'ckpt.pt': make('ckpt.pt', bias=True, compiled=False, seed=1337),
        'ckpt_compiled_nobias.pt': make('ckpt_compiled_nobias.pt', bias=False, compiled=True, seed=7),
    }
    with open(os.path.join(OUT_DIR, 'expected.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'files': expected}, f, indent=1)
    print(f'wrote {", ".join(expected)} and expected.json to {OUT_DIR}')


if __name__ == '__main__':
    main()
