#!/usr/bin/python3
"""Generate the optimizer and lr-scheduler fixtures in test/fixtures/optim/ (read by test/optim.test.ts).

Run with the Debian python that has numpy and torch 1.13 (a pyenv ``python3`` on PATH may lack them):

    /usr/bin/python3 tools/gen_optim_fixtures.py

Deterministic: every case seeds numpy with crc32 of its name, so running it twice gives identical files.

``optim.json``
  ``optimizers``: per case
    ``optimizer``  'SGD' | 'Adam' | 'AdamW' | 'RMSprop'; ``options`` its camelCase options;
    ``dtype``      the parameters' dtype in mixprec: 'float32', 'float16' or 'bfloat16';
    ``groups``     null (one group of every parameter) or a list of {params: [indices], options};
    ``params``     initial parameters: {shape, values} (values exact in ``dtype``);
    ``grads``      grads[step][param]: flat values set as p.grad before each step (exact in ``dtype``);
    ``expected``   expected[step][param]: flat parameters after each step.
  The float32 reference is torch's single-tensor optimizer on float32 parameters. For a 16-bit case,
  torch runs the same float32 update and the parameter is rounded to the 16-bit format after each step
  (pure 16-bit parameters: float32 arithmetic and float32 state, one rounding into the parameter).

  ``schedulers``: per case ``lrs[k]`` (getLastLr() after construction, k = 0, and after each step k)
  and, for OneCycleLR with momentum cycling, ``momenta[k]`` (SGD's momentum or Adam's beta1 per group).

Values are Python floats (float32 values widened exactly); JSON keeps them exactly.
"""

import json
import os
import warnings
import zlib

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, 'test', 'fixtures', 'optim')

SNAKE = {'weightDecay': 'weight_decay', 'lr': 'lr', 'momentum': 'momentum', 'dampening': 'dampening',
         'nesterov': 'nesterov', 'maximize': 'maximize', 'betas': 'betas', 'eps': 'eps', 'amsgrad': 'amsgrad',
         'alpha': 'alpha', 'centered': 'centered'}

TORCH_DTYPE = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}

SHAPES = [[3, 4], [4]]
STEPS = 5
# Gradient scale per step (varying, so that AMSGrad's maximum differs from the current average).
GRAD_SCALE = [1.0, 3.0, 0.2, 2.0, 0.5]


def snake(opts):
    out = {}
    for k, v in opts.items():
        out[SNAKE[k]] = tuple(v) if k == 'betas' else v
    return out


def rounded(a, dtype):
    """float32 values rounded to ``dtype`` and widened back to float32."""
    t = torch.tensor(a, dtype=torch.float32)
    return t.to(TORCH_DTYPE[dtype]).to(torch.float32)


def optimizer_case(name, optimizer, options, dtype='float32', groups=None, lr=None):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    params = []
    for shape in SHAPES:
        # Away from zero, so that relative comparisons are meaningful.
        v = rng.standard_normal(shape).astype(np.float32)
        v = np.where(np.abs(v) < 0.5, np.sign(v + 1e-3) * 0.5 + v, v).astype(np.float32)
        params.append(rounded(v, dtype).clone().requires_grad_(True))
    init = [{'shape': list(p.shape), 'values': [float(x) for x in p.detach().reshape(-1)]} for p in params]
    grads = []
    for s in range(STEPS):
        grads.append([rounded(rng.standard_normal(p.shape).astype(np.float32) * GRAD_SCALE[s], dtype) for p in params])

    cls = getattr(torch.optim, optimizer)
    if groups is None:
        opt = cls(params, **snake(options))
    else:
        opt = cls([dict(params=[params[i] for i in g['params']], **snake(g['options'])) for g in groups], **snake(options))
    expected = []
    for s in range(STEPS):
        for p, g in zip(params, grads[s]):
            p.grad = g.clone()
        opt.step()
        if dtype != 'float32':
            with torch.no_grad():
                for p in params:
                    p.copy_(p.to(TORCH_DTYPE[dtype]).to(torch.float32))
        expected.append([[float(x) for x in p.detach().reshape(-1)] for p in params])
    return {
        'optimizer': optimizer,
        'options': options,
        'dtype': dtype,
        'groups': groups,
        'params': init,
        'grads': [[[float(x) for x in g.reshape(-1)] for g in step] for step in grads],
        'expected': expected,
    }


