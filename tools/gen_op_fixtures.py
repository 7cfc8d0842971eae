#!/usr/bin/python3
"""Generate the op forward/backward fixtures in test/fixtures/ops/ops.json (read by test/ops.test.ts).

Run with the Debian python that has numpy and torch (a pyenv ``python3`` on PATH may lack them):

    /usr/bin/python3 tools/gen_op_fixtures.py

Deterministic: each case draws its data from a torch.Generator seeded with crc32 of the case id
(plus a retry counter, see "checks" below), so running it twice gives an identical file.

What a case holds
  * ``op``: the key of the TypeScript call table in test/ops.test.ts; ``args``: the non-tensor
    arguments of that call (camelCase, as the TS API takes them). The PyTorch call is the
    ``fn`` lambda below; the two are kept in sync by hand.
  * ``inputs``: named operands. ``float`` inputs are stored in their own (leaf) shape, then
    ``view`` is applied on both sides (t, permute, transpose, narrow, expand) to make
    non-contiguous or broadcast operands; the gradient is that of the leaf. ``int32`` / ``bool``
    inputs carry their data inline; ``scalar`` inputs are plain JS numbers.
    ``fixedDtype`` pins an input's dtype (batch-norm running statistics stay float32, as under
    mixed precision); ``after: true`` means the op updates it in place and its new value is checked.
  * ``dtypes.<float32|float16|bfloat16>``: ``inputs`` (the float inputs, already rounded to the
    dtype for 16-bit cases and written as float32 numbers, so the TS side builds the very same
    16-bit tensor), ``gradOutput`` (random normal, rounded likewise), ``output``, ``grads`` and
    ``after`` (the reference results, float32 numbers).

References
  The source of truth is the float32 data; for 16-bit cases the inputs and gradOutput are first
  rounded to the dtype (PyTorch's round-to-nearest-even casts). The reference is then PyTorch on
  those exact values, computed in float64 and rounded once to float32 (so it is PyTorch's float32
  result without float32 accumulation noise). test/ops.test.ts rounds it to the tested dtype and
  compares within the tolerance of the case's ``fwd`` / ``bwd`` kind (see ``gradKinds``: the
  gradient of a broadcast operand of an elementwise op is a sum, so it is a reduction).

Checks
  Inputs avoid points where the op is not differentiable or where rounding would change the
  answer: kinks (relu/abs/leakyRelu at 0, clamp bounds), ties (max/min/argmax/maxPool/maximum/
  minimum) and domain edges (log/sqrt/rsqrt positive). Each case may give ``check``; it must hold
  for the float32, float16 and bfloat16 versions of the inputs, or the case is redrawn.

Encoding: finite numbers as JSON numbers (shortest text that reads back as the float32),
NaN and infinities as the strings "nan", "inf", "-inf".
"""

import json
import math
import os
import sys
import zlib

import numpy as np

from fixture_json import enc, enc_list
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, 'test', 'fixtures', 'ops')
OUT_FILE = os.path.join(OUT_DIR, 'ops.json')

DTYPES = ['float32', 'float16', 'bfloat16']
TORCH_HALF = {'float16': torch.float16, 'bfloat16': torch.bfloat16}
F64 = torch.float64


# ----------------------------------------------------------------------------------- helpers

def round_to(a, dtype):
    """float32 numpy array -> float32 numpy array of the values rounded to `dtype`."""
    a = np.asarray(a, dtype=np.float32)
    if dtype in ('float32', None):
        return a.copy()
    return torch.from_numpy(a.copy()).to(TORCH_HALF[dtype]).to(torch.float32).numpy()


def to_f32(t):
    return t.detach().to(torch.float32).numpy()


# ----------------------------------------------------------------------------------- inputs

class T:
    """A floating point input (leaf of shape `shape`, then `view` applied)."""

    def __init__(self, name, shape, gen=None, view=(), grad=True, fixed=None, after=False):
        self.name, self.shape, self.gen, self.view = name, list(shape), gen or normal(), [list(v) for v in view]
        self.grad, self.fixed, self.after = grad, fixed, after

    def spec(self):
        d = {'name': self.name, 'kind': 'float', 'shape': self.shape, 'grad': self.grad}
        if self.view:
            d['view'] = self.view
        if self.fixed:
            d['fixedDtype'] = self.fixed
        if self.after:
            d['after'] = True
        return d


class I:
    """An int32 input with fixed data."""

    def __init__(self, name, data, shape=None):
        a = np.asarray(data, dtype=np.int64)
        self.name, self.data, self.shape = name, a.reshape(-1).tolist(), list(shape if shape is not None else a.shape)

    def spec(self):
        return {'name': self.name, 'kind': 'int32', 'shape': self.shape, 'data': self.data}


class B:
    """A bool input with fixed data."""

    def __init__(self, name, data, shape=None):
        a = np.asarray(data, dtype=bool)
        self.name, self.data, self.shape = name, [int(v) for v in a.reshape(-1)], list(shape if shape is not None else a.shape)

    def spec(self):
        return {'name': self.name, 'kind': 'bool', 'shape': self.shape, 'data': self.data}


