#!/usr/bin/python3
"""Generate test/fixtures/more/more.json: PyTorch references of the ops in src/ops/math.ts and
src/nn/functional_more.ts (read by test/ops_more.test.ts).

Run with the Debian python that has numpy and torch 1.13 (the PATH python3 may lack them):

    /usr/bin/python3 tools/gen_more_fixtures.py

Deterministic: each case draws its data from a torch.Generator seeded with crc32 of the case id.

Each case: ``op`` (the key of the call table in test/ops_more.test.ts; the PyTorch call is the
``fn`` below, kept in sync by hand), ``args`` (non-tensor arguments, camelCase), ``inputs``
(name -> {kind: float|bool, shape, grad}; bool inputs carry ``data``) and, per dtype
(float32, float16, bfloat16), ``inputs`` (float data, rounded to the dtype for 16-bit cases and
written as float32 numbers), ``gradOutput`` (normal, rounded likewise), ``output`` and ``grads``:
PyTorch evaluated in float64 on those exact values and rounded once to float32. Ops returning two
tensors (lstmCell) are compared as torch.stack of the two.

Inputs are drawn away from kinks (prelu/smoothL1/softplus thresholds), ties (inf-norms) and poles
(reciprocal, addcdiv, atan2 at the origin), so every dtype's rounding keeps the same branch.
Encoding: finite numbers as JSON numbers (shortest text reading back as the float32), NaN and
infinities as the strings "nan", "inf", "-inf".
"""

import json
import math
import os
import warnings
import zlib

import numpy as np

from fixture_json import enc, enc_list
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, 'test', 'fixtures', 'more')
OUT_FILE = os.path.join(OUT_DIR, 'more.json')

DTYPES = ['float32', 'float16', 'bfloat16']
TORCH_DT = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}
F64 = torch.float64


def round_to(a, dtype):
    t = torch.from_numpy(np.asarray(a, dtype=np.float32).copy())
    return t.to(TORCH_DT[dtype]).to(torch.float32).numpy()


# ----------------------------------------------------------------------------------- data

def normal(scale=1.0):
    return lambda rng, shape: (torch.randn(shape, generator=rng) * scale).numpy()


def uniform(lo, hi):
    return lambda rng, shape: (lo + (hi - lo) * torch.rand(shape, generator=rng)).numpy()


def sign_uniform(lo, hi):
    """|x| uniform in [lo, hi], random sign."""
    def g(rng, shape):
        mag = lo + (hi - lo) * torch.rand(shape, generator=rng)
        s = torch.where(torch.rand(shape, generator=rng) < 0.5, -1.0, 1.0)
        return (mag * s).numpy()
    return g


def distinct_abs(scale=0.125, offset=2):
    """Random signs on a permutation of (k + offset) * scale: distinct |x|, exact in every dtype."""
    def g(rng, shape):
        n = int(np.prod(shape))
        k = torch.randperm(n, generator=rng).to(torch.float32) + offset
        s = torch.where(torch.rand(n, generator=rng) < 0.5, -1.0, 1.0)
        return (k * scale * s).reshape(shape).numpy()
    return g


def with_zeros(base, positions):
    """base data with exact zeros at the given flat positions (prod's zero gradients)."""
    def g(rng, shape):
        a = base(rng, shape).reshape(-1)
        for p in positions:
            a[p] = 0.0
        return a.reshape(shape)
    return g


def log_probs(dim):
    return lambda rng, shape: torch.log_softmax(torch.randn(shape, generator=rng, dtype=F64), dim).float().numpy()


def probs(dim):
    return lambda rng, shape: torch.softmax(torch.randn(shape, generator=rng, dtype=F64), dim).float().numpy()


class T:
    def __init__(self, shape, gen=None, grad=True):
        self.shape, self.gen, self.grad = list(shape), gen or normal(), grad


class B:
    def __init__(self, data):
        a = np.asarray(data, dtype=bool)
        self.shape, self.data = list(a.shape), [int(v) for v in a.reshape(-1)]


# ----------------------------------------------------------------------------------- the PyTorch side

