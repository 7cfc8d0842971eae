"""Runs mixprec's saveTorch output through PyTorch 1.13 (what tests cannot do without Python).

    npm run build && /usr/bin/python3 tools/check_torch_roundtrip.py [--update]

tools/torch_roundtrip.mjs writes three files with mx.io.saveTorch; here PyTorch reads them:
- dtypes.pt with torch.load(weights_only=True): every tensor equals test/fixtures/torch/dtypes.pt's
  (int16/int8/uint8/int64 come back as int64: mixprec holds them as int32 and writes PyTorch's int64).
- resnet18_w8.pth with weights_only=True, loaded into torchvision's ResNet-18 (1/8 width, the
  fixture's NarrowResNet) with strict key matching; its logits equal the fixture's bit for bit.
- checkpoint.pt: floats are pickled as torch.save pickles them (BINFLOAT), which PyTorch 1.13's
  weights_only reader lacks (2.x has it), so it is read with torch.load and compared value by value.
--update copies dtypes.pt to test/fixtures/torch/saved_by_mixprec.pt, the bytes the test expects.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from gen_torch_fixtures import NarrowResNet, OUT  # noqa: E402
from torchvision.models.resnet import BasicBlock  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), '..')


def main():
    tmp = tempfile.mkdtemp(prefix='mixprec-roundtrip-')
    try:
        subprocess.run(['node', os.path.join(ROOT, 'tools', 'torch_roundtrip.mjs'), tmp], check=True)
        original = torch.load(os.path.join(OUT, 'dtypes.pt'), weights_only=True)
        saved = torch.load(os.path.join(tmp, 'dtypes.pt'), weights_only=True)
        assert list(saved.keys()) == list(original.keys()), (list(saved.keys()), list(original.keys()))
        for k, v in original.items():
            s = saved[k]
            widened = v.dtype in (torch.int16, torch.int8, torch.uint8, torch.int32, torch.int64)
            assert s.dtype == (torch.int64 if widened else v.dtype), (k, s.dtype, v.dtype)
            assert list(s.shape) == list(v.shape), (k, s.shape, v.shape)
            a, b = s.contiguous().view(-1), v.contiguous().view(-1)
            if v.is_floating_point():
                assert torch.equal(a.view(torch.int16 if v.element_size() == 2 else torch.int32 if v.element_size() == 4 else torch.int64),
                                   b.view(torch.int16 if v.element_size() == 2 else torch.int32 if v.element_size() == 4 else torch.int64)), k
            else:
                assert torch.equal(a.to(torch.int64), b.to(torch.int64)), k
        print('dtypes.pt: torch.load(weights_only=True) reads every tensor bit for bit')

        sd = torch.load(os.path.join(tmp, 'resnet18_w8.pth'), weights_only=True)
        model = NarrowResNet(BasicBlock, [2, 2, 2, 2], 8)
        model.load_state_dict(sd, strict=True)
        assert sd['bn1.num_batches_tracked'].dtype == torch.int64
        ref = torch.load(os.path.join(OUT, 'resnet18_w8.pth'), weights_only=True)
        for k, v in ref.items():
            assert torch.equal(sd[k], v), k
        model.eval()
        x = torch.from_numpy(np.fromfile(os.path.join(OUT, 'resnet_input.bin'), dtype='<f4').reshape(2, 3, 64, 64))
        ref_model = NarrowResNet(BasicBlock, [2, 2, 2, 2], 8)
        ref_model.load_state_dict(ref)
        ref_model.eval()
        with torch.no_grad():
            assert torch.equal(model(x), ref_model(x))
        print(f'resnet18_w8.pth: weights_only=True, load_state_dict(strict=True) into torchvision ResNet-18, {len(sd)} keys, logits equal')

        ck = torch.load(os.path.join(tmp, 'checkpoint.pt'))
        assert ck['iter_num'] == 42 and ck['best_val_loss'] == 1.25
        assert ck['model_args'] == {'n_layer': 4, 'bias': False, 'name': 'tiny', 'dropout': 0.1}, ck['model_args']
        assert ck['list'] == [1, -2, 2 ** 40, 'x', None, True, [0.5]], ck['list']
        assert ck['model']['fc.weight'].shape == (3, 4) and ck['model']['fc.bias'].dtype == torch.float32
        torch.nn.Linear(4, 3).load_state_dict({k.split('.', 1)[1]: v for k, v in ck['model'].items()})
        print('checkpoint.pt: torch.load reads the nested checkpoint (numbers, strings, None, bools, lists, tensors)')

        if '--update' in sys.argv:
            shutil.copy(os.path.join(tmp, 'dtypes.pt'), os.path.join(OUT, 'saved_by_mixprec.pt'))
            print('copied dtypes.pt to test/fixtures/torch/saved_by_mixprec.pt')
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
