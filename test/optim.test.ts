/**
 * mx.optim: SGD, Adam, AdamW and RMSprop against PyTorch 1.13, in float32 and on pure 16-bit
 * parameters; parameter groups; stateDict round trips with bitwise-identical resumption; the
 * learning-rate schedulers' sequences; invalid hyperparameters.
 *
 * PyTorch fixtures (tools/gen_optim_fixtures.py -> test/fixtures/optim/optim.json): fixed initial
 * parameters and a fixed gradient per step, set as p.grad; the parameters after each of 5 steps.
 *   float32:  |actual - expected| <= 1e-6 * |expected| (the fixtures keep parameters away from zero).
 *   16-bit:   torch runs the same float32 update on float32 copies and rounds the parameter to the
 *             16-bit format after every step; we ask for the same 16-bit value, allowing one ulp (a
 *             float32 result within rounding noise of a 16-bit tie may round either way).
 *   lrs:      within 1e-12 relative (the same double operations as PyTorch; libm may differ by an ulp).
 */
import './helpers/backend.js';
import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import type { Tensor } from '../src/index.js';
import { readJson } from './helpers/fixtures.js';
import { ulp } from './helpers/compare.js';

const optim = mx.optim;
type AnyOptimizer = mx.optim.Optimizer<object>;
type DT = 'float32' | 'float16' | 'bfloat16';

/* ------------------------------------------------------------------ fixtures */

interface OptCase {
  optimizer: 'SGD' | 'Adam' | 'AdamW' | 'RMSprop';
  options: Record<string, unknown>;
  dtype: DT;
  groups: { params: number[]; options: Record<string, unknown> }[] | null;
  params: { shape: number[]; values: number[] }[];
  grads: number[][][];
  expected: number[][][];
}
interface SchedCase {
  lrs: number[][];
  momenta?: number[][];
}
interface Fixtures {
  optimizers: Record<string, OptCase>;
  schedulers: Record<string, unknown>;
}
const fixtures = readJson<Fixtures>('optim', 'optim.json');

function makeOptimizer(kind: OptCase['optimizer'], params: Tensor[] | { params: Tensor[] }[], options: Record<string, unknown>): AnyOptimizer {
  const p = params as any;
  const o = options as any;
  switch (kind) {
    case 'SGD': return new optim.SGD(p, o);
    case 'Adam': return new optim.Adam(p, o);
    case 'AdamW': return new optim.AdamW(p, o);
    case 'RMSprop': return new optim.RMSprop(p, o);
  }
}

function checkParam(label: string, actual: ArrayLike<number>, expected: readonly number[], dtype: DT): number {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const tol = dtype === 'float32' ? 1e-6 * Math.abs(e) : ulp(e, dtype);
    const d = Math.abs(a - e);
    worst = Math.max(worst, tol > 0 ? d / tol : d === 0 ? 0 : Infinity);
    if (!(d <= tol)) assert.fail(`${label}[${i}]: expected ${e}, got ${a} (|diff| ${d.toExponential(3)} > tol ${tol.toExponential(3)})`);
  }
  return worst;
}

describe('optimizers vs PyTorch 1.13', () => {
  for (const [name, c] of Object.entries(fixtures.optimizers)) {
    it(`${name} (${c.optimizer}, ${c.dtype})`, async () => {
      const params = c.params.map((p) => mx.tensor(p.values, { shape: p.shape, dtype: c.dtype, requiresGrad: true }));
      const groups = c.groups ? c.groups.map((g) => ({ params: g.params.map((i) => params[i]!), ...g.options })) : null;
      const opt = makeOptimizer(c.optimizer, groups ?? params, c.options);
      let exact = 0;
      let total = 0;
      for (let s = 0; s < c.grads.length; s++) {
        opt.zeroGrad();
        params.forEach((p, i) => (p.grad = mx.tensor(c.grads[s]![i]!, { shape: p.shape, dtype: c.dtype })));
        opt.step();
        for (const [i, p] of params.entries()) {
          const actual = await p.data();
          const expected = c.expected[s]![i]!;
          checkParam(`${name} step ${s + 1} param ${i}`, actual, expected, c.dtype);
          for (let k = 0; k < expected.length; k++) exact += actual[k] === expected[k] ? 1 : 0;
          total += expected.length;
        }
      }
      for (const p of params) {
        assert.equal(p.dtype, c.dtype, 'the parameter keeps its dtype');
        const st = opt.state.get(p) ?? {};
        for (const [k, v] of Object.entries(st)) {
          if (typeof v === 'number') assert.equal(v, c.grads.length, `state '${k}' counts the steps`);
          else assert.equal(v.dtype, 'float32', `state '${k}' is float32`);
        }
      }
      // 16-bit: nearly every element is the very same 16-bit value as PyTorch's.
      if (c.dtype !== 'float32') assert.ok(exact >= 0.95 * total, `${name}: only ${exact}/${total} elements identical to PyTorch's`);
    });
  }
});

/* ----------------------------------------------------------- behaviour and memory */