def sdpa(q, k, v, attnMask=None, isCausal=False, scale=None, **_):
    L, S = q.shape[-2], k.shape[-2]
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * s
    if isCausal:
        scores = scores.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(0), float('-inf'))
    if attnMask is not None:
        scores = scores.masked_fill(~attnMask, float('-inf')) if attnMask.dtype == torch.bool else scores + attnMask
    return torch.softmax(scores, -1) @ v


def vnorm(x, p=2, dim=None, keepdim=False):
    return torch.linalg.vector_norm(x, ord=p, dim=dim, keepdim=keepdim)


FNS = {
    'reciprocal': lambda i, a: torch.reciprocal(i['x']),
    'softplus': lambda i, a: F.softplus(i['x'], beta=a.get('beta', 1), threshold=a.get('threshold', 20)),
    'prod': lambda i, a: torch.prod(i['x']) if a.get('dim') is None else torch.prod(i['x'], a['dim'], keepdim=a.get('keepdim', False)),
    'cumsum': lambda i, a: torch.cumsum(i['x'], a['dim']),
    'atan2': lambda i, a: torch.atan2(i['a'], i['b']),
    'addcmul': lambda i, a: torch.addcmul(i['input'], i['t1'], i['t2'], value=a.get('value', 1)),
    'addcdiv': lambda i, a: torch.addcdiv(i['input'], i['t1'], i['t2'], value=a.get('value', 1)),
    'dot': lambda i, a: torch.dot(i['a'], i['b']),
    'mm': lambda i, a: torch.mm(i['a'], i['b']),
    'addmm': lambda i, a: torch.addmm(i['input'], i['a'], i['b'], beta=a.get('beta', 1), alpha=a.get('alpha', 1)),
    'baddbmm': lambda i, a: torch.baddbmm(i['input'], i['a'], i['b'], beta=a.get('beta', 1), alpha=a.get('alpha', 1)),
    'norm': lambda i, a: vnorm(i['x'], float(a.get('p', 2)), a.get('dim'), a.get('keepdim', False)),
    'cosineSimilarity': lambda i, a: F.cosine_similarity(i['x1'], i['x2'], dim=a.get('dim', 1), eps=a.get('eps', 1e-8)),
    'conv1d': lambda i, a: F.conv1d(i['x'], i['w'], i.get('b'), stride=a.get('stride', 1), padding=a.get('padding', 0),
                                    dilation=a.get('dilation', 1), groups=a.get('groups', 1)),
    'prelu': lambda i, a: F.prelu(i['x'], i['w']),
    'groupNorm': lambda i, a: F.group_norm(i['x'], a['numGroups'], i.get('weight'), i.get('bias'), eps=a.get('eps', 1e-5)),
    'smoothL1Loss': lambda i, a: F.smooth_l1_loss(i['input'], i['target'], reduction=a.get('reduction', 'mean'), beta=a.get('beta', 1.0)),
    'klDiv': lambda i, a: F.kl_div(i['input'], i['target'], reduction=a.get('reduction', 'mean'), log_target=a.get('logTarget', False)),
    'lstmCell': lambda i, a: torch.stack(torch.lstm_cell(i['x'], (i['h'], i['c']), i['wIh'], i['wHh'], i.get('bIh'), i.get('bHh'))),
    'gruCell': lambda i, a: torch.gru_cell(i['x'], i['h'], i['wIh'], i['wHh'], i.get('bIh'), i.get('bHh')),
    'sdpa': lambda i, a: sdpa(i['q'], i['k'], i['v'], attnMask=i.get('mask'), **a),
}


# ----------------------------------------------------------------------------------- the cases

def smooth_pair(beta):
    """(input, target) data whose differences d stay >= 0.1 away from +-beta (and from 0 when beta = 0)."""
    def make(rng, shape):
        x = torch.randn(shape, generator=rng)
        inside = torch.rand(shape, generator=rng) < 0.5
        u = torch.rand(shape, generator=rng)
        d = torch.where(inside, (beta - 0.1) * u, beta + 0.1 + u) if beta > 0 else 0.1 + u
        s = torch.where(torch.rand(shape, generator=rng) < 0.5, -1.0, 1.0)
        return x.numpy(), (x - s * d).numpy()
    return make