def optimizer_cases():
    cases = {}

    def add(name, *args, **kw):
        cases[name] = optimizer_case(name, *args, **kw)

    add('sgd_plain', 'SGD', {'lr': 0.02})
    add('sgd_momentum_dampening_wd', 'SGD', {'lr': 0.01, 'momentum': 0.9, 'dampening': 0.1, 'weightDecay': 0.01})
    add('sgd_nesterov_maximize', 'SGD', {'lr': 0.01, 'momentum': 0.9, 'nesterov': True, 'weightDecay': 0.01, 'maximize': True})
    add('adam_default', 'Adam', {'lr': 0.01})
    add('adam_wd_amsgrad', 'Adam', {'lr': 0.01, 'betas': [0.8, 0.99], 'eps': 1e-6, 'weightDecay': 0.1, 'amsgrad': True})
    add('adam_maximize_amsgrad', 'Adam', {'lr': 0.02, 'maximize': True, 'amsgrad': True})
    add('adamw_default', 'AdamW', {'lr': 0.01})
    add('adamw_wd_amsgrad_maximize', 'AdamW', {'lr': 0.01, 'betas': [0.85, 0.995], 'weightDecay': 0.1, 'amsgrad': True, 'maximize': True})
    add('rmsprop_default', 'RMSprop', {'lr': 0.01})
    add('rmsprop_centered_momentum_wd', 'RMSprop', {'lr': 0.01, 'alpha': 0.9, 'eps': 1e-6, 'weightDecay': 0.01, 'momentum': 0.9, 'centered': True})
    add('rmsprop_momentum_maximize', 'RMSprop', {'lr': 0.005, 'momentum': 0.5, 'maximize': True})
    add('rmsprop_centered', 'RMSprop', {'lr': 0.01, 'centered': True})
    # A large eps makes its placement (after the bias-corrected square root) visible.
    add('adam_large_eps', 'Adam', {'lr': 0.05, 'betas': [0.5, 0.9], 'eps': 0.1})
    add('adamw_large_eps_amsgrad', 'AdamW', {'lr': 0.05, 'eps': 0.05, 'amsgrad': True, 'weightDecay': 0.5})
    add('rmsprop_large_eps_centered', 'RMSprop', {'lr': 0.02, 'alpha': 0.5, 'eps': 0.1, 'centered': True})
    # Pure 16-bit parameters.
    add('sgd_momentum_f16', 'SGD', {'lr': 0.01, 'momentum': 0.9, 'weightDecay': 0.01}, dtype='float16')
    add('adam_wd_amsgrad_f16', 'Adam', {'lr': 0.01, 'weightDecay': 0.1, 'amsgrad': True}, dtype='float16')
    add('adamw_default_f16', 'AdamW', {'lr': 0.01}, dtype='float16')
    add('rmsprop_centered_momentum_f16', 'RMSprop', {'lr': 0.01, 'momentum': 0.9, 'centered': True}, dtype='float16')
    add('adam_default_bf16', 'Adam', {'lr': 0.01}, dtype='bfloat16')
    add('adamw_amsgrad_bf16', 'AdamW', {'lr': 0.01, 'weightDecay': 0.05, 'amsgrad': True}, dtype='bfloat16')
    # Parameter groups with their own lr / weight decay / options.
    add('adam_groups', 'Adam', {'lr': 0.02},
        groups=[{'params': [0], 'options': {'lr': 0.01}}, {'params': [1], 'options': {'lr': 0.05, 'weightDecay': 0.1, 'amsgrad': True}}])
    add('adamw_groups', 'AdamW', {'lr': 0.01},
        groups=[{'params': [0], 'options': {'weightDecay': 0.2}}, {'params': [1], 'options': {'weightDecay': 0.0, 'lr': 0.03}}])
    add('sgd_groups', 'SGD', {'lr': 0.01, 'momentum': 0.9},
        groups=[{'params': [0], 'options': {}}, {'params': [1], 'options': {'lr': 0.01, 'weightDecay': 0.1, 'momentum': 0.5}}])
    add('rmsprop_groups', 'RMSprop', {'lr': 0.01},
        groups=[{'params': [0], 'options': {'centered': True}}, {'params': [1], 'options': {'lr': 0.003, 'momentum': 0.9}}])
    return cases


