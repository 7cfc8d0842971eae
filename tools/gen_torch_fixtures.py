"""PyTorch files for test/torch_io.test.ts and test/resnet.test.ts, written by PyTorch 1.13 itself.

    /usr/bin/python3 tools/gen_torch_fixtures.py          # writes test/fixtures/torch/
    /usr/bin/python3 tools/check_torch_roundtrip.py       # then: mixprec's saveTorch output through torch.load

What is written (test/fixtures/torch/):
- resnet18_w8.pth, resnet50_w8.pth: `torch.save(model.state_dict())` of torchvision's ResNet-18 and
  ResNet-50 at 1/8 of their width (stem 8 channels, stages 8/16/32/64 planes; torchvision's own
  classes and forward, only the widths divided: see NarrowResNet), seeded random weights and
  non-trivial batch-norm statistics (running mean/var, num_batches_tracked); the full models are
  47 MB and 102 MB. resnet_input.bin: a fixed input batch [2, 3, 64, 64] (float32, little-endian);
  resnet_io.json: PyTorch's eval-mode float32 logits of both on it.
- resnet_shapes.json: every state_dict key of the full-width torchvision resnet18/34/50 with its
  shape and dtype (the architecture check for the full models without committing their weights).
- dtypes.pt: one tensor per dtype (float32, float16, bfloat16, float64, int64, int32, int16, int8,
  uint8, bool), 0-d tensors, a transposed view and an offset slice sharing one storage;
  dtypes.json: the expected values (16-bit floats as bit patterns).
- checkpoint.pt: a nested checkpoint {model, optimizer (AdamW after one step), iter_num,
  best_val_loss, model_args {...}, config (OrderedDict), ...} with lists, tuples, None, bools,
  strings, big ints; checkpoint.json: its non-tensor values.
- malicious_os_system.pt (torch.save of an object whose __reduce__ is os.system, i.e. posix.system),
  malicious_builtins_eval.pt (a hand-made pickle naming builtins.eval): loading either in Python
  without weights_only would create MARKER; mixprec must refuse them and create nothing.
- legacy.pt: _use_new_zipfile_serialization=False (the pre-1.6 format).
- torchscript.pt: torch.jit.save of a tiny module (an archive with code, refused).
- resize.json: torchvision's Resize(BILINEAR, antialias=True) of float and uint8 images, enlarged
  and shrunk (mx.data.Resize's reference).
- corrupt_*.pt: a truncated archive, a storage shorter than its tensor, a storage entry shorter
  than its declared size, sizes whose element count overflows, a storage declaring 2^50 elements,
  a truncated pickle, an int64 value beyond int32.
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'torch')
MARKER = '/tmp/mixprec-malicious-pickle-ran'


class NarrowResNet(ResNet):
    """torchvision's ResNet with every width divided by `k`: the same classes, names and forward."""

    def __init__(self, block, layers, k, num_classes=1000):
        self._k = k
        self._first_layer = True
        super().__init__(block, layers, num_classes=num_classes)
        w = 64 // k
        self.conv1 = torch.nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(w)
        self.fc = torch.nn.Linear(512 // k * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if self._first_layer:
            self.inplanes = 64 // self._k
            self._first_layer = False
        return super()._make_layer(block, planes // self._k, blocks, stride, dilate)


def randomize(model, gen):
    """Seeded random weights and batch-norm statistics that keep eval-mode activations O(1)."""
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                # The last norm of a residual branch smaller, so the sum stays O(1) over 16 blocks.
                last = name.endswith('bn2') and isinstance(model.layer1[0], BasicBlock) or name.endswith('bn3')
                m.weight.copy_((0.1 + 0.3 * torch.rand(n, generator=gen)) if last else (0.5 + torch.rand(n, generator=gen)))
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen) * 1.5)
                m.num_batches_tracked.fill_(int(torch.randint(1, 10000, (1,), generator=gen)))
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / m.in_features ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def bits16(t):
    return t.view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).reshape(-1).tolist()