CASES = [
    ('reciprocal', 'reciprocal', {}, {'x': T([3, 4], sign_uniform(0.5, 2))}),
    ('softplus', 'softplus', {}, {'x': T([3, 5], uniform(-4, 4))}),
    ('softplus_beta_threshold', 'softplus', {'beta': 2, 'threshold': 3}, {'x': T([20], sign_uniform(0.1, 1.45))}),
    ('softplus_linear_branch', 'softplus', {'beta': 0.5, 'threshold': 1}, {'x': T([12], uniform(2.2, 6))}),
    ('prod_all', 'prod', {}, {'x': T([2, 3], sign_uniform(0.5, 1.5))}),
    ('prod_dim1_keepdim', 'prod', {'dim': 1, 'keepdim': True}, {'x': T([3, 4], sign_uniform(0.5, 1.5))}),
    ('prod_zeros', 'prod', {'dim': 1}, {'x': T([3, 4], with_zeros(sign_uniform(0.5, 1.5), [1, 5, 6]))}),
    ('prod_dim0_3d', 'prod', {'dim': 0}, {'x': T([3, 2, 2], sign_uniform(0.5, 1.5))}),
    ('cumsum_dim1', 'cumsum', {'dim': 1}, {'x': T([3, 5])}),
    ('cumsum_dim0_3d', 'cumsum', {'dim': 0}, {'x': T([4, 2, 3])}),
    ('cumsum_neg_dim', 'cumsum', {'dim': -1}, {'x': T([2, 3, 4])}),
    ('atan2', 'atan2', {}, {'a': T([3, 4], sign_uniform(0.2, 2)), 'b': T([3, 4], sign_uniform(0.2, 2))}),
    ('atan2_broadcast', 'atan2', {}, {'a': T([3, 1], sign_uniform(0.2, 2)), 'b': T([4], sign_uniform(0.2, 2))}),
    ('addcmul', 'addcmul', {'value': 0.5}, {'input': T([3, 4]), 't1': T([3, 4]), 't2': T([3, 4])}),
    ('addcmul_broadcast', 'addcmul', {}, {'input': T([4]), 't1': T([3, 1]), 't2': T([3, 4])}),
    ('addcdiv', 'addcdiv', {'value': -2}, {'input': T([3, 4]), 't1': T([3, 4]), 't2': T([3, 4], sign_uniform(0.5, 2))}),
    ('addcdiv_broadcast', 'addcdiv', {}, {'input': T([3, 1]), 't1': T([4]), 't2': T([3, 4], sign_uniform(0.5, 2))}),
    ('dot', 'dot', {}, {'a': T([7]), 'b': T([7])}),
    ('mm', 'mm', {}, {'a': T([3, 4]), 'b': T([4, 5])}),
    ('addmm', 'addmm', {}, {'input': T([3, 5]), 'a': T([3, 4]), 'b': T([4, 5])}),
    ('addmm_broadcast_beta_alpha', 'addmm', {'beta': 0.5, 'alpha': 2}, {'input': T([5]), 'a': T([3, 4]), 'b': T([4, 5])}),
    ('baddbmm', 'baddbmm', {'beta': -1, 'alpha': 0.25}, {'input': T([2, 3, 5]), 'a': T([2, 3, 4]), 'b': T([2, 4, 5])}),
    ('baddbmm_broadcast', 'baddbmm', {}, {'input': T([1, 5]), 'a': T([2, 3, 4]), 'b': T([2, 4, 5])}),
    ('norm2_all', 'norm', {}, {'x': T([3, 4])}),
    ('norm1_dim1', 'norm', {'p': 1, 'dim': 1}, {'x': T([3, 4], sign_uniform(0.2, 2))}),
    ('norm_inf_dim1_keepdim', 'norm', {'p': 'inf', 'dim': 1, 'keepdim': True}, {'x': T([3, 4], distinct_abs())}),
    ('norm_neginf_dim0', 'norm', {'p': '-inf', 'dim': 0}, {'x': T([3, 4], distinct_abs())}),
    ('norm3_dim0', 'norm', {'p': 3, 'dim': 0}, {'x': T([3, 4], sign_uniform(0.2, 2))}),
    ('norm_half_dims', 'norm', {'p': 0.5, 'dim': [0, 2]}, {'x': T([2, 3, 2], sign_uniform(0.2, 2))}),
    ('norm0', 'norm', {'p': 0, 'dim': 1}, {'x': T([3, 4], with_zeros(sign_uniform(0.2, 2), [0, 5, 7]))}),
    ('cosineSimilarity', 'cosineSimilarity', {}, {'x1': T([4, 6]), 'x2': T([4, 6])}),
    ('cosineSimilarity_broadcast', 'cosineSimilarity', {'dim': -1}, {'x1': T([3, 1, 5]), 'x2': T([4, 5])}),
    ('conv1d', 'conv1d', {}, {'x': T([2, 3, 8]), 'w': T([4, 3, 3]), 'b': T([4])}),
    ('conv1d_groups_stride_pad_dil', 'conv1d', {'stride': 2, 'padding': 1, 'dilation': 2, 'groups': 2},
     {'x': T([2, 4, 9]), 'w': T([6, 2, 3])}),
    ('prelu_channels', 'prelu', {}, {'x': T([2, 3, 4], sign_uniform(0.2, 2)), 'w': T([3], uniform(0.05, 0.5))}),
    ('prelu_single', 'prelu', {}, {'x': T([4, 5], sign_uniform(0.2, 2)), 'w': T([1], uniform(0.05, 0.5))}),
    ('groupNorm_affine', 'groupNorm', {'numGroups': 3}, {'x': T([2, 6, 5]), 'weight': T([6]), 'bias': T([6])}),
    ('groupNorm_plain_4d', 'groupNorm', {'numGroups': 2, 'eps': 1e-3}, {'x': T([2, 4, 3, 2])}),
    ('smoothL1Loss_mean', 'smoothL1Loss', {}, {'input': T([4, 5]), 'target': T([4, 5])}),
    ('smoothL1Loss_none_beta', 'smoothL1Loss', {'reduction': 'none', 'beta': 0.5}, {'input': T([3, 4]), 'target': T([3, 4])}),
    ('smoothL1Loss_sum_beta0', 'smoothL1Loss', {'reduction': 'sum', 'beta': 0.0}, {'input': T([3, 4]), 'target': T([3, 4])}),
    ('klDiv_batchmean', 'klDiv', {'reduction': 'batchmean'}, {'input': T([3, 5], log_probs(1)), 'target': T([3, 5], probs(1))}),
    ('klDiv_mean', 'klDiv', {}, {'input': T([3, 5], log_probs(1)), 'target': T([3, 5], probs(1))}),
    ('klDiv_none_logTarget', 'klDiv', {'reduction': 'none', 'logTarget': True},
     {'input': T([3, 4], log_probs(1)), 'target': T([3, 4], log_probs(1))}),
    ('klDiv_sum', 'klDiv', {'reduction': 'sum'}, {'input': T([2, 4], log_probs(1)), 'target': T([2, 4], probs(1))}),
    ('lstmCell', 'lstmCell', {}, {'x': T([3, 5]), 'h': T([3, 4]), 'c': T([3, 4]), 'wIh': T([16, 5], normal(0.5)),
                                  'wHh': T([16, 4], normal(0.5)), 'bIh': T([16]), 'bHh': T([16])}),
    ('lstmCell_nobias', 'lstmCell', {}, {'x': T([2, 3]), 'h': T([2, 2]), 'c': T([2, 2]), 'wIh': T([8, 3]), 'wHh': T([8, 2])}),
    ('gruCell', 'gruCell', {}, {'x': T([3, 5]), 'h': T([3, 4]), 'wIh': T([12, 5], normal(0.5)), 'wHh': T([12, 4], normal(0.5)),
                                'bIh': T([12]), 'bHh': T([12])}),
    ('gruCell_nobias', 'gruCell', {}, {'x': T([2, 3]), 'h': T([2, 2]), 'wIh': T([6, 3]), 'wHh': T([6, 2])}),
    ('sdpa', 'sdpa', {}, {'q': T([2, 3, 4]), 'k': T([2, 5, 4]), 'v': T([2, 5, 6])}),
    ('sdpa_causal_scale', 'sdpa', {'isCausal': True, 'scale': 0.3}, {'q': T([2, 2, 4, 3]), 'k': T([2, 2, 4, 3]), 'v': T([2, 2, 4, 2])}),
    ('sdpa_bool_mask', 'sdpa', {}, {'q': T([2, 3, 4]), 'k': T([2, 5, 4]), 'v': T([2, 5, 2]),
                                    'mask': B([[1, 0, 1, 1, 0], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]])}),
    ('sdpa_float_mask', 'sdpa', {}, {'q': T([3, 4]), 'k': T([5, 4]), 'v': T([5, 3]), 'mask': T([3, 5], grad=True)}),
]