describe('optimizer behaviour', () => {
  it('state tensors are float32 and step counts are numbers, for float16 and bfloat16 parameters', () => {
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const p = mx.tensor([1, -2, 3], { dtype, requiresGrad: true });
      const opt = new optim.Adam([p], { amsgrad: true });
      p.grad = mx.tensor([0.5, 0.25, -1], { dtype });
      opt.step();
      opt.step();
      const st = opt.state.get(p)!;
      assert.deepEqual(Object.keys(st).sort(), ['expAvg', 'expAvgSq', 'maxExpAvgSq', 'step']);
      assert.equal(st['step'], 2);
      for (const k of ['expAvg', 'expAvgSq', 'maxExpAvgSq']) assert.equal((st[k] as Tensor).dtype, 'float32');
      assert.equal(p.dtype, dtype);
    }
  });

  it('parameters without a gradient are skipped (no state, unchanged)', async () => {
    const a = mx.tensor([1, 2], { requiresGrad: true });
    const b = mx.tensor([3, 4], { requiresGrad: true });
    for (const opt of [new optim.Adam([a, b], { lr: 0.1 }), new optim.AdamW([a, b]), new optim.RMSprop([a, b])] as AnyOptimizer[]) {
      a.grad = mx.tensor([1, 1]);
      b.grad = null;
      opt.step();
      assert.ok(opt.state.has(a));
      assert.ok(!opt.state.has(b));
      assert.deepEqual([...(await b.data())], [3, 4]);
    }
  });

  it('a group lr changed between steps (as schedulers do) is used by the next step', async () => {
    const p = mx.tensor([1], { requiresGrad: true });
    const opt = new optim.RMSprop([p], { lr: 0.1 });
    p.grad = mx.tensor([1]);
    opt.step();
    const v1 = (await p.data())[0]!;
    opt.paramGroups[0]!.lr = 0;
    opt.step();
    assert.equal((await p.data())[0], v1, 'lr 0 leaves the parameter alone');
  });

  it('adam: the update of the first step is -lr * sign(g) (bias-corrected)', async () => {
    const p = mx.tensor([1, 1, 1, 1], { requiresGrad: true });
    const opt = new optim.Adam([p], { lr: 0.5, eps: 0 });
    p.grad = mx.tensor([2, -3, 1e-3, -7]);
    opt.step();
    const v = await p.data();
    [0.5, 1.5, 0.5, 1.5].forEach((e, i) => assert.ok(Math.abs(v[i]! - e) < 1e-6, `element ${i}: ${v[i]}`));
  });

  for (const [name, make] of [
    ['SGD', (ps: Tensor[]) => new optim.SGD(ps, { lr: 0.01, momentum: 0.9, nesterov: true })],
    ['Adam', (ps: Tensor[]) => new optim.Adam(ps, { amsgrad: true, weightDecay: 0.01 })],
    ['AdamW', (ps: Tensor[]) => new optim.AdamW(ps)],
    ['RMSprop', (ps: Tensor[]) => new optim.RMSprop(ps, { centered: true, momentum: 0.9 })],
  ] as const) {
    it(`${name}: steps inside mx.scope keep live buffers constant (float16 params)`, () => {
      const ps = [mx.randn([8, 8], { dtype: 'float16', requiresGrad: true }), mx.randn([8], { dtype: 'float16', requiresGrad: true })];
      const opt = make(ps);
      const counts: number[] = [];
      for (let s = 0; s < 6; s++) {
        mx.scope(() => {
          opt.zeroGrad();
          const x = mx.randn([4, 8], { dtype: 'float16' });
          const loss = x.matmul(ps[0]!).add(ps[1]!).square().sum();
          loss.backward();
          opt.step();
        });
        counts.push(mx.memory().liveBuffers);
      }
      for (let s = 2; s < counts.length; s++) assert.equal(counts[s], counts[1], `live buffers changed at step ${s + 1}: ${counts.join(', ')}`);
    });
  }
});

/* --------------------------------------------------- stateDict and bitwise resumption */

type Dict = ReturnType<AnyOptimizer['stateDict']>;

/** Save as a checkpoint file would: tensors to host arrays, everything else through JSON. */
async function serialize(dict: Dict): Promise<string> {
  const state: Record<string, Record<string, unknown>> = {};
  for (const [k, s] of Object.entries(dict.state)) {
    const entries: [string, unknown][] = [];
    for (const [n, v] of Object.entries(s)) entries.push([n, typeof v === 'number' ? v : { dtype: v.dtype, shape: v.shape, data: Array.from(await v.data()) }]);
    state[k] = Object.fromEntries(entries);
  }
  return JSON.stringify({ state, paramGroups: dict.paramGroups });
}

function deserialize(text: string): Dict {
  const raw = JSON.parse(text) as { state: Record<string, Record<string, any>>; paramGroups: Record<string, unknown>[] };
  const state: Dict['state'] = {};
  for (const [k, s] of Object.entries(raw.state)) {
    state[Number(k)] = Object.fromEntries(Object.entries(s).map(([n, v]) => [n, typeof v === 'number' ? v : mx.tensor(v.data, { shape: v.shape, dtype: v.dtype })]));
  }
  return { state, paramGroups: raw.paramGroups };
}

async function bits(t: Tensor): Promise<number[]> {
  return Array.from(await t.storageData());
}

interface Run {
  params: Tensor[];
  opt: AnyOptimizer;
  sched: mx.optim.LRScheduler | null;
}