def values(t):
    if t.dtype in (torch.float16, torch.bfloat16):
        return {'bits': bits16(t)}
    if t.dtype == torch.bool:
        return t.to(torch.int32).reshape(-1).tolist()
    if t.dtype == torch.float64:
        return [repr(float(v)) for v in t.reshape(-1).tolist()]
    if t.dtype == torch.float32:
        return [float(v) for v in t.reshape(-1).tolist()]
    return t.reshape(-1).tolist()


def resnets():
    io_json = {'input_shape': [2, 3, 64, 64]}
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(64))
    x.numpy().astype('<f4').tofile(os.path.join(OUT, 'resnet_input.bin'))
    for name, block, layers in [('resnet18', BasicBlock, [2, 2, 2, 2]), ('resnet50', Bottleneck, [3, 4, 6, 3])]:
        gen = torch.Generator().manual_seed(18 if name == 'resnet18' else 50)
        model = NarrowResNet(block, layers, 8)
        randomize(model, gen)
        model.eval()
        with torch.no_grad():
            logits = model(x)
        torch.save(model.state_dict(), os.path.join(OUT, f'{name}_w8.pth'))
        io_json[name] = {'logits_shape': list(logits.shape), 'logits': values(logits)}
        print(name, 'logits', logits[0, :4].tolist(), 'abs max', float(logits.abs().max()))
    with open(os.path.join(OUT, 'resnet_io.json'), 'w') as f:
        json.dump(io_json, f)
    shapes = {}
    for name in ['resnet18', 'resnet34', 'resnet50']:
        sd = getattr(torchvision.models, name)().state_dict()
        shapes[name] = [[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in sd.items()]
    with open(os.path.join(OUT, 'resnet_shapes.json'), 'w') as f:
        json.dump(shapes, f, indent=0)


def dtypes():
    g = torch.Generator().manual_seed(1)
    base = torch.randn(2, 3, generator=g) * 3
    d = collections.OrderedDict()
    d['float32'] = base.clone()
    d['float16'] = torch.tensor([[1.0, -2.5, 65504.0], [6e-8, float('inf'), float('nan')]], dtype=torch.float16)
    d['bfloat16'] = (base * 1e10).to(torch.bfloat16)
    d['float64'] = base.double() / 7
    d['int64'] = torch.tensor([[0, -1, 2147483647], [-2147483648, 12345, 7]], dtype=torch.int64)
    d['int32'] = torch.tensor([[1, -2, 3], [2147483647, -2147483648, 0]], dtype=torch.int32)
    d['int16'] = torch.tensor([[-32768, 32767, 5], [0, -1, 1]], dtype=torch.int16)
    d['int8'] = torch.tensor([[-128, 127, 0], [1, -1, 64]], dtype=torch.int8)
    d['uint8'] = torch.tensor([[0, 255, 128], [1, 2, 3]], dtype=torch.uint8)
    d['bool'] = torch.tensor([[True, False, True], [False, False, True]])
    d['scalar_float'] = torch.tensor(2.5)
    d['scalar_long'] = torch.tensor(7)
    d['scalar_half'] = torch.tensor(0.1, dtype=torch.float16)
    shared = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    d['shared'] = shared
    d['shared_t'] = shared.t()
    d['shared_slice'] = shared[1:, 1:3]
    d['empty'] = torch.zeros(0, 3)
    torch.save(d, os.path.join(OUT, 'dtypes.pt'))
    expected = collections.OrderedDict()
    for k, v in d.items():
        expected[k] = {'dtype': str(v.dtype).replace('torch.', ''), 'shape': list(v.shape), 'values': values(v.contiguous())}
    with open(os.path.join(OUT, 'dtypes.json'), 'w') as f:
        json.dump(expected, f, indent=1)


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.bn = torch.nn.BatchNorm1d(3)


def checkpoint():
    torch.manual_seed(3)
    net = TinyNet()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, betas=(0.9, 0.95))
    loss = net.bn(net.fc(torch.randn(5, 4))).pow(2).sum()
    loss.backward()
    opt.step()
    config = collections.OrderedDict([('lr', 0.001), ('warmup', 10), ('schedule', 'cosine')])
    ckpt = {
        'model': net.state_dict(),
        'optimizer': opt.state_dict(),
        'iter_num': 42,
        'best_val_loss': 1.5,
        'model_args': {'n_layer': 4, 'n_head': 2, 'n_embd': 64, 'bias': False, 'dropout': 0.0, 'name': 'tiny'},
        'config': config,
        'list': [1, 2.5, 'x', None, True],
        'tuple': (1, (2, 3), []),
        'none': None,
        'big': 2 ** 40,
        'huge': 2 ** 70,
        'neg': -5,
        'unicode': 'naïve ☃',
        'int_keys': {0: 'a', 1: 'b'},
        'size': torch.Size([2, 3]),
        'raw': b'\x00\x01\xff',
    }
    torch.save(ckpt, os.path.join(OUT, 'checkpoint.pt'))
    expect = {
        'iter_num': 42, 'best_val_loss': 1.5, 'model_args': ckpt['model_args'], 'config': dict(config),
        'list': [1, 2.5, 'x', None, True], 'tuple': [1, [2, 3], []], 'none': None, 'big': 2 ** 40, 'huge': str(2 ** 70),
        'neg': -5, 'unicode': 'naïve ☃', 'int_keys': {'0': 'a', '1': 'b'}, 'size': [2, 3], 'raw': [0, 1, 255],
        'model_keys': list(net.state_dict().keys()),
        'model_values': {k: values(v) for k, v in net.state_dict().items()},
        'optimizer_param_groups': [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt.state_dict()['param_groups']],
        'optimizer_state_keys': {str(k): list(v.keys()) for k, v in opt.state_dict()['state'].items()},
        'optimizer_exp_avg_0': values(opt.state_dict()['state'][0]['exp_avg']),
    }
    with open(os.path.join(OUT, 'checkpoint.json'), 'w') as f:
        json.dump(expect, f, indent=1, ensure_ascii=False)


