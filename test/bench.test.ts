/**
 * `mixprec bench gemm|train`: tiny runs print valid JSON with the documented fields and positive
 * numbers; bad flags give one-line usage errors; the library functions measure what they document.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as mx from '../src/index.js';
import { benchGemm } from '../src/bench/gemm.js';
import { benchTrain } from '../src/bench/train.js';
import { resetPeak, subgroupMatrixDescription } from '../src/bench/common.js';
import { crossEntropy } from '../src/nn/functional.js';
import { underPrecision, type Precision } from '../src/train/classifier.js';
import { runCli } from './helpers/cli.js';

const cli = (args: string[]) => runCli(args, { unset: ['MIXPREC_THREADS'] });

function json(args: string[]): Record<string, unknown> {
  const r = cli(args);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `--json prints exactly one line, got:\n${r.stdout}`);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

const positive = (o: Record<string, unknown>, keys: string[]) => {
  for (const k of keys) {
    assert.equal(typeof o[k], 'number', `${k} is a number (${JSON.stringify(o)})`);
    assert.ok(Number.isFinite(o[k] as number) && (o[k] as number) > 0, `${k} > 0 (got ${String(o[k])})`);
  }
};

describe('mixprec bench gemm', () => {
  it('prints gflops and the run description as JSON', () => {
    const o = json(['bench', 'gemm', '--size', '64', '--dtype', 'float32', '--json']);
    positive(o, ['gflops', 'gflops_best', 'seconds', 'reps', 'size']);
    assert.equal(o['size'], 64);
    assert.equal(o['dtype'], 'float32');
    assert.equal(o['backend'], mx.defaultBackendName(), 'the default backend');
    assert.ok((o['reps'] as number) >= 3);
    assert.ok((o['check_abs_err'] as number) < 1e-3, `C is the product (err ${String(o['check_abs_err'])})`);
  });

  for (const dtype of ['float16', 'bfloat16']) {
    it(`runs ${dtype} on the wasm backend with --threads`, () => {
      const o = json(['bench', 'gemm', '--size', '64', '--dtype', dtype, '--backend', 'wasm', '--threads', '2', '--reps', '2', '--min-time', '0', '--json']);
      positive(o, ['gflops', 'seconds', 'reps']);
      assert.equal(o['dtype'], dtype);
      assert.equal(o['backend'], 'wasm');
      assert.equal(o['threads'], 2);
      assert.ok((o['reps'] as number) >= 2);
    });
  }

  it('--threads 1 re-creates the default wasm backend with one thread and still prints its result', () => {
    // Regression: closing the replaced pool awaited unref'd workers, and the process ended silently.
    const o = json(['bench', 'gemm', '--size', '32', '--backend', 'wasm', '--threads', '1', '--reps', '2', '--min-time', '0', '--json']);
    assert.equal(o['backend'], 'wasm');
    assert.equal(o['threads'], 1);
    positive(o, ['gflops']);
  });

  it('without --json prints one human-readable line', () => {
    const r = cli(['bench', 'gemm', '--size', '32', '--min-time', '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^gemm 32x32x32 float32 on (reference \(1 thread\)|wasm \(\d+ threads?\)): \d+\.\d\d GFLOP\/s mean/);
  });
});

describe('mixprec bench train', () => {
  const fields = ['img_per_s', 'peak_bytes', 'activation_bytes', 'seconds', 'step_ms', 'resident_bytes'];

  it('prints img_per_s, peak_bytes and activation_bytes as JSON (fp16, reference)', () => {
    const o = json(['bench', 'train', '--model', 'lenet', '--batch-size', '64', '--precision', 'fp16', '--steps', '2', '--json']);
    positive(o, fields);
    assert.equal(o['model'], 'lenet');
    assert.equal(o['batch_size'], 64);
    assert.equal(o['precision'], 'fp16');
    assert.equal(o['steps'], 2);
    assert.ok((o['peak_bytes'] as number) >= (o['resident_bytes'] as number) + (o['activation_bytes'] as number));
    assert.ok(Number.isFinite(o['loss'] as number));
  });

  it('runs on the wasm backend; bf16 activations are smaller than fp32 ones', () => {
    const fp32 = json(['bench', 'train', '--batch-size', '16', '--precision', 'fp32', '--backend', 'wasm', '--steps', '2', '--json']);
    const bf16 = json(['bench', 'train', '--batch-size', '16', '--precision', 'bf16', '--backend', 'wasm', '--steps', '2', '--json']);
    positive(fp32, fields);
    positive(bf16, fields);
    assert.equal(bf16['backend'], 'wasm');
    assert.ok((bf16['activation_bytes'] as number) < (fp32['activation_bytes'] as number), `${String(bf16['activation_bytes'])} < ${String(fp32['activation_bytes'])}`);
  });

  it('--model resnet18 --image-size: the same fields, torchvision\'s network (narrowed here to keep it short)', () => {
    const o = json(['bench', 'train', '--model', 'resnet18', '--width', '8', '--batch-size', '4', '--image-size', '40', '--precision', 'fp16', '--backend', 'wasm', '--steps', '1', '--warmup', '1', '--json']);
    positive(o, fields);
    assert.equal(o['model'], 'resnet18');
    assert.equal(o['width'], 8);
    assert.equal(o['image_size'], 40);
    assert.equal(o['batch_size'], 4);
    assert.ok(typeof o['fallback_kernels'] === 'object');
  });
});

describe('mixprec bench train --model gpt', () => {
  it('prints ms per iteration, tokens_per_s, peak and activation bytes and the model shape as JSON (bf16)', () => {
    const o = json(['bench', 'train', '--model', 'gpt', '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '8', '--batch-size', '2', '--precision', 'bf16', '--steps', '1', '--warmup', '1', '--json']);
    positive(o, ['tokens_per_s', 'peak_bytes', 'activation_bytes', 'step_ms', 'resident_bytes']);
    assert.equal(o['img_per_s'], undefined);
    assert.deepEqual([o['model'], o['n_layer'], o['n_head'], o['n_embd'], o['block_size'], o['vocab_size'], o['batch_size']], ['gpt', 1, 2, 16, 8, 65, 2]);
    assert.ok(Math.abs((o['tokens_per_s'] as number) - (2 * 8 * 1000) / (o['step_ms'] as number)) < 1e-3 * (o['tokens_per_s'] as number));
    assert.ok(Number.isFinite(o['loss'] as number));
  });
});

describe('mixprec bench: bad input', () => {
  const cases: [string[], RegExp][] = [
    [['bench'], /^mixprec bench: which benchmark\? \(gemm or train/],
    [['bench', 'conv'], /^mixprec bench: unknown benchmark 'conv'/],
    [['bench', 'gemm', '--size', '0'], /^mixprec bench gemm: --size must be an integer >= 1 \(got '0'\)$/],
    [['bench', 'gemm', '--size', 'big'], /^mixprec bench gemm: --size must be an integer >= 1 \(got 'big'\)$/],
    [['bench', 'gemm', '--dtype', 'int8'], /^mixprec bench gemm: --dtype must be one of float32, float16, bfloat16 \(got 'int8'\)$/],
    [['bench', 'gemm', '--threads', '0'], /^mixprec bench gemm: --threads must be an integer >= 1/],
    [['bench', 'gemm', '--backend', 'cuda'], /^mixprec bench gemm: --backend must be one of .*reference.* \(got 'cuda'\)$/],
    [['bench', 'gemm', '--sizes', '64'], /^mixprec bench gemm: Unknown option '--sizes'/],
    [['bench', 'gemm', '64'], /^mixprec bench gemm: unexpected argument '64'/],
    [['bench', 'train', '--precision', 'fp8'], /^mixprec bench train: --precision must be one of fp32, fp16, bf16 \(got 'fp8'\)$/],
    [['bench', 'train', '--model', 'resnet'], /^mixprec bench train: --model must be one of lenet, widecnn, resnet18, resnet34, resnet50, gpt \(got 'resnet'\)$/],
    [['bench', 'train', '--steps', '1.5'], /^mixprec bench train: --steps must be an integer >= 1/],
    [['bench', 'train', '--n-layer', '2'], /^mixprec bench train: --n-layer applies to --model gpt only$/],
    [['bench', 'train', '--model', 'gpt', '--n-embd', '30', '--n-head', '4'], /^mixprec bench train: --n-embd 30 must be divisible by --n-head 4$/],
    [['bench', 'train', '--batch-size=-4'], /^mixprec bench train: --batch-size must be an integer >= 1/],
    [['bench', 'train', '--size', '64'], /^mixprec bench train: Unknown option '--size'/],
  ];
  for (const [args, message] of cases) {
    it(`${args.join(' ')} -> one line, exit 2`, () => {
      const r = cli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, message);
    });
  }

  it('--help documents the fields (and the activation_bytes definition)', () => {
    const top = cli(['bench', '--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /gemm/);
    const train = cli(['bench', 'train', '--help']);
    assert.equal(train.code, 0);
    for (const k of ['img_per_s', 'peak_bytes', 'activation_bytes', 'minus live bytes']) assert.ok(train.stdout.includes(k), k);
    const gemm = cli(['bench', 'gemm', '--help']);
    assert.equal(gemm.code, 0);
    assert.ok(gemm.stdout.includes('gflops'));
    assert.match(cli(['--help']).stdout, /bench/);
  });
});

describe('bench library functions', () => {
  it('benchGemm counts 2·N³ flops per rep', async () => {
    const r = await benchGemm({ size: 48, reps: 2, minTime: 0 });
    assert.ok(r.reps >= 2);
    const flopsPerSecond = (2 * 48 ** 3) / r.seconds / 1e9;
    assert.ok(Math.abs(flopsPerSecond - r.gflops) / r.gflops < 1e-4);
    assert.ok(r.gflops_best >= r.gflops * (1 - 1e-4));
  });

  for (const precision of ['fp32', 'fp16'] as Precision[]) {
    it(`activation_bytes (${precision}) is the live-byte growth over the forward pass`, async () => {
      const r = await benchTrain({ batchSize: 8, precision, steps: 1, warmup: 1 });
      // The same forward pass by hand: LeNet's first parameters and a batch of the same shape.
      mx.manualSeed(0);
      const model = new mx.models.LeNet();
      // fp16 runs feed the batch in float16, as benchTrain and mixprec train do.
      const x32 = mx.randn([8, 3, 32, 32]);
      const x = precision === 'fp16' ? x32.to('float16') : x32;
      const y = mx.randint(0, 10, [8]);
      const before = mx.memory().liveBytes;
      const grown = mx.scope(() => {
        underPrecision(precision, () => crossEntropy(model.call(x), y));
        return mx.memory().liveBytes - before;
      });
      assert.equal(mx.memory().liveBytes, before);
      assert.equal(r.activation_bytes, grown);
      x.dispose();
      y.dispose();
    });
  }

  it('subgroup_matrix: read off the backend (string or null), absent when the backend does not say', async () => {
    const fake = (v: unknown) => ({ subgroupMatrix: v }) as unknown as mx.Backend;
    assert.equal(subgroupMatrixDescription(fake('f16 16x16x16 -> f32')), 'f16 16x16x16 -> f32');
    assert.equal(subgroupMatrixDescription(fake(null)), null);
    assert.equal(subgroupMatrixDescription(fake(undefined)), undefined);
    assert.equal(subgroupMatrixDescription(fake(true)), undefined);
    const backend = mx.getBackend() as unknown as { subgroupMatrix?: unknown };
    assert.ok(!('subgroup_matrix' in (await benchGemm({ size: 8, reps: 1, minTime: 0 }))), 'CPU backends: no field');
    for (const value of [null, 'f16 8x8x8 -> f32']) {
      backend.subgroupMatrix = value;
      try {
        const gemm = await benchGemm({ size: 8, reps: 1, minTime: 0 });
        assert.equal(gemm.subgroup_matrix, value);
        const keys = Object.keys(gemm);
        if ('adapter' in gemm) assert.equal(keys.indexOf('subgroup_matrix'), keys.indexOf('adapter') + 1, 'next to adapter');
      } finally {
        delete backend.subgroupMatrix;
      }
    }
  });

  it('resetPeak: the peak restarts from the live bytes', () => {
    const backend = mx.getBackend();
    const t = mx.zeros([1024]);
    t.dispose();
    resetPeak(backend);
    const m = mx.memory();
    assert.equal(m.peakBytes, m.liveBytes);
    assert.equal(typeof backend.resetPeak, 'function');
  });
});