describe('stateDict round trip and resumption', () => {
  const setups: [string, (ps: Tensor[]) => AnyOptimizer, ((o: AnyOptimizer) => mx.optim.LRScheduler) | null][] = [
    ['SGD momentum + StepLR', (ps) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }), (o) => new optim.StepLR(o, 3, { gamma: 0.5 })],
    ['Adam amsgrad + OneCycleLR', (ps) => new optim.Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 0.1 }), (o) => new optim.OneCycleLR(o, 0.05, { totalSteps: 10 })],
    ['AdamW + warm-up/cosine', (ps) => new optim.AdamW(ps, { lr: 0.01 }), (o) => new optim.SequentialLR(o, [new optim.LinearLR(o, { startFactor: 0.2, totalIters: 3 }), new optim.CosineAnnealingLR(o, 7)], [3])],
    ['RMSprop centered momentum', (ps) => new optim.RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.9 }), null],
  ];
  const steps = 8;
  const split = 4;

  for (const dtype of ['float32', 'float16'] as const) {
    for (const [name, makeOpt, makeSched] of setups) {
      it(`${name} (${dtype}): resuming from a stateDict is bitwise identical to an uninterrupted run`, async () => {
        const init = [mx.randn([3, 5], { generator: new mx.Generator(7) }), mx.randn([5], { generator: new mx.Generator(8) })].map((t) => t.to(dtype));
        const grads = Array.from({ length: steps }, (_, s) => init.map((p) => mx.randn(p.shape, { generator: new mx.Generator(100 + s) }).to(dtype)));
        const fresh = (values: Tensor[]): Run => {
          const params = values.map((v) => v.clone().requiresGrad_());
          const opt = makeOpt(params);
          return { params, opt, sched: makeSched ? makeSched(opt) : null };
        };
        const advance = (run: Run, from: number, to: number) => {
          for (let s = from; s < to; s++) {
            run.params.forEach((p, i) => (p.grad = grads[s]![i]!.clone()));
            run.opt.step();
            run.sched?.step();
          }
        };

        const straight = fresh(init);
        advance(straight, 0, steps);

        const first = fresh(init);
        advance(first, 0, split);
        const optText = await serialize(first.opt.stateDict());
        const schedText = first.sched ? JSON.stringify(first.sched.stateDict()) : null;
        const paramValues: Tensor[] = [];
        for (const p of first.params) paramValues.push(mx.tensor((await p.storageData()) as any, { shape: p.shape, dtype }));

        // A new process: new parameters from the checkpoint, new optimizer and scheduler, then load.
        const resumed = fresh(paramValues);
        resumed.opt.loadStateDict(deserialize(optText));
        if (resumed.sched) resumed.sched.loadStateDict(JSON.parse(schedText!));
        assert.deepEqual(resumed.opt.paramGroups.map((g: any) => g.lr), first.opt.paramGroups.map((g: any) => g.lr));
        advance(resumed, split, steps);

        for (const [i, p] of straight.params.entries()) assert.deepEqual(await bits(resumed.params[i]!), await bits(p), `parameter ${i} differs after resuming`);
        for (const [i, p] of straight.params.entries()) {
          const a = straight.opt.state.get(p)!;
          const b = resumed.opt.state.get(resumed.params[i]!)!;
          assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
          for (const k of Object.keys(a)) {
            const [x, y] = [a[k]!, b[k]!];
            if (typeof x === 'number') assert.equal(y, x);
            else assert.deepEqual(await bits(y as Tensor), await bits(x), `state ${k} of parameter ${i}`);
          }
        }
        if (straight.sched) assert.deepEqual(resumed.sched!.getLastLr(), straight.sched.getLastLr());
      });
    }
  }

  it('stateDict lists hyperparameters per group and state by parameter index; loadStateDict copies the tensors', async () => {
    const a = mx.tensor([1, 2], { requiresGrad: true });
    const b = mx.tensor([3], { requiresGrad: true });
    const opt = new optim.Adam([{ params: [a] }, { params: [b], lr: 0.1, betas: [0.5, 0.9] }], { lr: 0.01 });
    a.grad = mx.tensor([1, 1]);
    b.grad = mx.tensor([1]);
    opt.step();
    const d = opt.stateDict();
    assert.deepEqual(d.paramGroups.map((g) => [g['lr'], g['betas'], g['params']]), [[0.01, [0.9, 0.999], [0]], [0.1, [0.5, 0.9], [1]]]);
    assert.deepEqual(Object.keys(d.state), ['0', '1']);
    assert.equal(d.state[1]!['step'], 1);
    const other = new optim.Adam([{ params: [a.detach().clone().requiresGrad_()] }, { params: [b.detach().clone().requiresGrad_()] }]);
    other.loadStateDict(d);
    assert.equal(other.paramGroups[1]!.lr, 0.1);
    assert.deepEqual(other.paramGroups[1]!.betas, [0.5, 0.9]);
    const mine = opt.state.get(a)!['expAvg'] as Tensor;
    const theirs = other.state.get(other.paramGroups[0]!.params[0]!)!['expAvg'] as Tensor;
    assert.notEqual(theirs.storage, mine.storage, 'loaded state does not alias the source');
    assert.deepEqual([...(await theirs.data())], [...(await mine.data())]);
  });

  it('loadStateDict refuses a dict for other groups', () => {
    const a = mx.tensor([1, 2], { requiresGrad: true });
    const b = mx.tensor([3], { requiresGrad: true });
    const d = new optim.Adam([a, b]).stateDict();
    assert.throws(() => new optim.Adam([{ params: [a] }, { params: [b] }]).loadStateDict(d), /state has 1 parameter groups, optimizer has 2/);
    assert.throws(() => new optim.Adam([a]).loadStateDict(d), /parameter group 0 has 2 parameters in the state, 1 in the optimizer/);
  });
});

/* ------------------------------------------------------------------------ schedulers */

/** An SGD over two groups (lr 0.1 and 0.02), momentum 0.9, as in the fixtures. */
function sgd2(): AnyOptimizer {
  return new optim.SGD([{ params: [mx.zeros([2]).requiresGrad_()] }, { params: [mx.zeros([2]).requiresGrad_()], lr: 0.02 }], { lr: 0.1, momentum: 0.9 });
}
function adam2(): AnyOptimizer {
  return new optim.Adam([{ params: [mx.zeros([2]).requiresGrad_()] }, { params: [mx.zeros([2]).requiresGrad_()], lr: 0.002 }], { lr: 0.01, betas: [0.9, 0.99] });
}

function closeSeq(label: string, actual: readonly number[], expected: readonly number[]): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  expected.forEach((e, i) => {
    const a = actual[i]!;
    assert.ok(Math.abs(a - e) <= 1e-12 * Math.abs(e), `${label}[${i}]: expected ${e}, got ${a}`);
  });
}

