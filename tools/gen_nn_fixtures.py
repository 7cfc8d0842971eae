#!/usr/bin/python3
"""Generate the nn module fixtures in test/fixtures/nn/ (read by test/nn.test.ts).

Run with the Debian python that has numpy and torch (a pyenv ``python3`` on PATH may lack them):

    /usr/bin/python3 tools/gen_nn_fixtures.py

Deterministic: every case seeds torch with crc32 of its name, so running it twice gives identical files.

Files
  * ``nn.bin``: little-endian arrays (float32 or int32) back to back.
  * ``manifest.json``: per case, ``meta`` (the layer's construction arguments, camelCase as the TS
    constructors take them) and ``tensors``: key -> {dtype, shape, offset (bytes), length}.

Keys of a case
  ``state/<name>``   the module's state dict under mixprec's names (loaded with loadStateDict);
                     BatchNorm's running_mean/running_var/num_batches_tracked become runningMean/
                     runningVar/numBatchesTracked (int32); LSTM/GRU keep PyTorch's names.
  ``input/<name>``   float inputs (their gradients are checked) or int32 inputs (indices, targets).
  ``gradOut/<name>`` the weight of each output in the scalar loss sum(output * gradOut).
  ``output/<name>``  the outputs; ``grad/<param>`` and ``gradInput/<name>`` the gradients of that loss;
  ``after/<name>``   buffers after the forward passes (running statistics).

References: weights and inputs are drawn in float32; the module is then run by PyTorch in float64
on those exact values and the results are rounded once to float32, so they are PyTorch's float32
answer without float32 accumulation noise. The TS tests run float32 and compare within ~1e-5.
"""

import json
import os
import zlib

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, 'test', 'fixtures', 'nn')

RENAME = {'running_mean': 'runningMean', 'running_var': 'runningVar', 'num_batches_tracked': 'numBatchesTracked', 'pos_weight': 'posWeight'}


def ts_name(name, strip=''):
    if strip and name.startswith(strip):
        name = name[len(strip):]
    parts = name.split('.')
    parts[-1] = RENAME.get(parts[-1], parts[-1])
    return '.'.join(parts)


class Writer:
    def __init__(self):
        self.chunks = []
        self.offset = 0
        self.cases = {}

    def add(self, case, key, t):
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu()
            arr = t.numpy().astype(np.int32) if not t.is_floating_point() else t.numpy().astype(np.float32)
        else:
            arr = np.asarray(t)
        dtype = 'int32' if arr.dtype.kind in 'iub' else 'float32'
        shape = list(arr.shape)  # before ascontiguousarray, which makes 0-d arrays 1-d
        arr = np.ascontiguousarray(arr.astype('<i4' if dtype == 'int32' else '<f4'))
        entry = {'dtype': dtype, 'shape': shape, 'offset': self.offset, 'length': int(arr.size)}
        self.cases.setdefault(case, {'meta': {}, 'tensors': {}})['tensors'][key] = entry
        b = arr.tobytes()
        self.chunks.append(b)
        self.offset += len(b)

    def meta(self, case, meta):
        self.cases.setdefault(case, {'meta': {}, 'tensors': {}})['meta'] = meta

    def write(self):
        os.makedirs(OUT_DIR, exist_ok=True)
        with open(os.path.join(OUT_DIR, 'nn.bin'), 'wb') as f:
            for c in self.chunks:
                f.write(c)
        manifest = {
            'generator': 'tools/gen_nn_fixtures.py',
            'torch': torch.__version__,
            'numpy': np.__version__,
            'bytes': self.offset,
            'cases': self.cases,
        }
        with open(os.path.join(OUT_DIR, 'manifest.json'), 'w') as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.write('\n')


W = Writer()


def seed(name):
    torch.manual_seed(zlib.crc32(name.encode()))


def f32(shape, scale=1.0):
    """A float32-representable float64 tensor."""
    return (torch.randn(tuple(shape), dtype=torch.float32) * scale).double()