class S:
    """A scalar (JS number) operand."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def spec(self):
        return {'name': self.name, 'kind': 'scalar', 'value': self.value}


# Data generators: (torch.Generator, shape) -> float32 numpy array.

def normal(scale=1.0, away=0.0, mean=0.0):
    def g(rng, shape):
        x = torch.randn(shape, generator=rng, dtype=torch.float32) * scale
        if away > 0:
            x = torch.sign(x) * (away + x.abs())
            x[x == 0] = away
        return (x + mean).numpy()
    return g


def uniform(lo, hi):
    def g(rng, shape):
        return (lo + (hi - lo) * torch.rand(shape, generator=rng, dtype=torch.float32)).numpy()
    return g


def sign_uniform(lo, hi):
    """|x| uniform in [lo, hi], random sign (divisors)."""
    def g(rng, shape):
        mag = lo + (hi - lo) * torch.rand(shape, generator=rng, dtype=torch.float32)
        s = torch.where(torch.rand(shape, generator=rng) < 0.5, -1.0, 1.0)
        return (mag * s).numpy()
    return g


def distinct(scale=0.125):
    """A random permutation of k * scale, k = -n/2 .. n/2 - 1: distinct and exact in every dtype."""
    def g(rng, shape):
        n = int(np.prod(shape))
        assert n <= 512, 'distinct(): values must stay exact in bfloat16'
        k = torch.randperm(n, generator=rng).to(torch.float32) - n // 2
        return (k * scale).reshape(shape).numpy()
    return g


def choice(values):
    """Values drawn from a small set (exact in every dtype): ties on purpose."""
    def g(rng, shape):
        v = torch.tensor(values, dtype=torch.float32)
        return v[torch.randint(len(values), shape, generator=rng)].numpy()
    return g


def probs(dim):
    """Rows of probabilities along `dim` (softmax of normals)."""
    def g(rng, shape):
        return torch.softmax(torch.randn(shape, generator=rng, dtype=torch.float64), dim).to(torch.float32).numpy()
    return g


def apply_view(x, view):
    for v in view:
        kind, a = v[0], v[1:]
        if kind == 't':
            x = x.t()
        elif kind == 'permute':
            x = x.permute(*a[0])
        elif kind == 'transpose':
            x = x.transpose(a[0], a[1])
        elif kind == 'narrow':
            x = x.narrow(a[0], a[1], a[2])
        elif kind == 'expand':
            x = x.expand(*a[0])
        else:
            raise ValueError(kind)
    return x


# ----------------------------------------------------------------------------------- cases

CASES = []


def case(op, cid, inputs, fn, args=None, fwd='elementwise', bwd=None, check=None, dtypes=DTYPES):
    CASES.append(dict(op=op, id=f'{op}/{cid}', inputs=inputs, fn=fn, args=args or {}, fwd=fwd,
                      bwd=bwd or fwd, check=check, dtypes=dtypes))


def away_from(name, points, margin):
    return lambda xs: all(float((xs[name] - p).abs().min()) >= margin for p in points)


def no_ties(a, b, margin):
    return lambda xs: float((xs[a] - xs[b]).abs().min()) >= margin


# ---- elementwise binary
BINARY = {
    'add': lambda a, b: a + b,
    'sub': lambda a, b: a - b,
    'mul': lambda a, b: a * b,
    'div': lambda a, b: a / b,
    'pow': lambda a, b: torch.pow(a, b),
    'maximum': lambda a, b: torch.maximum(a, torch.as_tensor(b, dtype=F64)),
    'minimum': lambda a, b: torch.minimum(a, torch.as_tensor(b, dtype=F64)),
}
for op, f in BINARY.items():
    fn = (lambda f: lambda x: f(x['a'], x['b']))(f)
    ga = uniform(0.5, 2.0) if op == 'pow' else normal()
    gb = sign_uniform(0.5, 2.0) if op == 'div' else normal(0.7) if op == 'pow' else normal()
    chk = no_ties('a', 'b', 0.02) if op in ('maximum', 'minimum') else None
    case(op, 'same_shape', [T('a', [3, 4], ga), T('b', [3, 4], gb)], fn, check=chk)
    case(op, 'broadcast', [T('a', [3, 1, 4], ga), T('b', [2, 4], gb)], fn, check=chk)
    case(op, 'broadcast_both', [T('a', [2, 1, 3], ga), T('b', [4, 1], gb)], fn, check=chk)
    case(op, 'noncontiguous', [T('a', [4, 3], ga, view=[['t']]), T('b', [3, 6], gb, view=[['narrow', 1, 1, 4]])], fn, check=chk)
    case(op, 'expanded_view', [T('a', [3, 4, 2], ga, view=[['permute', [2, 0, 1]]]),
                               T('b', [1, 4], gb, view=[['expand', [3, 4]]])], fn, check=chk)
    if op == 'pow':
        for v in (2, 0.5, -1.5, 3):
            case(op, f'scalar_exponent_{v}', [T('a', [3, 4], ga), S('b', v)], fn)
        case(op, 'scalar_base', [S('a', 2.5), T('b', [3, 4], normal(0.7))], fn)
    elif op in ('maximum', 'minimum'):
        case(op, 'scalar', [T('a', [3, 4], normal()), S('b', 0.25)], fn, check=away_from('a', [0.25], 0.02))
    else:
        case(op, 'scalar_right', [T('a', [3, 4], ga), S('b', 0.1 if op != 'div' else 1.7)], fn)
        case(op, 'scalar_int_right', [T('a', [3, 4], ga), S('b', 3)], fn)
        case(op, 'scalar_left', [S('a', 1.5), T('b', [3, 4], gb)], fn)

# ---- elementwise unary
GAUSS = normal(1.5)
UNARY = [
    ('neg', lambda x: -x, normal(), None, {}),
    ('abs', torch.abs, normal(away=0.02), None, {}),
    ('exp', torch.exp, GAUSS, None, {}),
    ('log', torch.log, uniform(0.1, 4.0), None, {}),
    ('log1p', torch.log1p, uniform(-0.6, 3.0), None, {}),
    ('sqrt', torch.sqrt, uniform(0.1, 4.0), None, {}),
    ('rsqrt', torch.rsqrt, uniform(0.1, 4.0), None, {}),
    ('tanh', torch.tanh, GAUSS, None, {}),
    ('sigmoid', torch.sigmoid, normal(2.0), None, {}),
    ('relu', torch.relu, normal(away=0.02), None, {}),
    ('leakyRelu', lambda x: F.leaky_relu(x), normal(away=0.02), None, {}),
    ('gelu', lambda x: F.gelu(x), normal(2.0), None, {}),
]
for op, f, gen, chk, args in UNARY:
    fn = (lambda f: lambda x: f(x['x']))(f)
    case(op, 'contiguous', [T('x', [3, 5], gen)], fn, args=args, check=chk)
    case(op, 'noncontiguous', [T('x', [4, 2, 3], gen, view=[['permute', [2, 0, 1]]])], fn, args=args, check=chk)
case('leakyRelu', 'slope_0.2', [T('x', [3, 5], normal(away=0.02))], lambda x: F.leaky_relu(x['x'], 0.2), args={'negativeSlope': 0.2})
case('gelu', 'tanh', [T('x', [3, 5], normal(2.0))], lambda x: F.gelu(x['x'], approximate='tanh'), args={'approximate': 'tanh'})
case('gelu', 'tanh_noncontiguous', [T('x', [5, 3], normal(2.0), view=[['t']])], lambda x: F.gelu(x['x'], approximate='tanh'),
     args={'approximate': 'tanh'})
case('exp', 'narrow', [T('x', [4, 6], GAUSS, view=[['narrow', 1, 2, 3]])], lambda x: torch.exp(x['x']))

for cid, lo, hi in (('both', -0.5, 0.75), ('min_only', -0.3, None), ('max_only', None, 0.7), ('both_inexact', -0.1, 0.3)):
    pts = [p for p in (lo, hi) if p is not None]
    case('clamp', cid, [T('x', [4, 5], normal())], (lambda lo, hi: lambda x: torch.clamp(x['x'], lo, hi))(lo, hi),
         args={'min': lo, 'max': hi}, check=away_from('x', pts, 0.02))
case('clamp', 'noncontiguous', [T('x', [5, 4], normal(), view=[['t']])], lambda x: torch.clamp(x['x'], -0.5, 0.75),
     args={'min': -0.5, 'max': 0.75}, check=away_from('x', [-0.5, 0.75], 0.02))

COND = [[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0]]
case('where', 'same_shape', [B('cond', COND), T('a', [3, 4]), T('b', [3, 4])], lambda x: torch.where(x['cond'], x['a'], x['b']))
case('where', 'broadcast', [B('cond', [[1], [0], [1]]), T('a', [2, 3, 4]), T('b', [4])],
     lambda x: torch.where(x['cond'], x['a'], x['b']))
case('where', 'scalar_other', [B('cond', COND), T('a', [3, 4]), S('b', 0.5)],
     lambda x: torch.where(x['cond'], x['a'], torch.tensor(0.5, dtype=F64)))
case('where', 'scalar_first', [B('cond', COND), S('a', -2), T('b', [4, 3], view=[['t']])],
     lambda x: torch.where(x['cond'], torch.tensor(-2.0, dtype=F64), x['b']))

# ---- reductions
R = 'reduction'
for op, f in (('sum', torch.sum), ('mean', torch.mean)):
    case(op, 'all', [T('x', [3, 4, 5])], (lambda f: lambda x: f(x['x']))(f), fwd=R)
    case(op, 'dim1', [T('x', [3, 4, 5])], (lambda f: lambda x: f(x['x'], 1))(f), args={'dim': 1}, fwd=R)
    case(op, 'dim-1_keepdim', [T('x', [3, 4, 5])], (lambda f: lambda x: f(x['x'], -1, keepdim=True))(f),
         args={'dim': -1, 'keepdim': True}, fwd=R)
    case(op, 'dims02', [T('x', [3, 4, 5])], (lambda f: lambda x: f(x['x'], (0, 2)))(f), args={'dim': [0, 2]}, fwd=R)
    case(op, 'dims02_keepdim_noncontiguous', [T('x', [5, 3, 4], view=[['permute', [1, 2, 0]]])],
         (lambda f: lambda x: f(x['x'], (0, 2), keepdim=True))(f), args={'dim': [0, 2], 'keepdim': True}, fwd=R)
    case(op, 'all_dims_keepdim', [T('x', [3, 4])], (lambda f: lambda x: f(x['x'], (0, 1), keepdim=True))(f),
         args={'dim': [0, 1], 'keepdim': True}, fwd=R)

for op, f in (('max', torch.amax), ('min', torch.amin)):
    case(op, 'all', [T('x', [3, 4, 5], distinct())], (lambda f: lambda x: f(x['x'], (0, 1, 2)))(f), fwd=R)
    case(op, 'dim1', [T('x', [3, 4, 5], distinct())], (lambda f: lambda x: f(x['x'], 1))(f), args={'dim': 1}, fwd=R)
    case(op, 'dim-1_keepdim', [T('x', [3, 4, 5], distinct())], (lambda f: lambda x: f(x['x'], -1, keepdim=True))(f),
         args={'dim': -1, 'keepdim': True}, fwd=R)
    case(op, 'dims02_noncontiguous', [T('x', [5, 3, 4], distinct(), view=[['permute', [1, 2, 0]]])],
         (lambda f: lambda x: f(x['x'], (0, 2)))(f), args={'dim': [0, 2]}, fwd=R)
    case(op, 'ties_split', [T('x', [4, 5], choice([-0.5, 0.0, 0.5, 1.0]))], (lambda f: lambda x: f(x['x'], 1))(f), args={'dim': 1}, fwd=R)
    case(op, 'ties_split_all', [T('x', [3, 3], choice([0.25, 1.0]))], (lambda f: lambda x: f(x['x'], (0, 1)))(f), fwd=R)

case('argmax', 'all', [T('x', [3, 4, 5], distinct(), grad=False)], lambda x: torch.argmax(x['x']), fwd='exact')
case('argmax', 'dim1', [T('x', [3, 4, 5], distinct(), grad=False)], lambda x: torch.argmax(x['x'], 1), args={'dim': 1}, fwd='exact')
case('argmax', 'dim-1_keepdim_noncontiguous', [T('x', [5, 3, 4], distinct(), grad=False, view=[['permute', [1, 2, 0]]])],
     lambda x: torch.argmax(x['x'], -1, keepdim=True), args={'dim': -1, 'keepdim': True}, fwd='exact')

case('logsumexp', 'dim1', [T('x', [3, 4, 5], normal(2.0))], lambda x: torch.logsumexp(x['x'], 1), args={'dim': 1}, fwd=R)
case('logsumexp', 'dim-1_keepdim', [T('x', [3, 4, 5], normal(2.0))], lambda x: torch.logsumexp(x['x'], -1, keepdim=True),
     args={'dim': -1, 'keepdim': True}, fwd=R)
case('logsumexp', 'dims02_noncontiguous', [T('x', [5, 3, 4], normal(2.0), view=[['permute', [1, 2, 0]]])],
     lambda x: torch.logsumexp(x['x'], (0, 2)), args={'dim': [0, 2]}, fwd=R)
case('logsumexp', 'large_values', [T('x', [3, 6], normal(3.0, mean=40.0))], lambda x: torch.logsumexp(x['x'], 1),
     args={'dim': 1}, fwd=R)

case('var', 'all', [T('x', [3, 4, 5])], lambda x: torch.var(x['x']), fwd=R)
case('var', 'dim1', [T('x', [3, 4, 5])], lambda x: torch.var(x['x'], 1), args={'dim': 1}, fwd=R)
case('var', 'dim-1_keepdim_biased', [T('x', [3, 4, 5])], lambda x: torch.var(x['x'], -1, correction=0, keepdim=True),
     args={'dim': -1, 'keepdim': True, 'correction': 0}, fwd=R)
case('var', 'dims02_noncontiguous', [T('x', [5, 3, 4], normal(1.0, mean=3.0), view=[['permute', [1, 2, 0]]])],
     lambda x: torch.var(x['x'], (0, 2)), args={'dim': [0, 2]}, fwd=R)
case('var', 'all_biased', [T('x', [4, 6])], lambda x: torch.var(x['x'], None, correction=0), args={'dim': None, 'correction': 0}, fwd=R)

# ---- matmul
MM = lambda x: torch.matmul(x['a'], x['b'])
for cid, sa, sb, va, vb in (
    ('2d', [3, 4], [4, 5], [], []),
    ('batched', [2, 3, 4], [2, 4, 5], [], []),
    ('broadcast_batch', [2, 1, 3, 4], [5, 4, 2], [], []),
    ('batched_by_2d', [2, 3, 4], [4, 5], [], []),
    ('2d_by_batched', [3, 4], [2, 4, 5], [], []),
    ('vec_mat', [4], [4, 5], [], []),
    ('mat_vec', [3, 4], [4], [], []),
    ('dot', [6], [6], [], []),
    ('batched_mat_vec', [2, 3, 4], [4], [], []),
    ('vec_batched_mat', [4], [2, 4, 3], [], []),
    ('noncontiguous', [4, 3], [5, 4], [['t']], [['t']]),
    ('noncontiguous_batched', [2, 4, 3], [2, 5, 4], [['transpose', 1, 2]], [['permute', [0, 2, 1]]]),
    ('expanded_batch', [3, 4], [4, 5], [['expand', [2, 3, 4]]], []),
):
    case('matmul', cid, [T('a', sa, view=va), T('b', sb, view=vb)], MM, fwd=R)

# ---- shape ops
E = 'elementwise'
case('reshape', 'contiguous', [T('x', [2, 3, 4])], lambda x: x['x'].reshape(4, 6), args={'shape': [4, 6]})
case('reshape', 'infer', [T('x', [2, 3, 4])], lambda x: x['x'].reshape(-1, 4), args={'shape': [-1, 4]})
case('reshape', 'noncontiguous', [T('x', [4, 6], view=[['t']])], lambda x: x['x'].reshape(3, 8), args={'shape': [3, 8]})
case('view', 'contiguous', [T('x', [2, 3, 4])], lambda x: x['x'].view(6, 4), args={'shape': [6, 4]})
case('view', 'narrowed_rows', [T('x', [5, 4], view=[['narrow', 0, 1, 3]])], lambda x: x['x'].view(12), args={'shape': [12]})
case('permute', 'basic', [T('x', [2, 3, 4])], lambda x: x['x'].permute(2, 0, 1), args={'dims': [2, 0, 1]})
case('permute', 'negative_dims', [T('x', [2, 3, 4])], lambda x: x['x'].permute(-1, -3, -2), args={'dims': [-1, -3, -2]})
case('transpose', '0_2', [T('x', [2, 3, 4])], lambda x: x['x'].transpose(0, 2), args={'dim0': 0, 'dim1': 2})
case('transpose', 'negative', [T('x', [2, 3, 4])], lambda x: x['x'].transpose(-1, -2), args={'dim0': -1, 'dim1': -2})
case('flatten', 'all', [T('x', [2, 3, 4])], lambda x: x['x'].flatten())
case('flatten', 'middle', [T('x', [2, 3, 2, 2])], lambda x: x['x'].flatten(1, 2), args={'startDim': 1, 'endDim': 2})
case('flatten', 'noncontiguous', [T('x', [4, 3], view=[['t']])], lambda x: x['x'].flatten())
case('squeeze', 'all', [T('x', [1, 3, 1, 4])], lambda x: x['x'].squeeze())
case('squeeze', 'dim2', [T('x', [1, 3, 1, 4])], lambda x: x['x'].squeeze(2), args={'dim': 2})
case('squeeze', 'dims_list', [T('x', [1, 3, 1, 4])], lambda x: x['x'].squeeze(2).squeeze(0), args={'dim': [0, 2]})
case('squeeze', 'non_singleton_noop', [T('x', [3, 4])], lambda x: x['x'].squeeze(1), args={'dim': 1})
case('unsqueeze', 'dim0', [T('x', [3, 4])], lambda x: x['x'].unsqueeze(0), args={'dim': 0})
case('unsqueeze', 'dim-1', [T('x', [3, 4])], lambda x: x['x'].unsqueeze(-1), args={'dim': -1})
case('unsqueeze', 'dim1_noncontiguous', [T('x', [4, 3], view=[['t']])], lambda x: x['x'].unsqueeze(1), args={'dim': 1})
case('expand', 'leading_and_singleton', [T('x', [3, 1])], lambda x: x['x'].expand(2, 3, 4), args={'shape': [2, 3, 4]})
case('expand', 'minus_one', [T('x', [1, 3, 1])], lambda x: x['x'].expand(2, -1, 4), args={'shape': [2, -1, 4]})
case('narrow', 'dim1', [T('x', [4, 5])], lambda x: x['x'].narrow(1, 1, 3), args={'dim': 1, 'start': 1, 'length': 3})
case('narrow', 'dim0_negative_start', [T('x', [5, 3])], lambda x: torch.narrow(x['x'], 0, -3, 2), args={'dim': 0, 'start': -3, 'length': 2})
case('narrow', 'noncontiguous', [T('x', [6, 4], view=[['t']])], lambda x: x['x'].narrow(1, 2, 3), args={'dim': 1, 'start': 2, 'length': 3})
case('cat', 'dim1', [T('x0', [2, 3]), T('x1', [2, 1]), T('x2', [2, 2])], lambda x: torch.cat([x['x0'], x['x1'], x['x2']], 1), args={'dim': 1})
case('cat', 'dim0', [T('x0', [1, 3]), T('x1', [2, 3])], lambda x: torch.cat([x['x0'], x['x1']], 0), args={'dim': 0})
case('cat', 'dim-1_noncontiguous', [T('x0', [3, 2], view=[['t']]), T('x1', [2, 4])], lambda x: torch.cat([x['x0'], x['x1']], -1),
     args={'dim': -1})
case('stack', 'dim0', [T('x0', [3, 4]), T('x1', [3, 4]), T('x2', [3, 4])], lambda x: torch.stack([x['x0'], x['x1'], x['x2']], 0),
     args={'dim': 0})
case('stack', 'dim1', [T('x0', [3, 4]), T('x1', [3, 4])], lambda x: torch.stack([x['x0'], x['x1']], 1), args={'dim': 1})
case('stack', 'dim-1_noncontiguous', [T('x0', [4, 3], view=[['t']]), T('x1', [3, 4])], lambda x: torch.stack([x['x0'], x['x1']], -1),
     args={'dim': -1})
case('indexSelect', 'dim0_repeats', [T('x', [5, 3]), I('index', [4, 0, 4, 2])],
     lambda x: torch.index_select(x['x'], 0, x['index']), args={'dim': 0}, bwd=R)
case('indexSelect', 'dim1', [T('x', [3, 4]), I('index', [2, 0])], lambda x: torch.index_select(x['x'], 1, x['index']),
     args={'dim': 1}, bwd=R)
case('indexSelect', 'dim-1_noncontiguous', [T('x', [5, 3], view=[['t']]), I('index', [1, 1, 3, 0, 4])],
     lambda x: torch.index_select(x['x'], -1, x['index']), args={'dim': -1}, bwd=R)
case('gather', 'dim1_repeats', [T('x', [3, 4]), I('index', [[0, 3, 3, 1, 0], [2, 2, 1, 0, 3], [1, 1, 1, 1, 2]])],
     lambda x: torch.gather(x['x'], 1, x['index']), args={'dim': 1}, bwd=R)
case('gather', 'dim0_smaller', [T('x', [4, 3]), I('index', [[3, 0], [1, 1]])], lambda x: torch.gather(x['x'], 0, x['index']),
     args={'dim': 0}, bwd=R)
case('gather', 'noncontiguous', [T('x', [4, 3], view=[['t']]), I('index', [[0, 3], [2, 2], [1, 0]])],
     lambda x: torch.gather(x['x'], 1, x['index']), args={'dim': 1}, bwd=R)

# ---- F.linear
case('linear', 'bias', [T('x', [2, 3, 4]), T('weight', [5, 4]), T('bias', [5])], lambda x: F.linear(x['x'], x['weight'], x['bias']), fwd=R)
case('linear', 'no_bias', [T('x', [3, 4]), T('weight', [5, 4])], lambda x: F.linear(x['x'], x['weight']), fwd=R)
case('linear', 'vector_input', [T('x', [4]), T('weight', [3, 4]), T('bias', [3])], lambda x: F.linear(x['x'], x['weight'], x['bias']), fwd=R)
case('linear', 'noncontiguous', [T('x', [4, 3], view=[['t']]), T('weight', [4, 5], view=[['t']]), T('bias', [5])],
     lambda x: F.linear(x['x'], x['weight'], x['bias']), fwd=R)

# ---- F.conv2d: weight [O, C/groups, KH, KW]
CONV = [
    ('basic_bias', [2, 3, 6, 6], [4, 3, 3, 3], True, {}),
    ('stride2_padding1', [2, 3, 7, 7], [4, 3, 3, 3], True, {'stride': 2, 'padding': 1}),
    ('dilation2', [1, 2, 8, 8], [3, 2, 3, 3], False, {'dilation': 2}),
    ('groups2', [2, 4, 5, 5], [6, 2, 3, 3], True, {'groups': 2, 'padding': 1}),
    ('all_options', [1, 4, 9, 8], [4, 2, 3, 2], True, {'stride': [2, 1], 'padding': [2, 1], 'dilation': [2, 1], 'groups': 2}),
    ('depthwise', [1, 3, 5, 5], [3, 1, 3, 3], True, {'groups': 3, 'padding': 1}),
    ('1x1', [2, 4, 3, 3], [5, 4, 1, 1], False, {}),
]


def torch_conv_kwargs(o):
    return {'stride': o.get('stride', 1), 'padding': o.get('padding', 0), 'dilation': o.get('dilation', 1), 'groups': o.get('groups', 1)}


for cid, xs, ws, bias, o in CONV:
    ins = [T('x', xs), T('weight', ws)] + ([T('bias', [ws[0]])] if bias else [])
    case('conv2d', cid, ins, (lambda o: lambda x: F.conv2d(x['x'], x['weight'], x.get('bias'), **torch_conv_kwargs(o)))(o), args=o, fwd=R)
case('conv2d', 'noncontiguous_nhwc', [T('x', [2, 6, 6, 3], view=[['permute', [0, 3, 1, 2]]]), T('weight', [4, 3, 3, 3]), T('bias', [4])],
     lambda x: F.conv2d(x['x'], x['weight'], x['bias'], padding=1), args={'padding': 1}, fwd=R)

# ---- F.convTranspose2d: weight [C_in, O/groups, KH, KW]
CONVT = [
    ('basic_bias', [2, 3, 4, 4], [3, 2, 3, 3], True, {}),
    ('stride2_padding1_outpad1', [1, 3, 4, 4], [3, 2, 3, 3], True, {'stride': 2, 'padding': 1, 'outputPadding': 1}),
    ('groups2', [2, 4, 3, 3], [4, 3, 3, 3], True, {'groups': 2, 'stride': 2}),
    ('dilation2', [1, 2, 4, 4], [2, 3, 3, 3], False, {'dilation': 2, 'padding': 1}),
    ('all_options', [1, 4, 3, 4], [4, 2, 3, 2], True, {'stride': [2, 3], 'padding': [1, 0], 'outputPadding': [1, 2], 'groups': 2, 'dilation': [1, 1]}),
]
for cid, xs, ws, bias, o in CONVT:
    ins = [T('x', xs), T('weight', ws)] + ([T('bias', [ws[1] * o.get('groups', 1)])] if bias else [])
    kw = {'stride': o.get('stride', 1), 'padding': o.get('padding', 0), 'output_padding': o.get('outputPadding', 0),
          'groups': o.get('groups', 1), 'dilation': o.get('dilation', 1)}
    case('convTranspose2d', cid, ins, (lambda kw: lambda x: F.conv_transpose2d(x['x'], x['weight'], x.get('bias'), **kw))(kw), args=o, fwd=R)

# ---- pooling
POOLMAX = [
    ('k2', [2, 2, 6, 6], {'kernelSize': 2}),
    ('k3_s2_p1', [1, 3, 7, 7], {'kernelSize': 3, 'stride': 2, 'padding': 1}),
    ('k3_s2_ceil', [1, 2, 6, 6], {'kernelSize': 3, 'stride': 2, 'ceilMode': True}),
    ('k2_dilation2', [1, 2, 7, 7], {'kernelSize': 2, 'stride': 1, 'dilation': 2}),
    ('rect_p1_ceil', [2, 5, 6], {'kernelSize': [3, 2], 'stride': [2, 2], 'padding': [1, 1], 'ceilMode': True}),
    ('overlap_s1', [1, 2, 5, 5], {'kernelSize': 3, 'stride': 1}),
]
for cid, xs, o in POOLMAX:
    kw = {'kernel_size': o['kernelSize'], 'stride': o.get('stride'), 'padding': o.get('padding', 0),
          'dilation': o.get('dilation', 1), 'ceil_mode': o.get('ceilMode', False)}
    case('maxPool2d', cid, [T('x', xs, distinct())], (lambda kw: lambda x: F.max_pool2d(x['x'], **kw))(kw), args=o, fwd=E, bwd=R)
case('maxPool2d', 'noncontiguous', [T('x', [1, 6, 6, 2], distinct(), view=[['permute', [0, 3, 1, 2]]])],
     lambda x: F.max_pool2d(x['x'], 2), args={'kernelSize': 2}, fwd=E, bwd=R)

POOLAVG = [
    ('k2', [2, 2, 6, 6], {'kernelSize': 2}),
    ('k3_s2_p1_include_pad', [1, 3, 7, 7], {'kernelSize': 3, 'stride': 2, 'padding': 1}),
    ('k3_s2_p1_exclude_pad', [1, 3, 7, 7], {'kernelSize': 3, 'stride': 2, 'padding': 1, 'countIncludePad': False}),
    ('k3_s2_ceil', [1, 2, 6, 6], {'kernelSize': 3, 'stride': 2, 'ceilMode': True}),
    ('k3_s2_p1_ceil_exclude_pad', [1, 2, 6, 6], {'kernelSize': 3, 'stride': 2, 'padding': 1, 'ceilMode': True, 'countIncludePad': False}),
    ('k3_s2_p1_ceil_include_pad', [1, 2, 6, 6], {'kernelSize': 3, 'stride': 2, 'padding': 1, 'ceilMode': True}),
    ('divisor_override', [1, 2, 6, 6], {'kernelSize': 2, 'divisorOverride': 3}),
    ('rect_3d_input', [2, 5, 6], {'kernelSize': [2, 3], 'stride': [1, 2], 'padding': [1, 1]}),
]
for cid, xs, o in POOLAVG:
    kw = {'kernel_size': o['kernelSize'], 'stride': o.get('stride'), 'padding': o.get('padding', 0), 'ceil_mode': o.get('ceilMode', False),
          'count_include_pad': o.get('countIncludePad', True), 'divisor_override': o.get('divisorOverride')}
    case('avgPool2d', cid, [T('x', xs)], (lambda kw: lambda x: F.avg_pool2d(x['x'], **kw))(kw), args=o, fwd=R)
case('avgPool2d', 'noncontiguous', [T('x', [1, 6, 6, 2], view=[['permute', [0, 3, 1, 2]]])],
     lambda x: F.avg_pool2d(x['x'], 2), args={'kernelSize': 2}, fwd=R)

for cid, xs, size in (('7_to_3', [2, 2, 7, 7], 3), ('5x7_to_2x4', [1, 3, 5, 7], [2, 4]), ('6_to_3', [1, 2, 6, 6], 3),
                      ('3d_upsample_3_to_5', [2, 3, 3], [5, 5]), ('to_1', [2, 3, 4, 5], 1)):
    case('adaptiveAvgPool2d', cid, [T('x', xs)], (lambda s: lambda x: F.adaptive_avg_pool2d(x['x'], s))(size), args={'outputSize': size}, fwd=R)
case('adaptiveAvgPool2d', 'noncontiguous', [T('x', [1, 7, 7, 2], view=[['permute', [0, 3, 1, 2]]])],
     lambda x: F.adaptive_avg_pool2d(x['x'], 3), args={'outputSize': 3}, fwd=R)

# ---- softmax / logSoftmax
for op, f in (('softmax', F.softmax), ('logSoftmax', F.log_softmax)):
    case(op, 'dim-1', [T('x', [2, 3, 5], normal(2.0))], (lambda f: lambda x: f(x['x'], -1))(f), args={'dim': -1}, fwd=R)
    case(op, 'dim1', [T('x', [2, 3, 4], normal(2.0))], (lambda f: lambda x: f(x['x'], 1))(f), args={'dim': 1}, fwd=R)
    case(op, 'dim0_noncontiguous', [T('x', [4, 3], normal(2.0), view=[['t']])], (lambda f: lambda x: f(x['x'], 0))(f), args={'dim': 0}, fwd=R)
    case(op, 'large_values', [T('x', [3, 5], normal(3.0, mean=50.0))], (lambda f: lambda x: f(x['x'], 1))(f), args={'dim': 1}, fwd=R)

# ---- losses
T5 = [0, 3, 1, 1, 2]


def ce(**kw):
    return lambda x: F.cross_entropy(x['x'], x['target'], weight=x.get('weight'), **kw)


W4 = uniform(0.5, 2.0)
case('crossEntropy', 'mean', [T('x', [5, 4]), I('target', T5)], ce(), fwd=R)
case('crossEntropy', 'sum', [T('x', [5, 4]), I('target', T5)], ce(reduction='sum'), args={'reduction': 'sum'}, fwd=R)
case('crossEntropy', 'none', [T('x', [5, 4]), I('target', T5)], ce(reduction='none'), args={'reduction': 'none'}, fwd=R)
case('crossEntropy', 'weight', [T('x', [5, 4]), I('target', T5), T('weight', [4], W4, grad=False)], ce(), fwd=R)
case('crossEntropy', 'weight_none', [T('x', [5, 4]), I('target', T5), T('weight', [4], W4, grad=False)], ce(reduction='none'),
     args={'reduction': 'none'}, fwd=R)
case('crossEntropy', 'ignore_index_default', [T('x', [5, 4]), I('target', [0, -100, 1, -100, 2])], ce(), fwd=R)
case('crossEntropy', 'ignore_index_2', [T('x', [5, 4]), I('target', T5)], ce(ignore_index=2), args={'ignoreIndex': 2}, fwd=R)
case('crossEntropy', 'ignore_index_-1', [T('x', [5, 4]), I('target', [0, -1, 3, 1, -1])], ce(ignore_index=-1), args={'ignoreIndex': -1}, fwd=R)
case('crossEntropy', 'ignore_index_weight_sum', [T('x', [5, 4]), I('target', T5), T('weight', [4], W4, grad=False)],
     ce(ignore_index=1, reduction='sum'), args={'ignoreIndex': 1, 'reduction': 'sum'}, fwd=R)
case('crossEntropy', 'label_smoothing', [T('x', [5, 4]), I('target', T5)], ce(label_smoothing=0.1), args={'labelSmoothing': 0.1}, fwd=R)
case('crossEntropy', 'label_smoothing_none', [T('x', [5, 4]), I('target', T5)], ce(label_smoothing=0.2, reduction='none'),
     args={'labelSmoothing': 0.2, 'reduction': 'none'}, fwd=R)
case('crossEntropy', 'label_smoothing_weight', [T('x', [5, 4]), I('target', T5), T('weight', [4], W4, grad=False)],
     ce(label_smoothing=0.1), args={'labelSmoothing': 0.1}, fwd=R)
case('crossEntropy', 'label_smoothing_ignore_index', [T('x', [5, 4]), I('target', T5)], ce(label_smoothing=0.1, ignore_index=1),
     args={'labelSmoothing': 0.1, 'ignoreIndex': 1}, fwd=R)
case('crossEntropy', 'label_smoothing_ignore_index_sum', [T('x', [5, 4]), I('target', T5)],
     ce(label_smoothing=0.1, ignore_index=1, reduction='sum'), args={'labelSmoothing': 0.1, 'ignoreIndex': 1, 'reduction': 'sum'}, fwd=R)
case('crossEntropy', 'label_smoothing_ignore_index_weight', [T('x', [5, 4]), I('target', T5), T('weight', [4], W4, grad=False)],
     ce(label_smoothing=0.1, ignore_index=1), args={'labelSmoothing': 0.1, 'ignoreIndex': 1}, fwd=R)
case('crossEntropy', 'all_ignored', [T('x', [3, 4]), I('target', [-100, -100, -100])], ce(), fwd=R)
case('crossEntropy', 'all_ignored_label_smoothing', [T('x', [3, 4]), I('target', [-100, -100, -100])], ce(label_smoothing=0.1),
     args={'labelSmoothing': 0.1}, fwd=R)
case('crossEntropy', 'probabilities', [T('x', [5, 4]), T('target', [5, 4], probs(1))], ce(), fwd=R)
case('crossEntropy', 'probabilities_label_smoothing_weight', [T('x', [5, 4]), T('target', [5, 4], probs(1)), T('weight', [4], W4, grad=False)],
     ce(label_smoothing=0.1), args={'labelSmoothing': 0.1}, fwd=R)
case('crossEntropy', 'probabilities_sum', [T('x', [5, 4]), T('target', [5, 4], probs(1))], ce(reduction='sum'), args={'reduction': 'sum'}, fwd=R)
case('crossEntropy', 'spatial', [T('x', [2, 3, 2, 2]), I('target', [[[0, 2], [1, 1]], [[2, 0], [-100, 1]]])], ce(), fwd=R)
case('crossEntropy', 'unbatched', [T('x', [4]), I('target', 2, shape=[])], ce(), fwd=R)
case('crossEntropy', 'noncontiguous', [T('x', [4, 5], view=[['t']]), I('target', T5)], ce(), fwd=R)


def nll(**kw):
    return lambda x: F.nll_loss(x['x'], x['target'], weight=x.get('weight'), **kw)


for red in ('mean', 'sum', 'none'):
    a = {} if red == 'mean' else {'reduction': red}
    case('nllLoss', red, [T('x', [5, 4]), I('target', T5)], nll(reduction=red), args=a, fwd=R)
    case('nllLoss', f'weight_{red}', [T('x', [5, 4]), I('target', T5), T('weight', [4], W4, grad=False)], nll(reduction=red), args=a, fwd=R)
    case('nllLoss', f'ignore_index_weight_{red}', [T('x', [5, 4]), I('target', T5), T('weight', [4], W4, grad=False)],
         nll(reduction=red, ignore_index=1), args={**a, 'ignoreIndex': 1}, fwd=R)
case('nllLoss', 'ignore_index_default', [T('x', [5, 4]), I('target', [0, -100, 1, 3, -100])], nll(), fwd=R)
case('nllLoss', 'all_ignored', [T('x', [3, 4]), I('target', [-100, -100, -100])], nll(), fwd=R)
case('nllLoss', 'spatial_weight', [T('x', [2, 3, 4]), I('target', [[0, 2, 1, 1], [2, 0, 0, 1]]), T('weight', [3], W4, grad=False)],
     nll(), fwd=R)

for red in ('mean', 'sum', 'none'):
    a = {} if red == 'mean' else {'reduction': red}
    case('mseLoss', red, [T('x', [3, 4]), T('target', [3, 4])], (lambda r: lambda x: F.mse_loss(x['x'], x['target'], reduction=r))(red), args=a, fwd=R)
    case('binaryCrossEntropyWithLogits', red, [T('x', [3, 4], normal(2.0)), T('target', [3, 4], uniform(0, 1))],
         (lambda r: lambda x: F.binary_cross_entropy_with_logits(x['x'], x['target'], reduction=r))(red), args=a, fwd=R)
case('mseLoss', 'noncontiguous', [T('x', [4, 3], view=[['t']]), T('target', [3, 4])], lambda x: F.mse_loss(x['x'], x['target']), fwd=R)
case('binaryCrossEntropyWithLogits', 'weight_pos_weight',
     [T('x', [3, 4], normal(2.0)), T('target', [3, 4], uniform(0, 1)), T('weight', [3, 4], W4, grad=False), T('posWeight', [4], W4, grad=False)],
     lambda x: F.binary_cross_entropy_with_logits(x['x'], x['target'], weight=x['weight'], pos_weight=x['posWeight']), fwd=R)
case('binaryCrossEntropyWithLogits', 'hard_targets_large_logits', [T('x', [2, 5], normal(8.0)), T('target', [2, 5], lambda r, s: (torch.rand(s, generator=r) < 0.5).float().numpy())],
     lambda x: F.binary_cross_entropy_with_logits(x['x'], x['target'], reduction='sum'), args={'reduction': 'sum'}, fwd=R)

# ---- normalisation
RS = lambda name, gen: T(name, [3], gen, grad=False, fixed='float32', after=True)
case('batchNorm', 'training_affine', [T('x', [4, 3, 2, 2], normal(2.0, mean=1.0)), RS('runningMean', normal(0.5)), RS('runningVar', uniform(0.5, 2.0)),
                                      T('weight', [3], uniform(0.5, 1.5)), T('bias', [3])],
     lambda x: F.batch_norm(x['x'], x['runningMean'], x['runningVar'], x['weight'], x['bias'], training=True),
     args={'training': True}, fwd=R)
case('batchNorm', 'training_2d_momentum', [T('x', [6, 3], normal(1.5)), RS('runningMean', normal(0.5)), RS('runningVar', uniform(0.5, 2.0))],
     lambda x: F.batch_norm(x['x'], x['runningMean'], x['runningVar'], training=True, momentum=0.3, eps=1e-3),
     args={'training': True, 'momentum': 0.3, 'eps': 1e-3}, fwd=R)
case('batchNorm', 'training_no_running_stats', [T('x', [4, 3, 3], normal(2.0)), T('weight', [3], uniform(0.5, 1.5)), T('bias', [3])],
     lambda x: F.batch_norm(x['x'], None, None, x['weight'], x['bias'], training=True), args={'training': True}, fwd=R)
case('batchNorm', 'eval_affine', [T('x', [2, 3, 2, 3], normal(2.0)), T('runningMean', [3], normal(0.5), grad=False, fixed='float32'),
                                  T('runningVar', [3], uniform(0.5, 2.0), grad=False, fixed='float32'),
                                  T('weight', [3], uniform(0.5, 1.5)), T('bias', [3])],
     lambda x: F.batch_norm(x['x'], x['runningMean'], x['runningVar'], x['weight'], x['bias'], training=False),
     args={'training': False}, fwd=R)
case('batchNorm', 'training_noncontiguous', [T('x', [4, 2, 2, 3], normal(2.0), view=[['permute', [0, 3, 1, 2]]]),
                                             RS('runningMean', normal(0.5)), RS('runningVar', uniform(0.5, 2.0)),
                                             T('weight', [3], uniform(0.5, 1.5)), T('bias', [3])],
     lambda x: F.batch_norm(x['x'], x['runningMean'], x['runningVar'], x['weight'], x['bias'], training=True),
     args={'training': True}, fwd=R)

case('layerNorm', 'last_dim_affine', [T('x', [2, 3, 5], normal(2.0, mean=1.0)), T('weight', [5], uniform(0.5, 1.5)), T('bias', [5])],
     lambda x: F.layer_norm(x['x'], [5], x['weight'], x['bias']), args={'normalizedShape': [5]}, fwd=R)
case('layerNorm', 'two_dims_affine', [T('x', [2, 3, 4], normal(2.0)), T('weight', [3, 4], uniform(0.5, 1.5)), T('bias', [3, 4])],
     lambda x: F.layer_norm(x['x'], [3, 4], x['weight'], x['bias']), args={'normalizedShape': [3, 4]}, fwd=R)
case('layerNorm', 'no_affine_eps', [T('x', [4, 6], normal(1.0))], lambda x: F.layer_norm(x['x'], [6], eps=1e-3),
     args={'normalizedShape': 6, 'eps': 1e-3}, fwd=R)
case('layerNorm', 'weight_only_noncontiguous', [T('x', [5, 3], normal(2.0), view=[['t']]), T('weight', [5], uniform(0.5, 1.5))],
     lambda x: F.layer_norm(x['x'], [5], x['weight']), args={'normalizedShape': [5]}, fwd=R)

case('embedding', 'basic', [I('input', [[1, 4, 1], [0, 5, 2]]), T('weight', [6, 4])], lambda x: F.embedding(x['input'], x['weight']), bwd=R)
case('embedding', 'padding_idx', [I('input', [[1, 0, 1], [0, 5, 2]]), T('weight', [6, 4])],
     lambda x: F.embedding(x['input'], x['weight'], padding_idx=0), args={'paddingIdx': 0}, bwd=R)
case('embedding', 'padding_idx_negative', [I('input', [3, 5, 5, 1]), T('weight', [6, 3])],
     lambda x: F.embedding(x['input'], x['weight'], padding_idx=-1), args={'paddingIdx': -1}, bwd=R)
case('embedding', 'noncontiguous_weight', [I('input', [[2, 0], [2, 1]]), T('weight', [4, 3], view=[['t']])],
     lambda x: F.embedding(x['input'], x['weight']), bwd=R)


# ----------------------------------------------------------------------------------- run

def leaf_numel(spec):
    return int(np.prod(spec.shape))


def build(c, base, dtype):
    """Reference tensors for one dtype. Returns (leaves, xs, stored) ."""
    leaves, xs, stored = {}, {}, {}
    for s in c['inputs']:
        if isinstance(s, T):
            vals = round_to(base[s.name], s.fixed or dtype)
            stored[s.name] = vals
            leaf = torch.tensor(vals.astype(np.float64)).reshape(s.shape)
            if s.grad:
                leaf.requires_grad_(True)
            leaves[s.name] = leaf
            xs[s.name] = apply_view(leaf, s.view)
        elif isinstance(s, I):
            xs[s.name] = torch.tensor(s.data, dtype=torch.int64).reshape(s.shape)
        elif isinstance(s, B):
            xs[s.name] = torch.tensor(s.data, dtype=torch.bool).reshape(s.shape)
        else:
            xs[s.name] = s.value
    return leaves, xs, stored


def draw(c, attempt):
    rng = torch.Generator().manual_seed((zlib.crc32(c['id'].encode()) + 7919 * attempt) % (2 ** 63))
    base = {s.name: s.gen(rng, s.shape).astype(np.float32) for s in c['inputs'] if isinstance(s, T)}
    return rng, base


def gen_case(c):
    for attempt in range(100):
        rng, base = draw(c, attempt)
        if c['check'] is None or all(c['check'](build(c, base, dt)[1]) for dt in c['dtypes']):
            break
    else:
        raise RuntimeError(f"{c['id']}: no draw passes the check")
    out_spec = None
    go_base = None
    per_dtype = {}
    grad_kinds = {}
    for dt in c['dtypes']:
        leaves, xs, stored = build(c, base, dt)
        out = c['fn'](xs)
        is_float = out.dtype.is_floating_point
        if go_base is None and is_float:
            go_base = torch.randn(out.shape, generator=rng, dtype=torch.float32).numpy()
        entry = {'inputs': {k: enc_list(v) for k, v in stored.items()}}
        if is_float:
            entry['output'] = enc_list(to_f32(out))
        else:
            entry['output'] = [int(v) for v in out.reshape(-1).tolist()]
        wants_grad = is_float and any(l.requires_grad for l in leaves.values())
        if wants_grad:
            go = round_to(go_base, dt)
            entry['gradOutput'] = enc_list(go)
            out.backward(torch.tensor(go.astype(np.float64)).reshape(out.shape))
            entry['grads'] = {}
            for s in c['inputs']:
                if isinstance(s, T) and s.grad:
                    g = leaves[s.name].grad
                    entry['grads'][s.name] = enc_list(to_f32(g)) if g is not None else enc_list(np.zeros(s.shape))
                    kind = c['bwd']
                    if kind == 'elementwise' and leaf_numel(s) < out.numel():
                        kind = 'reduction'  # broadcast operand: its gradient is a sum
                    grad_kinds[s.name] = kind
        after = {s.name: enc_list(to_f32(leaves[s.name])) for s in c['inputs'] if isinstance(s, T) and s.after}
        if after:
            entry['after'] = after
        per_dtype[dt] = entry
        out_spec = {'outputShape': list(out.shape), 'outputKind': 'float' if is_float else 'int32'}
    return {
        'id': c['id'], 'op': c['op'], 'args': c['args'], 'fwd': c['fwd'], 'bwd': c['bwd'],
        'inputs': [s.spec() for s in c['inputs']], **out_spec, 'gradKinds': grad_kinds, 'dtypes': per_dtype,
    }


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ids = [c['id'] for c in CASES]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise RuntimeError(f'duplicate case ids: {sorted(dup)}')
    cases = [gen_case(c) for c in CASES]
    doc = {
        'generator': 'tools/gen_op_fixtures.py',
        'torch': torch.__version__,
        'numpy': np.__version__,
        'dtypes': DTYPES,
        'note': 'reference = PyTorch in float64 on the (dtype-rounded) inputs, rounded once to float32',
        'cases': cases,
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    text = json.dumps(doc, separators=(',', ':'), allow_nan=False)
    with open(OUT_FILE, 'w') as f:
        f.write(text)
        f.write('\n')
    per_op = {}
    for c in cases:
        per_op[c['op']] = per_op.get(c['op'], 0) + 1
    print(f'{len(cases)} cases, {len(text) / 1e6:.2f} MB -> {os.path.relpath(OUT_FILE, ROOT)}', file=sys.stderr)
    print(' '.join(f'{k}:{v}' for k, v in per_op.items()), file=sys.stderr)


if __name__ == '__main__':
    main()