class Evil:
    def __reduce__(self):
        return (os.system, (f'touch {MARKER}',))


def malicious():
    torch.save({'weight': torch.zeros(2), 'payload': Evil()}, os.path.join(OUT, 'malicious_os_system.pt'))
    # builtins.eval by hand: {'payload': eval("open(MARKER, 'w')")} in protocol 2.
    def unicode(text):
        raw = text.encode()
        return b'X' + struct.pack('<I', len(raw)) + raw
    pkl = b'\x80\x02}' + unicode('payload') + b'cbuiltins\neval\n' + unicode(f"open('{MARKER}', 'w')") + b'\x85Rs.'
    write_zip(os.path.join(OUT, 'malicious_builtins_eval.pt'), {'data.pkl': pkl})
    torch.save({'weight': torch.zeros(2)}, os.path.join(OUT, 'legacy.pt'), _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), os.path.join(OUT, 'torchscript.pt'))


def write_zip(path, records, name='archive'):
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_STORED) as z:
        # A fixed time stamp: regenerating gives the same bytes.
        for k, v in {**records, **({} if 'version' in records else {'version': b'3\n'})}.items():
            z.writestr(zipfile.ZipInfo(f'{name}/{k}', date_time=(1980, 1, 1, 0, 0, 0)), v)


class FakeStorage:
    def __init__(self, key, storage_type, numel):
        self.key, self.storage_type, self.numel = key, storage_type, numel