def run_case(name, module, inputs, meta, steps=None, after_buffers=(), eval_inputs=None, strip=''):
    """Run `module` (float64) on float inputs; loss = sum(out * gradOut) over every output.

    inputs: dict name -> tensor (float64 leaf or int64). `steps`: for stateful modules, a list of input
    dicts run in training mode one after the other (outputs out<k>), their losses summed.
    """
    seed(name + '/gradOut')
    module = module.double()
    # Round the initial parameters to float32 so both sides start from the same values.
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.float().double())
    W.meta(name, meta)
    for k, v in module.state_dict().items():
        W.add(name, 'state/' + ts_name(k, strip), v)
    step_inputs = steps if steps is not None else [inputs]
    total = 0
    leaves = {}
    for si, ins in enumerate(step_inputs):
        args = []
        for k, v in ins.items():
            key = k if steps is None else f'{k}{si}'
            if v.is_floating_point():
                v = v.clone().requires_grad_(True)
                leaves[key] = v
            W.add(name, 'input/' + key, v)
            args.append(v)
        out = module(*args)
        outs = flatten_outputs(out)
        for oi, o in enumerate(outs):
            key = f'out{oi}' if steps is None else f'out{oi}_{si}'
            g = f32(o.shape)
            W.add(name, 'gradOut/' + key, g)
            W.add(name, 'output/' + key, o)
            total = total + (o * g).sum()
    total.backward()
    for k, p in module.named_parameters():
        W.add(name, 'grad/' + ts_name(k, strip), p.grad if p.grad is not None else torch.zeros_like(p))
    for k, v in leaves.items():
        W.add(name, 'gradInput/' + k, v.grad)
    for b in after_buffers:
        W.add(name, 'after/' + ts_name(b), module.state_dict()[b])
    if eval_inputs is not None:
        module.eval()
        with torch.no_grad():
            for k, v in eval_inputs.items():
                W.add(name, 'input/eval_' + k, v)
                W.add(name, 'output/eval', module(v))


def flatten_outputs(out):
    if isinstance(out, torch.Tensor):
        return [out]
    res = []
    for o in out:
        res.extend(flatten_outputs(o))
    return res


def case(name, build, inputs_fn, meta, **kw):
    seed(name + '/weights')
    module = build()
    seed(name + '/data')
    inputs = inputs_fn()
    run_case(name, module, inputs, meta, **kw)