const schedulerMakers: Record<string, [() => AnyOptimizer, (o: AnyOptimizer) => mx.optim.LRScheduler, ((o: AnyOptimizer) => number[])?]> = {
  step_lr: [sgd2, (o) => new optim.StepLR(o, 7, { gamma: 0.5 })],
  cosine: [sgd2, (o) => new optim.CosineAnnealingLR(o, 10, { etaMin: 0.001 })],
  linear: [sgd2, (o) => new optim.LinearLR(o, { startFactor: 0.25, endFactor: 1.0, totalIters: 8 })],
  linear_decay: [sgd2, (o) => new optim.LinearLR(o, { startFactor: 1.0, endFactor: 0.1, totalIters: 12 })],
  onecycle_cos: [sgd2, (o) => new optim.OneCycleLR(o, [0.1, 0.05], { totalSteps: 30 }), (o) => o.paramGroups.map((g: any) => g.momentum)],
  onecycle_linear_three_phase: [
    adam2,
    (o) => new optim.OneCycleLR(o, 0.01, { epochs: 3, stepsPerEpoch: 10, pctStart: 0.25, annealStrategy: 'linear', divFactor: 10, finalDivFactor: 100, threePhase: true }),
    (o) => o.paramGroups.map((g: any) => g.betas[0]),
  ],
  onecycle_cos_no_momentum: [sgd2, (o) => new optim.OneCycleLR(o, 0.2, { totalSteps: 30, pctStart: 0.4, cycleMomentum: false })],
  warmup_cosine: [
    sgd2,
    (o) => new optim.SequentialLR(o, [new optim.LinearLR(o, { startFactor: 0.1, totalIters: 5 }), new optim.CosineAnnealingLR(o, 25, { etaMin: 1e-4 })], [5]),
  ],
};

describe('lr schedulers vs PyTorch 1.13', () => {
  for (const [name, raw] of Object.entries(fixtures.schedulers)) {
    if (name === 'closed_form') continue;
    const c = raw as SchedCase;
    it(name, () => {
      const maker = schedulerMakers[name];
      assert.ok(maker, `no scheduler for fixture ${name}`);
      const [makeOpt, makeSched, momentum] = maker;
      const opt = makeOpt();
      const sched = makeSched(opt);
      const lrs = [sched.getLastLr()];
      const momenta = momentum ? [momentum(opt)] : [];
      for (let k = 1; k < c.lrs.length; k++) {
        opt.step();
        sched.step();
        lrs.push(sched.getLastLr());
        if (momentum) momenta.push(momentum(opt));
        assert.deepEqual(opt.paramGroups.map((g: any) => g.lr), lrs[k], 'getLastLr() is the groups\' lr');
      }
      lrs.forEach((l, k) => closeSeq(`${name} lrs after ${k} steps`, l, c.lrs[k]!));
      if (momentum) momenta.forEach((m, k) => closeSeq(`${name} momentum after ${k} steps`, m, c.momenta![k]!));
    });
  }

  it('step(epoch) uses the closed forms', () => {
    const { epochs, lrs } = fixtures.schedulers['closed_form'] as { epochs: number[]; lrs: Record<string, number[][]> };
    for (const [name, seq] of Object.entries(lrs)) {
      const opt = sgd2();
      const sched = schedulerMakers[name]![1](opt);
      epochs.forEach((e, k) => {
        sched.step(e);
        closeSeq(`${name} step(${e})`, sched.getLastLr(), seq[k]!);
      });
    }
  });

  it('every optimizer class is accepted as it is typed, and OneCycleLR cycles momentum or beta1', () => {
    const q = () => [mx.zeros([1]).requiresGrad_()];
    const sgd: mx.optim.SGD = new optim.SGD(q(), { lr: 0.1 });
    const adamw: mx.optim.AdamW = new optim.AdamW(q());
    const rms: mx.optim.RMSprop = new optim.RMSprop(q());
    const adam: mx.optim.Adam = new optim.Adam(q());
    new optim.StepLR(sgd, 1);
    new optim.CosineAnnealingLR(rms, 3);
    new optim.LinearLR(adam);
    const s = new optim.OneCycleLR(adamw, 0.1, { totalSteps: 5 });
    assert.deepEqual(adamw.paramGroups[0]!.betas, [0.95, 0.999], 'beta1 starts at maxMomentum');
    s.step();
    assert.ok(adamw.paramGroups[0]!.betas[0] < 0.95);
    new optim.OneCycleLR(rms, 0.1, { totalSteps: 5 });
    assert.equal(rms.paramGroups[0]!.momentum, 0.95, 'RMSprop momentum starts at maxMomentum');
    assert.ok(optim.lrScheduler.StepLR === optim.StepLR, 'also under optim.lrScheduler, as torch.optim.lr_scheduler');
  });

  it('schedulers store initialLr per group and keep an existing one', () => {
    const opt = sgd2();
    const s1 = new optim.StepLR(opt, 2);
    assert.deepEqual(opt.paramGroups.map((g: any) => g.initialLr), [0.1, 0.02]);
    s1.step();
    s1.step();
    assert.deepEqual(opt.paramGroups.map((g: any) => g.lr), [0.1 * 0.1, 0.02 * 0.1]);
    const s2 = new optim.CosineAnnealingLR(opt, 4);
    assert.deepEqual(s2.baseLrs, [0.1, 0.02], 'base lrs come from initialLr, not the decayed lr');
    assert.ok(opt.stateDict().paramGroups.every((g) => typeof g['initialLr'] === 'number'), 'initialLr travels in the optimizer stateDict');
  });

  it('scheduler stateDict / loadStateDict continue the same sequence', () => {
    const build = () => {
      const opt = sgd2();
      return { opt, sched: new optim.SequentialLR(opt, [new optim.LinearLR(opt, { startFactor: 0.1, totalIters: 4 }), new optim.CosineAnnealingLR(opt, 10)], [4]) };
    };
    const a = build();
    for (let i = 0; i < 6; i++) a.sched.step();
    const saved = JSON.stringify({ opt: a.opt.stateDict(), sched: a.sched.stateDict() });
    const b = build();
    const parsed = JSON.parse(saved);
    b.opt.loadStateDict(parsed.opt);
    b.sched.loadStateDict(parsed.sched);
    for (let i = 0; i < 8; i++) {
      a.sched.step();
      b.sched.step();
      assert.deepEqual(b.sched.getLastLr(), a.sched.getLastLr());
    }
    assert.ok(!('optimizer' in a.sched.stateDict()));
  });

  it('OneCycleLR: stepping past totalSteps is an error', () => {
    const opt = sgd2();
    const s = new optim.OneCycleLR(opt, 0.1, { totalSteps: 4 });
    for (let i = 0; i < 4; i++) s.step();
    assert.throws(() => s.step(), /tried to step 6 times\. The specified number of total steps is 4/);
  });
});