def scheduler_case(make_opt, make_sched, steps, momentum=None):
    """lrs (and momenta) after construction and after each of ``steps`` steps."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        opt = make_opt()
        sched = make_sched(opt)
        lrs = [list(sched.get_last_lr())]
        momenta = [momentum(opt)] if momentum else None
        for _ in range(steps):
            opt.step()  # no gradients: a no-op, only keeps PyTorch's call-order check quiet
            sched.step()
            lrs.append(list(sched.get_last_lr()))
            if momentum:
                momenta.append(momentum(opt))
        out = {'lrs': lrs}
        if momentum:
            out['momenta'] = momenta
        return out


def scheduler_cases():
    S = torch.optim.lr_scheduler
    w = torch.zeros(2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)

    def sgd():
        return torch.optim.SGD([{'params': [w]}, {'params': [b], 'lr': 0.02}], lr=0.1, momentum=0.9)

    def adam():
        return torch.optim.Adam([{'params': [w]}, {'params': [b], 'lr': 0.002}], lr=0.01, betas=(0.9, 0.99))

    sgd_momentum = lambda o: [g['momentum'] for g in o.param_groups]
    beta1 = lambda o: [g['betas'][0] for g in o.param_groups]

    cases = {
        'step_lr': scheduler_case(sgd, lambda o: S.StepLR(o, step_size=7, gamma=0.5), 30),
        'cosine': scheduler_case(sgd, lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 30),
        'linear': scheduler_case(sgd, lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8), 30),
        'linear_decay': scheduler_case(sgd, lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=12), 30),
        'onecycle_cos': scheduler_case(sgd, lambda o: S.OneCycleLR(o, max_lr=[0.1, 0.05], total_steps=30), 29, sgd_momentum),
        'onecycle_linear_three_phase': scheduler_case(
            adam, lambda o: S.OneCycleLR(o, max_lr=0.01, epochs=3, steps_per_epoch=10, pct_start=0.25, anneal_strategy='linear',
                                         div_factor=10.0, final_div_factor=100.0, three_phase=True), 29, beta1),
        'onecycle_cos_no_momentum': scheduler_case(
            sgd, lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=30, pct_start=0.4, cycle_momentum=False), 30),
        'warmup_cosine': scheduler_case(
            sgd, lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                               S.CosineAnnealingLR(o, T_max=25, eta_min=1e-4)], milestones=[5]), 30),
    }
    # step(epoch): the closed forms.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        closed = {}
        for name, make in [('step_lr', lambda o: S.StepLR(o, step_size=7, gamma=0.5)),
                           ('cosine', lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
                           ('linear', lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8))]:
            o = sgd()
            s = make(o)
            seq = []
            for e in [3, 10, 17, 4, 25]:
                o.step()
                s.step(e)
                seq.append(list(s.get_last_lr()))
            closed[name] = seq
        cases['closed_form'] = {'epochs': [3, 10, 17, 4, 25], 'lrs': closed}
    return cases


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT_DIR, exist_ok=True)
    data = {'torch': torch.__version__, 'optimizers': optimizer_cases(), 'schedulers': scheduler_cases()}
    with open(os.path.join(OUT_DIR, 'optim.json'), 'w') as f:
        json.dump(data, f, separators=(',', ':'))
        f.write('\n')
    print('wrote', os.path.join(OUT_DIR, 'optim.json'), len(data['optimizers']), 'optimizer cases,', len(data['schedulers']), 'scheduler cases')


if __name__ == '__main__':
    main()