class FakeTensor:
    """Pickles as PyTorch pickles a tensor, with whatever size/stride/offset we give it."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ('storage', obj.storage_type, obj.key, 'cpu', obj.numel)
        return None


def fake_pkl(obj):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def corrupt():
    good = os.path.join(OUT, 'dtypes.pt')
    data = open(good, 'rb').read()
    open(os.path.join(OUT, 'corrupt_truncated.pt'), 'wb').write(data[: len(data) // 2])
    f4 = struct.pack('<4f', 1, 2, 3, 4)
    s4 = FakeStorage('0', torch.FloatStorage, 4)
    write_zip(os.path.join(OUT, 'corrupt_storage_short.pt'), {
        'data.pkl': fake_pkl({'w': FakeTensor(s4, 0, (10,), (1,))}), 'data/0': f4})
    write_zip(os.path.join(OUT, 'corrupt_entry_short.pt'), {
        'data.pkl': fake_pkl({'w': FakeTensor(FakeStorage('0', torch.FloatStorage, 8), 0, (8,), (1,))}), 'data/0': f4})
    write_zip(os.path.join(OUT, 'corrupt_size_overflow.pt'), {
        'data.pkl': fake_pkl({'w': FakeTensor(s4, 0, (2 ** 40, 2 ** 40), (0, 0))}), 'data/0': f4})
    write_zip(os.path.join(OUT, 'corrupt_huge_storage.pt'), {
        'data.pkl': fake_pkl({'w': FakeTensor(FakeStorage('0', torch.FloatStorage, 2 ** 50), 0, (2 ** 50,), (1,))}), 'data/0': f4})
    pkl = fake_pkl({'w': FakeTensor(s4, 0, (4,), (1,))})
    write_zip(os.path.join(OUT, 'corrupt_pickle_truncated.pt'), {'data.pkl': pkl[: len(pkl) // 2], 'data/0': f4})
    write_zip(os.path.join(OUT, 'corrupt_int64_range.pt'), {
        'data.pkl': fake_pkl({'counter': FakeTensor(FakeStorage('0', torch.LongStorage, 2), 0, (2,), (1,))}),
        'data/0': struct.pack('<2q', 5, 2 ** 40)})


def resize():
    """torchvision's Resize(BILINEAR, antialias=True) on float and uint8 images, up and down."""
    import torchvision.transforms.functional as TF
    g = torch.Generator().manual_seed(5)
    x = torch.rand(2, 3, 7, 9, generator=g)
    u8 = (torch.rand(2, 3, 7, 9, generator=g) * 255).round().to(torch.uint8)
    out = {'input': values(x), 'input_u8': values(u8), 'shape': list(x.shape), 'cases': []}
    for size in [[16, 20], [3, 4], [7, 5], [32, 40]]:
        y = TF.resize(x, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        yu = TF.resize(u8, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        out['cases'].append({'size': size, 'output': values(y), 'output_u8': values(yu)})
    with open(os.path.join(OUT, 'resize.json'), 'w') as f:
        json.dump(out, f)


def main():
    os.makedirs(OUT, exist_ok=True)
    resize()
    resnets()
    dtypes()
    checkpoint()
    malicious()
    corrupt()
    # Sanity: PyTorch itself reads the good files with weights_only and refuses the malicious ones.
    # (PyTorch 1.13's weights_only reader lacks the float opcode, which checkpoint.pt needs: 2.x reads it.)
    for name in ['resnet18_w8.pth', 'resnet50_w8.pth', 'dtypes.pt']:
        torch.load(os.path.join(OUT, name), weights_only=True)
    torch.load(os.path.join(OUT, 'checkpoint.pt'))
    for name in ['malicious_os_system.pt', 'malicious_builtins_eval.pt']:
        try:
            torch.load(os.path.join(OUT, name), weights_only=True)
            sys.exit(f'{name}: torch.load(weights_only=True) accepted it')
        except pickle.UnpicklingError as e:
            print(name, 'refused by PyTorch too:', str(e).splitlines()[-1])
    assert not os.path.exists(MARKER)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f'wrote {len(os.listdir(OUT))} files, {total / 1e6:.2f} MB, to {os.path.normpath(OUT)}')


if __name__ == '__main__':
    main()