def main():
    torch.set_default_dtype(torch.float64)

    case('linear', lambda: nn.Linear(5, 3), lambda: {'x': f32([2, 4, 5])}, {'in': 5, 'out': 3})
    case('linear_nobias', lambda: nn.Linear(6, 2, bias=False), lambda: {'x': f32([3, 6])}, {'in': 6, 'out': 2})

    case('conv2d', lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), lambda: {'x': f32([2, 4, 7, 7])},
         {'in': 4, 'out': 6, 'kernel': 3, 'stride': 2, 'padding': 1, 'groups': 2})
    case('conv2d_dilated', lambda: nn.Conv2d(3, 2, (3, 2), dilation=2, bias=False, padding=(1, 0)), lambda: {'x': f32([1, 3, 8, 7])},
         {'in': 3, 'out': 2, 'kernel': [3, 2], 'dilation': 2, 'padding': [1, 0], 'bias': False})
    case('convTranspose2d', lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
         lambda: {'x': f32([2, 4, 5, 5])}, {'in': 4, 'out': 6, 'kernel': 3, 'stride': 2, 'padding': 1, 'outputPadding': 1, 'groups': 2})

    case('maxPool2d', lambda: nn.MaxPool2d(3, stride=2, padding=1), lambda: {'x': f32([2, 3, 8, 8])}, {})
    case('avgPool2d', lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
         lambda: {'x': f32([2, 3, 8, 8])}, {})
    case('adaptiveAvgPool2d', lambda: nn.AdaptiveAvgPool2d((3, 2)), lambda: {'x': f32([2, 3, 7, 8])}, {})

    # BatchNorm: three training steps (affine parameters randomised), then eval on another batch.
    def bn(mod_fn, shape, momentum):
        def build():
            m = mod_fn()
            with torch.no_grad():
                m.weight.copy_(1 + 0.5 * torch.randn(m.weight.shape))
                m.bias.copy_(0.5 * torch.randn(m.bias.shape))
            return m
        return build, lambda: [{'x': f32(shape, 2.0) + 1.5} for _ in range(3)], lambda: {'x': f32(shape) + 1.0}

    for cname, fn, shape, momentum in [
        ('batchNorm2d', lambda: nn.BatchNorm2d(3), [4, 3, 5, 5], 0.1),
        ('batchNorm1d_cumulative', lambda: nn.BatchNorm1d(4, momentum=None), [6, 4, 3], None),
        ('batchNorm1d_2d', lambda: nn.BatchNorm1d(5, momentum=0.3, eps=1e-3), [8, 5], 0.3),
    ]:
        build, steps_fn, eval_fn = bn(fn, shape, momentum)
        seed(cname + '/weights')
        module = build()
        seed(cname + '/data')
        steps = steps_fn()
        ev = eval_fn()
        m = module
        meta = {'features': shape[1], 'momentum': momentum, 'eps': m.eps}
        run_case(cname, module, None, meta, steps=steps, after_buffers=('running_mean', 'running_var', 'num_batches_tracked'), eval_inputs=ev)

    def ln():
        m = nn.LayerNorm([4, 5])
        with torch.no_grad():
            m.weight.copy_(1 + 0.5 * torch.randn(m.weight.shape))
            m.bias.copy_(0.5 * torch.randn(m.bias.shape))
        return m
    case('layerNorm', ln, lambda: {'x': f32([2, 3, 4, 5], 2.0) + 0.5}, {'shape': [4, 5]})

    case('embedding', lambda: nn.Embedding(10, 4, padding_idx=2),
         lambda: {'idx': torch.tensor([[1, 2, 3, 2, 9], [0, 5, 5, 2, 7], [4, 8, 6, 1, 3]])}, {'num': 10, 'dim': 4, 'paddingIdx': 2})

    for cname, mod in [
        ('relu', nn.ReLU()), ('leakyRelu', nn.LeakyReLU(0.2)), ('gelu', nn.GELU()), ('geluTanh', nn.GELU(approximate='tanh')),
        ('tanh', nn.Tanh()), ('sigmoid', nn.Sigmoid()), ('softmax', nn.Softmax(dim=1)), ('logSoftmax', nn.LogSoftmax(dim=-1)),
        ('flatten', nn.Flatten()),
    ]:
        case('act_' + cname, lambda mod=mod: mod, lambda: {'x': f32([3, 4, 5])}, {})

    # Recurrent layers: 2 layers, both layouts, with and without an initial state; one bidirectional.
    for kind in ['lstm', 'gru']:
        cls = nn.LSTM if kind == 'lstm' else nn.GRU
        for cname, kw, x_shape, with_state in [
            ('seqFirst_state', dict(num_layers=2), [6, 3, 5], True),
            ('batchFirst', dict(num_layers=2, batch_first=True), [3, 6, 5], False),
            ('bidir_batchFirst_state', dict(num_layers=2, batch_first=True, bidirectional=True), [2, 4, 5], True),
        ]:
            D = 2 if kw.get('bidirectional') else 1
            batch = x_shape[0] if kw.get('batch_first') else x_shape[1]

            def inputs(x_shape=x_shape, with_state=with_state, D=D, batch=batch, kind=kind):
                d = {'x': f32(x_shape)}
                if with_state:
                    d['h0'] = f32([2 * D, batch, 4], 0.5)
                    if kind == 'lstm':
                        d['c0'] = f32([2 * D, batch, 4], 0.5)
                return d

            class Wrap(nn.Module):
                def __init__(self, kw=kw):
                    super().__init__()
                    self.rnn = cls(5, 4, **kw)

                def forward(self, x, h0=None, c0=None):
                    if h0 is None:
                        return self.rnn(x)
                    return self.rnn(x, (h0, c0) if c0 is not None else h0)

            meta = {'inputSize': 5, 'hiddenSize': 4, 'numLayers': 2, 'batchFirst': bool(kw.get('batch_first')),
                    'bidirectional': bool(kw.get('bidirectional')), 'withState': with_state}
            case(f'{kind}_{cname}', Wrap, inputs, meta, strip='rnn.')

    # Losses (targets int32 class indices, or floats for MSE/BCE).
    def logits_targets(n, c, ignore=False):
        x = f32([n, c])
        t = torch.randint(0, c, (n,))
        if ignore:
            t[1] = -100
        return x, t

    def ce_inputs():
        x, t = logits_targets(6, 5, ignore=True)
        return {'x': x, 't': t}

    seed('weights')
    cw = torch.rand(5).float().double() + 0.5
    case('crossEntropy_weighted', lambda: nn.CrossEntropyLoss(weight=cw, label_smoothing=0.1), ce_inputs,
         {'weight': cw.tolist(), 'labelSmoothing': 0.1})
    case('crossEntropy_spatial_sum', lambda: nn.CrossEntropyLoss(reduction='sum'),
         lambda: {'x': f32([2, 4, 3, 2]), 't': torch.randint(0, 4, (2, 3, 2))}, {'reduction': 'sum'})
    case('nllLoss_weighted', lambda: nn.NLLLoss(weight=cw), lambda: {'x': torch.log_softmax(f32([6, 5]), 1).float().double(), 't': torch.randint(0, 5, (6,))},
         {'weight': cw.tolist()})
    case('mseLoss', lambda: nn.MSELoss(), lambda: {'x': f32([3, 4]), 'y': f32([3, 4])}, {})
    seed('bce')
    bw = torch.rand(4).float().double() + 0.5
    pw = torch.rand(4).float().double() * 3
    case('bceWithLogits', lambda: nn.BCEWithLogitsLoss(weight=bw, pos_weight=pw),
         lambda: {'x': f32([3, 4], 2.0), 'y': torch.rand(3, 4).float().double()}, {'weight': bw.tolist(), 'posWeight': pw.tolist()})

    # Attention: nn.MultiheadAttention and nn.TransformerEncoderLayer. Bool masks travel as int32 0/1
    # inputs and are made bool in the wrappers (PyTorch's convention: true = not allowed).
    class MHA(nn.Module):
        def __init__(self, args, kw, fwd):
            super().__init__()
            self.mha = nn.MultiheadAttention(*args, **kw)
            self.fwd = fwd

        def forward(self, q, k=None, v=None, key_padding_mask=None, attn_mask=None):
            k = q if k is None else k
            v = q if v is None else v
            masks = {}
            for name, m in (('attn_mask', attn_mask), ('key_padding_mask', key_padding_mask)):
                if m is not None:
                    masks[name] = m if m.is_floating_point() else m.bool()
            out, weights = self.mha(q, k, v, **masks, **self.fwd)
            return (out, weights) if weights is not None else out

    class SelfMHA(MHA):
        def forward(self, x, attn_mask=None):
            return super().forward(x, attn_mask=attn_mask)

    def bool_mask(shape, p=0.3):
        m = torch.rand(*shape) < p
        m[..., 0] = False  # every query keeps a key
        return m.int()

    def padding(B, S):
        m = torch.zeros(B, S, dtype=torch.int32)
        for b in range(B):
            m[b, S - 1 - b:] = 1  # the last b + 1 keys are padding
        return m

    case('mha_batchFirst_masks', lambda: MHA((8, 2), {'batch_first': True}, {}),
         lambda: {'q': f32([2, 5, 8]), 'k': f32([2, 6, 8]), 'v': f32([2, 6, 8]), 'keyPaddingMask': padding(2, 6), 'attnMask': bool_mask([5, 6])},
         {'embedDim': 8, 'numHeads': 2, 'batchFirst': True, 'needWeights': True, 'averageAttnWeights': True}, strip='mha.')
    case('mha_self_floatMask_perHead', lambda: SelfMHA((8, 4), {'bias': False}, {'average_attn_weights': False}),
         lambda: {'x': f32([5, 3, 8]), 'attnMask': f32([5, 5])},
         {'embedDim': 8, 'numHeads': 4, 'bias': False, 'needWeights': True, 'averageAttnWeights': False}, strip='mha.')
    case('mha_kdim_vdim_noWeights', lambda: MHA((8, 2), {'kdim': 5, 'vdim': 3, 'batch_first': True}, {'need_weights': False}),
         lambda: {'q': f32([2, 4, 8]), 'k': f32([2, 6, 5]), 'v': f32([2, 6, 3]), 'keyPaddingMask': padding(2, 6)},
         {'embedDim': 8, 'numHeads': 2, 'kdim': 5, 'vdim': 3, 'batchFirst': True, 'needWeights': False}, strip='mha.')

    class TEL(nn.Module):
        def __init__(self, **kw):
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(**kw)

        def forward(self, x, src_mask=None, src_key_padding_mask=None):
            return self.layer(x, src_mask=None if src_mask is None else src_mask.bool(),
                              src_key_padding_mask=None if src_key_padding_mask is None else src_key_padding_mask.bool())

    causal = torch.triu(torch.ones(5, 5, dtype=torch.int32), diagonal=1)
    case('transformerEncoderLayer_postNorm_relu', lambda: TEL(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True),
         lambda: {'x': f32([2, 5, 8]), 'srcMask': causal, 'srcKeyPaddingMask': padding(2, 5)},
         {'dModel': 8, 'nhead': 2, 'dimFeedforward': 16, 'batchFirst': True, 'normFirst': False, 'activation': 'relu'}, strip='layer.')
    case('transformerEncoderLayer_preNorm_gelu', lambda: TEL(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, activation='gelu', norm_first=True),
         lambda: {'x': f32([5, 2, 8])},
         {'dModel': 8, 'nhead': 2, 'dimFeedforward': 16, 'batchFirst': False, 'normFirst': True, 'activation': 'gelu'}, strip='layer.')

    # LeNet-like network.
    def lenet():
        return nn.Sequential(
            nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    case('lenet', lenet, lambda: {'x': f32([2, 3, 32, 32])}, {})

    W.write()
    print(f'wrote {len(W.cases)} cases, {W.offset} bytes to {OUT_DIR}')


if __name__ == '__main__':
    main()