def seed_for(case_id, dtype=''):
    return zlib.crc32((case_id + dtype).encode()) & 0x7FFFFFFF


def torch_args(args):
    a = dict(args)
    if a.get('p') in ('inf', '-inf'):
        a['p'] = float(a['p'])
    return a


def build_case(case_id, op, args, specs):
    rng = torch.Generator().manual_seed(seed_for(case_id))
    base = {}
    smooth = None
    if op == 'smoothL1Loss':
        smooth = smooth_pair(args.get('beta', 1.0))(rng, specs['input'].shape)
    for name, s in specs.items():
        if isinstance(s, T):
            base[name] = s.gen(rng, s.shape).astype(np.float32)
    if smooth is not None:
        base['input'], base['target'] = smooth[0].astype(np.float32), smooth[1].astype(np.float32)
    out = {'id': case_id, 'op': op, 'args': args, 'inputs': {}, 'dtypes': {}}
    for name, s in specs.items():
        if isinstance(s, T):
            out['inputs'][name] = {'kind': 'float', 'shape': s.shape, 'grad': s.grad}
        else:
            out['inputs'][name] = {'kind': 'bool', 'shape': s.shape, 'data': s.data}
    grad_rng = torch.Generator().manual_seed(seed_for(case_id, 'grad'))
    grad_out = None
    for dtype in DTYPES:
        data = {n: round_to(v, dtype) for n, v in base.items()}
        tensors = {}
        for name, s in specs.items():
            if isinstance(s, T):
                tensors[name] = torch.tensor(data[name], dtype=F64, requires_grad=s.grad)
            else:
                tensors[name] = torch.tensor(np.asarray(s.data, dtype=bool).reshape(s.shape))
        y = FNS[op](tensors, torch_args(args))
        if grad_out is None:
            grad_out = torch.randn(y.shape, generator=grad_rng).numpy()
        g = round_to(grad_out, dtype)
        y.backward(torch.tensor(g, dtype=F64))
        out['dtypes'][dtype] = {
            'inputs': {n: enc_list(v) for n, v in data.items()},
            'gradOutput': enc_list(g),
            'outputShape': list(y.shape),
            'output': enc_list(y.detach().numpy()),
            'grads': {n: enc_list(t.grad.numpy() if t.grad is not None else np.zeros(t.shape)) for n, t in tensors.items() if isinstance(specs[n], T) and specs[n].grad},
        }
    return out


def main():
    warnings.filterwarnings('ignore', message="reduction: 'mean' divides")
    cases = [build_case(*c) for c in CASES]
    os.makedirs(OUT_DIR, exist_ok=True)
    doc = {'generator': 'tools/gen_more_fixtures.py', 'torch': torch.__version__, 'numpy': np.__version__, 'cases': cases}
    with open(OUT_FILE, 'w') as f:
        json.dump(doc, f, separators=(',', ':'))
        f.write('\n')
    print(f'wrote {len(cases)} cases to {os.path.relpath(OUT_FILE, ROOT)}')


if __name__ == '__main__':
    main()