/* ---------------------------------------------------------------------------- errors */

test('invalid hyperparameters are refused', () => {
  const p = () => [mx.tensor([1], { requiresGrad: true })];
  const bad: [string, () => unknown, RegExp][] = [
    ['Adam lr', () => new optim.Adam(p(), { lr: -1e-3 }), /Adam: invalid learning rate -0\.001/],
    ['Adam beta1 = 1', () => new optim.Adam(p(), { betas: [1, 0.999] }), /Adam: invalid beta parameter at index 0: 1/],
    ['Adam beta2 < 0', () => new optim.Adam(p(), { betas: [0.9, -0.1] }), /Adam: invalid beta parameter at index 1: -0\.1/],
    ['Adam beta NaN', () => new optim.Adam(p(), { betas: [NaN, 0.9] }), /invalid beta parameter at index 0/],
    ['Adam eps', () => new optim.Adam(p(), { eps: -1 }), /invalid epsilon value -1/],
    ['Adam weightDecay', () => new optim.Adam(p(), { weightDecay: -0.1 }), /invalid weightDecay value -0\.1/],
    ['AdamW lr', () => new optim.AdamW(p(), { lr: -1 }), /AdamW: invalid learning rate -1/],
    ['AdamW beta2 = 1', () => new optim.AdamW(p(), { betas: [0.9, 1] }), /AdamW: invalid beta parameter at index 1: 1/],
    ['Adam group beta', () => new optim.Adam([{ params: p(), betas: [0.9, 1.5] }]), /Adam: invalid beta parameter at index 1: 1\.5/],
    ['AdamW added group lr', () => new optim.AdamW(p()).addParamGroup({ params: p(), lr: -2 }), /AdamW: invalid learning rate -2/],
    ['RMSprop lr', () => new optim.RMSprop(p(), { lr: -0.01 }), /RMSprop: invalid learning rate -0\.01/],
    ['RMSprop alpha', () => new optim.RMSprop(p(), { alpha: -0.5 }), /RMSprop: invalid alpha value -0\.5/],
    ['RMSprop momentum', () => new optim.RMSprop(p(), { momentum: -0.5 }), /RMSprop: invalid momentum value -0\.5/],
    ['RMSprop eps', () => new optim.RMSprop(p(), { eps: -1e-8 }), /RMSprop: invalid epsilon value/],
    ['RMSprop group weightDecay', () => new optim.RMSprop([{ params: p(), weightDecay: -1 }]), /RMSprop: invalid weightDecay value -1/],
    ['SGD lr', () => new optim.SGD(p(), { lr: -0.1 }), /SGD: invalid learning rate -0\.1/],
    ['SGD nesterov', () => new optim.SGD(p(), { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/],
    ['empty', () => new optim.Adam([]), /Adam: got an empty parameter list/],
    ['duplicate', () => { const q = p(); return new optim.Adam([{ params: q }, { params: q }]); }, /some parameters appear in more than one parameter group/],
    ['non-leaf', () => new optim.Adam([mx.tensor([1], { requiresGrad: true }).mul(2)]), /can't optimize a non-leaf tensor/],
    ['StepLR stepSize', () => new optim.StepLR(sgd2(), 0), /StepLR: expected stepSize to be an integer >= 1, got 0/],
    ['CosineAnnealingLR tMax', () => new optim.CosineAnnealingLR(sgd2(), 2.5), /expected tMax to be an integer >= 1/],
    ['LinearLR startFactor', () => new optim.LinearLR(sgd2(), { startFactor: 1.5 }), /LinearLR: startFactor expected to be greater than 0 and at most 1, got 1\.5/],
    ['LinearLR endFactor', () => new optim.LinearLR(sgd2(), { endFactor: -0.5 }), /LinearLR: endFactor expected to be between 0 and 1, got -0\.5/],
    ['OneCycleLR steps', () => new optim.OneCycleLR(sgd2(), 0.1), /define either totalSteps OR \(epochs AND stepsPerEpoch\)/],
    ['OneCycleLR totalSteps', () => new optim.OneCycleLR(sgd2(), 0.1, { totalSteps: 0 }), /expected a positive integer totalSteps, got 0/],
    ['OneCycleLR pctStart', () => new optim.OneCycleLR(sgd2(), 0.1, { totalSteps: 10, pctStart: 1.5 }), /expected pctStart between 0 and 1, got 1\.5/],
    ['OneCycleLR strategy', () => new optim.OneCycleLR(sgd2(), 0.1, { totalSteps: 10, annealStrategy: 'exp' as any }), /annealStrategy must be 'cos' or 'linear'/],
    ['OneCycleLR maxLr list', () => new optim.OneCycleLR(sgd2(), [0.1], { totalSteps: 10 }), /expected 2 values for maxLr, got 1/],
    ['SequentialLR milestones', () => { const o = sgd2(); return new optim.SequentialLR(o, [new optim.StepLR(o, 2), new optim.StepLR(o, 3)], []); }, /one milestone fewer than schedulers, got 2 schedulers and 0 milestones/],
    ['SequentialLR optimizers', () => { const o = sgd2(); return new optim.SequentialLR(o, [new optim.StepLR(sgd2(), 2)], []); }, /same optimizer/],
    ['resume without initialLr', () => new optim.StepLR(sgd2(), 2, { lastEpoch: 5 }), /parameter group 0 has no 'initialLr' while resuming/],
    ['not an optimizer', () => new optim.StepLR({} as any, 2), /StepLR: .* is not an Optimizer/],
  ];
  for (const [label, fn, re] of bad) assert.throws(fn, re, label);
});

/* ------------------------------------------------------ fused updates and device skips */

/** Storage bits (float32 as uint32 patterns: -0 and NaN payloads count). */
async function rawBits(t: Tensor): Promise<number[]> {
  const s = await t.storageData();
  return Array.from(s instanceof Float32Array ? new Uint32Array(s.buffer, s.byteOffset, s.length) : s);
}

/** Parameters, and state tensors (bits) or counts (numbers, or 0-d device counters read as numbers). */
async function optimizerSnapshot(opt: AnyOptimizer, params: Tensor[]): Promise<unknown[]> {
  const snapshot: unknown[] = [];
  for (const p of params) {
    const state: [string, unknown][] = [];
    for (const [k, v] of Object.entries(opt.state.get(p) ?? {})) state.push([k, typeof v === 'number' ? v : v.ndim === 0 ? (await v.data())[0] : await rawBits(v)]);
    snapshot.push([await rawBits(p), Object.fromEntries(state)]);
  }
  return snapshot;
}

/** The wasm backend's native / fallback counts of a kernel (null on other backends). */
function kernelCalls(kernel: string): { native: number; fallback: number } | null {
  const b = mx.getBackend() as unknown as { kernelStats?: () => Record<string, { native: number; fallback: number }> };
  return b.kernelStats ? (b.kernelStats()[kernel] ?? { native: 0, fallback: 0 }) : null;
}

/** An updateGroup that updates each parameter as a group of its own (the per-tensor adamUpdate path). */
function perTensor(opt: unknown): (g: { params: Tensor[] }) => void {
  const proto = Object.getPrototypeOf(opt) as { updateGroup(g: unknown): void };
  return (group) => {
    for (const p of group.params) proto.updateGroup.call(opt, { ...group, params: [p] });
  };
}

/**
 * A multi-tensor kernel's check: `shapes`' parameters (seeded) stepped by `steps` three ways, per
 * tensor (each parameter a group of its own), multi-tensor natively and multi-tensor through the
 * reference kernel (the fallback), compared bit for bit (parameters and state); on wasm the native
 * multi-tensor run makes at least `minCalls` native calls of `kernel`.
 */
async function checkMultiTensor(kernel: string, shapes: number[][], minCalls: number, make: (params: Tensor[]) => AnyOptimizer, steps: (opt: AnyOptimizer, params: Tensor[]) => void): Promise<void> {
  const b = mx.getBackend() as unknown as { native?: boolean };
  const run = async (foreach: boolean, native: boolean) => {
    if (typeof b.native === 'boolean') b.native = native;
    try {
      const params = shapes.map((s, i) => mx.randn(s, { generator: new mx.Generator(20 + i) }).requiresGrad_());
      const opt = make(params);
      if (!foreach) (opt as unknown as { updateGroup(g: unknown): void }).updateGroup = perTensor(opt);
      const before = kernelCalls(kernel);
      steps(opt, params);
      const after = kernelCalls(kernel);
      if (foreach && native && before && after && mx.getBackend().name === 'wasm') assert.ok(after.native >= before.native + minCalls, `wasm: ${kernel} ran natively (${after.native - before.native} calls)`);
      return await optimizerSnapshot(opt, params);
    } finally {
      if (typeof b.native === 'boolean') b.native = true;
    }
  };
  const reference = await run(false, true);
  assert.deepEqual(await run(true, true), reference, 'multi-tensor vs per-tensor');
  if (typeof b.native === 'boolean') assert.deepEqual(await run(true, false), reference, 'the reference kernel (the fallback) vs the native per-tensor one');
}

describe('fused Adam / AdamW (adamUpdate)', () => {
  const configs: [string, Record<string, unknown>][] = [
    ['Adam', {}],
    ['Adam', { weightDecay: 0.1, amsgrad: true }],
    ['Adam', { maximize: true, betas: [0.8, 0.95], eps: 1e-6 }],
    ['AdamW', {}],
    ['AdamW', { weightDecay: 0.05, amsgrad: true, maximize: true }],
  ];
  const dtypePairs: [DT, DT][] = [['float32', 'float32'], ['float32', 'float16'], ['float32', 'bfloat16'], ['float16', 'float16'], ['bfloat16', 'bfloat16']];

  it('equals the op-by-op update bit for bit (parameters and state, every step), 16-bit gradients read in the same pass', async () => {
    // wasm updates a group's parameters in one multi-tensor call; webgpu one adamUpdate call each
    const kernel = mx.getBackend().name === 'wasm' ? 'adamUpdateMulti' : 'adamUpdate';
    const before = kernelCalls(kernel);
    for (const [kind, options] of configs) {
      for (const [pdt, gdt] of dtypePairs) {
        const label = `${kind} ${JSON.stringify(options)} param ${pdt} grad ${gdt}`;
        const r = mx.Generator;
        // 37 elements: a vector body and a scalar tail in the wasm kernel
        const init = [mx.randn([37], { generator: new r(3) }), mx.randn([4, 3], { generator: new r(4) })].map((t) => t.to(pdt));
        const make = (fused: boolean) => {
          const params = init.map((t) => t.clone().requiresGrad_());
          const opt = kind === 'Adam' ? new optim.Adam(params, { lr: 0.01, ...options, fused }) : new optim.AdamW(params, { lr: 0.01, ...options, fused });
          return { params, opt: opt as AnyOptimizer };
        };
        const fused = make(true);
        const plain = make(false);
        for (let s = 0; s < 5; s++) {
          for (const run of [fused, plain]) {
            run.params.forEach((p, i) => (p.grad = mx.randn(p.shape, { generator: new r(100 + 10 * s + i) }).mul(s === 2 ? 1e3 : 1).to(gdt)));
            run.opt.step();
          }
          assert.deepEqual(await optimizerSnapshot(fused.opt, fused.params), await optimizerSnapshot(plain.opt, plain.params), `${label}, step ${s + 1}`);
        }
      }
    }
    const after = kernelCalls(kernel);
    if (before && after) assert.ok(after.native > before.native, `${kernel} ran natively`);
  });

  it('multi-tensor (adamUpdateMulti): one call per group and step count, bit for bit the per-tensor kernel, natively and through the reference', async () => {
    // sizes around the wasm parts' 16-element boundaries and the threads' split (~1.3e5 elements each)
    const shapes = [[70001], [3], [129, 257], [16], [40000, 3]];
    const make = (params: Tensor[]) => {
      const decay = params.filter((_, i) => i % 2 === 0);
      const rest = params.filter((_, i) => i % 2 === 1);
      return new optim.AdamW([{ params: decay, weightDecay: 0.1 }, { params: rest, weightDecay: 0, amsgrad: true }], { lr: 0.01, betas: [0.9, 0.99] }) as AnyOptimizer;
    };
    await checkMultiTensor('adamUpdateMulti', shapes, 5, make, (opt, params) => {
      for (let s = 0; s < 3; s++) {
        params.forEach((p, i) => {
          // parameter 2 has no gradient in step 2: its step count then lags, and it is updated on its own
          p.grad = s === 1 && i === 2 ? null : mx.randn(p.shape, { generator: new mx.Generator(60 + 10 * s + i) }).mul(s === 2 ? 1e3 : 1).to(i % 3 === 2 ? 'float32' : 'float16');
        });
        opt.step();
      }
    });
  });

  it('wasm: the native kernel equals the reference kernel (the fallback), split across threads or not', async () => {
    const b = mx.getBackend() as unknown as { native?: boolean; kernelStats?: unknown };
    if (typeof b.native !== 'boolean') return; // a backend without native kernels: the reference kernel is the only one
    const run = async (native: boolean) => {
      b.native = native;
      try {
        const p = mx.randn([70001], { generator: new mx.Generator(9) }).requiresGrad_();
        const opt = new optim.AdamW([p], { lr: 0.01, amsgrad: true });
        for (let s = 0; s < 3; s++) {
          p.grad = mx.randn([70001], { generator: new mx.Generator(50 + s) }).to('bfloat16');
          opt.step();
        }
        return await optimizerSnapshot(opt, [p]);
      } finally {
        b.native = true;
      }
    };
    assert.deepEqual(await run(true), await run(false));
  });
});

/**
 * An optimizerSnapshot without the momentum buffers still flagged empty (momentumBufferEmpty set): their
 * contents are never read (the fused path leaves a new one uninitialised, op by op it is zero-filled).
 */
function startedState(snapshot: unknown[]): unknown[] {
  return snapshot.map((entry) => {
    const [bits, state] = entry as [unknown, Record<string, unknown>];
    if (!state['momentumBufferEmpty']) return entry;
    const { momentumBuffer: _unread, ...rest } = state;
    return [bits, rest];
  });
}

describe('multi-tensor SGD (sgdUpdateMulti)', () => {
  // every option: plain, momentum (+ dampening, weight decay), Nesterov (+ weight decay), maximize
  const configs: Record<string, unknown>[] = [
    { lr: 0.1 },
    { lr: 0.1, weightDecay: 0.01, maximize: true },
    { lr: 0.05, momentum: 0.9 },
    { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.02 },
    { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
    { lr: 0.01, momentum: 0.7, dampening: 0.1, maximize: true },
  ];
  const dtypePairs: [DT, DT][] = [
    ['float32', 'float32'], ['float32', 'float16'], ['float32', 'bfloat16'],
    ['float16', 'float16'], ['float16', 'float32'], ['bfloat16', 'bfloat16'], ['bfloat16', 'float32'],
  ];
  // skipped first (the buffer must not start: the isFirst flags), then a mix
  const skips = [1, 0, 1, 0, 0];

  it('equals the op-by-op update bit for bit (parameters and momentum buffers, every step), with and without a device foundInf', async () => {
    const kernel = mx.getBackend().name === 'webgpu' ? 'sgdUpdate' : 'sgdUpdateMulti';
    const before = kernelCalls(kernel);
    for (const cfg of configs) {
      for (const [pdt, gdt] of dtypePairs) {
        for (const device of [false, true]) {
          const label = `SGD ${JSON.stringify(cfg)} param ${pdt} grad ${gdt}${device ? ', foundInf' : ''}`;
          // 37 elements: a vector body and a scalar tail in the wasm kernel; 1: a tail alone
          const init = [[37], [4, 3], [1], [16]].map((shape, i) => mx.randn(shape, { generator: new mx.Generator(5 + i) }).to(pdt));
          const make = (fused: boolean) => {
            const params = init.map((t) => t.clone().requiresGrad_());
            return { params, opt: new optim.SGD(params, { ...cfg, fused }) as AnyOptimizer };
          };
          const fused = make(true);
          const plain = make(false);
          for (let s = 0; s < skips.length; s++) {
            for (const run of [fused, plain]) {
              run.params.forEach((p, i) => (p.grad = mx.randn(p.shape, { generator: new mx.Generator(100 + 10 * s + i) }).mul(s === 3 ? 1e3 : 1).to(gdt)));
              if (device) run.opt.step({ foundInf: mx.tensor(skips[s]!) });
              else run.opt.step();
            }
            assert.deepEqual(startedState(await optimizerSnapshot(fused.opt, fused.params)), startedState(await optimizerSnapshot(plain.opt, plain.params)), `${label}, step ${s + 1}`);
          }
        }
      }
    }
    const after = kernelCalls(kernel);
    if (before && after) assert.ok(after.native > before.native, `${kernel} ran natively`);
  });

  it('one call per group, dtype pair and first-step state, bit for bit the per-tensor kernel, natively (split across threads) and through the reference', async () => {
    // sizes around the wasm parts' 16-element boundaries and the threads' split (~1.3e5 elements each)
    const shapes = [[70001], [3], [129, 257], [16], [40000, 3], [5]];
    const make = (params: Tensor[]) =>
      new optim.SGD(
        [
          { params: params.filter((_, i) => i % 2 === 0), momentum: 0.9, nesterov: true, weightDecay: 1e-3 },
          { params: params.filter((_, i) => i % 2 === 1), momentum: 0.8, dampening: 0.2, maximize: true },
        ],
        { lr: 0.05 },
      ) as AnyOptimizer;
    await checkMultiTensor('sgdUpdateMulti', shapes, 6, make, (opt, params) => {
      for (let s = 0; s < 4; s++) {
        params.forEach((p, i) => {
          // parameter 2 has no gradient in step 1: its buffer starts a step later (a batch of its own then)
          p.grad = s === 0 && i === 2 ? null : mx.randn(p.shape, { generator: new mx.Generator(60 + 10 * s + i) }).mul(s === 2 ? 1e3 : 1).to(i % 3 === 2 ? 'float32' : 'float16');
        });
        // steps 3 and 4 with a device foundInf (zero, then one): the isFirst flags are created set, then settled
        if (s >= 2) opt.step({ foundInf: mx.tensor(s === 3 ? 1 : 0) });
        else opt.step();
      }
    });
  });
});

describe('step({ foundInf }): the skip decided on the device', () => {
  const makers: [string, (ps: Tensor[], fused: boolean) => AnyOptimizer][] = [
    ['SGD momentum', (ps, fused) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01, fused })],
    ['SGD Nesterov', (ps, fused) => new optim.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, fused })],
    ['SGD plain', (ps, fused) => new optim.SGD(ps, { lr: 0.1, fused })],
    ['Adam amsgrad', (ps, fused) => new optim.Adam(ps, { lr: 0.01, amsgrad: true, weightDecay: 0.1, fused })],
    ['AdamW', (ps, fused) => new optim.AdamW(ps, { lr: 0.01, fused })],
    ['RMSprop centered momentum', (ps) => new optim.RMSprop(ps, { lr: 0.01, centered: true, momentum: 0.9 })],
  ];
  // skipped first (the momentum buffer and Adam's step count must not start), then a mix
  const skips = [1, 0, 1, 1, 0, 0, 1, 0];

  for (const [name, make] of makers) {
    for (const fused of [true, false]) {
      // Adam with a device step count computes its bias corrections on the device in float32
      // (1 - beta2^t cancels) op by op, and in webgpu's fused kernel too (WGSL has no float64):
      // close to the host's float64 ones, not bit for bit
      const approx = name.startsWith('Adam') && (!fused || mx.getBackend().name === 'webgpu');
      it(`${name}${fused ? '' : ' (op by op)'}: a nonzero flag leaves parameters and state as they are; the run equals one that skips on the host${approx ? ' (within 1e-4)' : ''}`, async () => {
        const init = [mx.randn([9], { generator: new mx.Generator(1) }), mx.randn([2, 3], { generator: new mx.Generator(2) })];
        const host = init.map((t) => t.clone().requiresGrad_());
        const device = init.map((t) => t.clone().requiresGrad_());
        const hostOpt = make(host, fused);
        const deviceOpt = make(device, fused);
        assert.equal(deviceOpt.supportsFoundInf, true);
        for (const [s, skip] of skips.entries()) {
          const grads = init.map((t, i) => mx.randn(t.shape, { generator: new mx.Generator(20 + 3 * s + i) }));
          host.forEach((p, i) => (p.grad = grads[i]!.clone()));
          device.forEach((p, i) => (p.grad = grads[i]!.clone()));
          if (!skip) hostOpt.step();
          const before = await Promise.all(device.map(rawBits));
          deviceOpt.step({ foundInf: mx.tensor(skip) });
          if (skip) assert.deepEqual(await Promise.all(device.map(rawBits)), before, `step ${s}: skipped`);
          const same = async (a: Tensor, b: Tensor, what: string) => {
            if (!approx) return assert.deepEqual(await rawBits(a), await rawBits(b), what);
            const [x, y] = [await a.data(), await b.data()];
            y.forEach((e, j) => assert.ok(Math.abs(x[j]! - e) <= 1e-4 * Math.abs(e) + 1e-7, `${what}[${j}]: ${x[j]} vs ${e}`));
          };
          for (const [i, p] of device.entries()) await same(p, host[i]!, `step ${s}: parameter ${i}`);
          for (const [i, p] of host.entries()) {
            const h = hostOpt.state.get(p) ?? {};
            const d = deviceOpt.state.get(device[i]!)!;
            for (const [k, v] of Object.entries(h)) {
              const dv = d[k]!;
              if (typeof v === 'number') assert.equal(typeof dv === 'number' ? dv : (await dv.data())[0], v, `step ${s}: '${k}'`);
              else await same(dv as Tensor, v, `step ${s}: state '${k}'`);
            }
          }
        }
        // counts are device tensors once a step may be skipped on the device
        const st = deviceOpt.state.get(device[0]!) ?? {};
        if ('step' in st) assert.equal((st['step'] as Tensor).dtype, 'float32');
      });
    }
  }

  it('a step without a flag after device-skipped ones continues the device counters', async () => {
    const p = mx.tensor([1, 2, 3], { requiresGrad: true });
    const q = mx.tensor([1, 2, 3], { requiresGrad: true });
    const a = new optim.Adam([p], { lr: 0.1 });
    const b = new optim.Adam([q], { lr: 0.1 });
    for (const [s, skip] of [1, 0, 0].entries()) {
      p.grad = mx.tensor([0.1 * s, -0.2, 0.3]);
      q.grad = mx.tensor([0.1 * s, -0.2, 0.3]);
      if (s < 2) a.step({ foundInf: mx.tensor(skip) });
      else a.step();
      if (!skip) b.step();
    }
    assert.equal((await (a.state.get(p)!['step'] as Tensor).data())[0], 2);
    if (mx.getBackend().name !== 'webgpu') assert.deepEqual(await rawBits(p), await rawBits(q));
    else {
      // webgpu's fused Adam takes the bias corrections of a device step count in float32 (no float64 in WGSL)
      const [x, y] = [await p.data(), await q.data()];
      y.forEach((e, j) => assert.ok(Math.abs(x[j]! - e) <= 1e-5 * Math.abs(e), `parameter[${j}]: ${x[j]} vs ${e}`));
    }
  });
});
