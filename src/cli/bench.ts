/**
 * `mixprec bench gemm|train`: GEMM GFLOP/s through matmul, and LeNet / WideCNN training throughput
 * and memory per precision, on any backend; `--json` prints one JSON object (bench/peers.mjs
 * compares them with jax-js and PyTorch; tools/gpu/run.sh runs them on a GPU).
 */
import { defaultBackendName, listBackends } from '../backend/registry.js';
import { PRECISIONS, type Precision } from '../train/classifier.js';
import { benchGemm, GEMM_DTYPES, type GemmDtype } from '../bench/gemm.js';
import { benchTrain, BENCH_MODELS } from '../bench/train.js';
import { selectBackend } from '../bench/common.js';
import { choice, number, parseFlags, type Options } from './args.js';
import { usage } from './errors.js';
import type { Output } from './train.js';

export const BENCH_HELP = `usage: mixprec bench <gemm|train> [options] [--json]

  gemm    GFLOP/s of C = A·B for random N×N matrices through matmul (mixprec bench gemm --help)
  train   training throughput and memory of LeNet, WideCNN, a ResNet or a GPT per precision (mixprec bench train --help)

Numbers depend on the machine's load: the JSON output records the 1-minute load average.
`;

export const BENCH_GEMM_HELP = `usage: mixprec bench gemm [--size N] [--dtype float32|float16|bfloat16] [--backend NAME] [--threads N] [--json]

C = A·B with A, B random N×N of --dtype (C the same dtype; float32 accumulation) through matmul.
On a synchronous backend (reference, wasm) the work is done when matmul returns and a rep is just
that; on an asynchronous one (webgpu) a rep also reads C back (await data()), the only way to wait
for it. The warm-up rep always reads C back and checks one element. Reps are timed after the
warm-up until both --reps and --min-time are reached.

  --size N              (default 1024)
  --dtype D             float32|float16|bfloat16 (default float32)
  --backend NAME        compute backend (default: the current default backend)
  --threads N           kernel threads of the wasm backend (default MIXPREC_THREADS, else every core);
                        single-threaded backends ignore it (a note on stderr)
  --warmup N            untimed reps first (default 1)
  --reps N              at least N timed reps (default 3)
  --min-time S          and at least S seconds of them (default 1)
  --seed N              seeds the inputs (default 0)
  --json                one JSON object: gflops (2·N³ / mean seconds per rep, 10⁹/s), gflops_best,
                        size, dtype, backend, threads, seconds (mean per rep), best_seconds, reps,
                        warmup, check_abs_err, load_avg_1m, readback (whether reps read C back),
                        simd (wasm: 'relaxed' or 'plain'), adapter (webgpu), subgroup_matrix
                        (webgpu: the subgroup-matrix shape its matmul uses, or null), kernels
                        (wasm: native/fallback calls)
`;

export const BENCH_TRAIN_HELP = `usage: mixprec bench train [--model lenet|widecnn|resnet18|resnet34|resnet50|gpt] [--batch-size N] [--image-size N]
                          [--precision fp32|fp16|bf16] [--backend NAME] [--steps N] [--json]
                          [--n-layer N --n-head N --n-embd N --block-size N   (gpt)]

Training steps on random data, each the same step as the training command's, its loss read back
before the next one, under the precision's autocast (fp16: float16 + GradScaler; bf16: bfloat16):
- lenet, widecnn, resnets: CIFAR-10-shaped images ([B,3,S,S] float32, S = --image-size, int32 labels
  in 0..9), SGD (lr 0.01, momentum 0.9), as mixprec train;
- gpt: mx.models.gpt on random blocks of a 65-character vocabulary (int32 [B, block size]), AdamW
  with nanoGPT's parameter groups (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on 2-D weights),
  clipping at 1 after unscale_, as mixprec train-gpt.

  --model M             lenet (conv 6, pool, conv 16, pool, fc 120-84-10), widecnn (VGG-style:
                        conv3x3 w, w, pool, 2w, 2w, pool, 4w, pool, each conv + BatchNorm + ReLU,
                        then linear; w = --width), resnet18|resnet34|resnet50 (torchvision's, its
                        imagenet stem, 10 classes) or gpt (nanoGPT's layout) (default lenet)
  --width N             widecnn's channel width w, a ResNet's stem width (default 64)
  --n-layer N, --n-head N, --n-embd N, --block-size N
                        gpt's shape (default 4, 4, 128, 64: nanoGPT's CPU recipe for Tiny Shakespeare)
  --batch-size N        (default 64; gpt 12)
  --image-size N        side of the square images (default 32; not for gpt)
  --precision P         fp32|fp16|bf16 (default fp32)
  --backend NAME        compute backend (default: the current default backend)
  --threads N           kernel threads of the wasm backend (as for bench gemm)
  --steps N             timed steps (default 10)
  --warmup N            untimed steps first (default 2, at least 1)
  --seed N              seeds the weights and the batch (default 0)
  --json                one JSON object with:
      img_per_s         (lenet, widecnn) batch size · timed steps / their wall seconds
      tokens_per_s      (gpt) batch size · block size · timed steps / their wall seconds
      peak_bytes        peak live device bytes during the timed steps (the backend's peak is
                        reset right before them): weights, gradients, optimizer state, batch, step temporaries
      activation_bytes  bytes the forward pass holds for the backward: live device bytes once the
                        loss is computed (graph alive, before backward) minus live bytes when the
                        forward starts (after zeroGrad), in one untimed step after the warm-up
      and model, width (widecnn, resnets), image_size (the image models), n_layer, n_head, n_embd,
      block_size, vocab_size (gpt), batch_size, precision, backend, threads, steps, warmup, seconds,
      step_ms (ms per iteration), resident_bytes (live bytes between steps), loss, skipped_steps
      (GradScaler), load_avg_1m, adapter and subgroup_matrix (webgpu, as for bench gemm),
      fallback_kernels (wasm: kernels run by the reference fallback, calls)
`;

const COMMON = {
  backend: { type: 'string' },
  threads: { type: 'string' },
  warmup: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

const GEMM_FLAGS = { ...COMMON, size: { type: 'string' }, dtype: { type: 'string' }, reps: { type: 'string' }, 'min-time': { type: 'string' } } as const satisfies Options;
const GPT_FLAGS = ['n-layer', 'n-head', 'n-embd', 'block-size'] as const;
const TRAIN_FLAGS = {
  ...COMMON, model: { type: 'string' }, width: { type: 'string' }, 'batch-size': { type: 'string' }, 'image-size': { type: 'string' },
  precision: { type: 'string' }, steps: { type: 'string' },
  ...Object.fromEntries(GPT_FLAGS.map((f) => [f, { type: 'string' }])) as Record<(typeof GPT_FLAGS)[number], { type: 'string' }>,
} as const satisfies Options;

type Values = Record<string, string | boolean | undefined>;

function backendFlag(command: string, v: Values): string | undefined {
  const value = v['backend'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw usage(`mixprec ${command}: --backend needs a value`);
  if (!listBackends().includes(value)) throw usage(`mixprec ${command}: --backend must be one of ${listBackends().join(', ')} (got '${value}')`);
  return value;
}

function threadsFlag(command: string, v: Values): number | undefined {
  return v['threads'] === undefined ? undefined : number(command, 'threads', v['threads'], 1, { integer: true, min: 1 });
}

async function useBackend(command: string, v: Values): Promise<void> {
  const { threadsIgnored } = await selectBackend(backendFlag(command, v) ?? defaultBackendName(), threadsFlag(command, v));
  if (threadsIgnored) process.stderr.write(`mixprec ${command}: note: --threads ignored: ${threadsIgnored}\n`);
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

async function runGemm(argv: string[], out: Output): Promise<number> {
  const command = 'bench gemm';
  const v = parseFlags(command, argv, GEMM_FLAGS);
  if (v['help']) {
    out.log(BENCH_GEMM_HELP.trimEnd());
    return 0;
  }
  const size = number(command, 'size', v['size'], 1024, { integer: true, min: 1 });
  const dtype: GemmDtype = choice(command, 'dtype', v['dtype'], GEMM_DTYPES, 'float32');
  const warmup = number(command, 'warmup', v['warmup'], 1, { integer: true, min: 0 });
  const reps = number(command, 'reps', v['reps'], 3, { integer: true, min: 1 });
  const minTime = number(command, 'min-time', v['min-time'], 1, { min: 0 });
  const seed = number(command, 'seed', v['seed'], 0, { integer: true, min: 0 });
  await useBackend(command, v);
  const r = await benchGemm({ size, dtype, warmup, reps, minTime, seed });
  if (v['json']) out.log(JSON.stringify(r));
  else {
    out.log(
      `gemm ${size}x${size}x${size} ${dtype} on ${r.backend} (${r.threads} thread${r.threads === 1 ? '' : 's'}): ` +
        `${r.gflops.toFixed(2)} GFLOP/s mean, ${r.gflops_best.toFixed(2)} best, ${(r.seconds * 1000).toFixed(1)} ms per rep over ${r.reps} reps ` +
        `(load average ${r.load_avg_1m})`,
    );
  }
  return 0;
}

async function runTrainBench(argv: string[], out: Output): Promise<number> {
  const command = 'bench train';
  const v = parseFlags(command, argv, TRAIN_FLAGS);
  if (v['help']) {
    out.log(BENCH_TRAIN_HELP.trimEnd());
    return 0;
  }
  const model = choice(command, 'model', v['model'], BENCH_MODELS, 'lenet');
  const width = v['width'] === undefined ? undefined : number(command, 'width', v['width'], 64, { integer: true, min: 1 });
  if (width !== undefined && (model === 'lenet' || model === 'gpt')) throw usage(`mixprec ${command}: --width applies to --model widecnn and the resnets only`);
  const gptFlags = GPT_FLAGS.filter((f) => v[f] !== undefined);
  if (gptFlags.length > 0 && model !== 'gpt') throw usage(`mixprec ${command}: --${gptFlags[0]} applies to --model gpt only`);
  if (v['image-size'] !== undefined && model === 'gpt') throw usage(`mixprec ${command}: --image-size does not apply to --model gpt`);
  const int = (flag: string, fallback: number) => number(command, flag, v[flag], fallback, { integer: true, min: 1 });
  const gpt = model === 'gpt' ? { nLayer: int('n-layer', 4), nHead: int('n-head', 4), nEmbd: int('n-embd', 128), blockSize: int('block-size', 64) } : undefined;
  if (gpt && gpt.nEmbd % gpt.nHead !== 0) throw usage(`mixprec ${command}: --n-embd ${gpt.nEmbd} must be divisible by --n-head ${gpt.nHead}`);
  const batchSize = number(command, 'batch-size', v['batch-size'], model === 'gpt' ? 12 : 64, { integer: true, min: 1 });
  const imageSize = v['image-size'] === undefined ? undefined : number(command, 'image-size', v['image-size'], 32, { integer: true, min: 8 });
  const precision: Precision = choice(command, 'precision', v['precision'], PRECISIONS, 'fp32');
  const steps = number(command, 'steps', v['steps'], 10, { integer: true, min: 1 });
  const warmup = number(command, 'warmup', v['warmup'], 2, { integer: true, min: 0 });
  const seed = number(command, 'seed', v['seed'], 0, { integer: true, min: 0 });
  await useBackend(command, v);
  const r = await benchTrain({ model, width, gpt, batchSize, imageSize, precision, steps, warmup, seed });
  if (v['json']) out.log(JSON.stringify(r));
  else {
    const what = r.block_size !== undefined ? `batch ${batchSize} x ${r.block_size} tokens` : `batch ${batchSize} ${r.image_size}x${r.image_size}`;
    const rate = r.tokens_per_s !== undefined ? `${r.tokens_per_s.toFixed(0)} tokens/s` : `${r.img_per_s!.toFixed(1)} img/s`;
    out.log(
      `train ${model}${r.width !== undefined ? ` (width ${r.width})` : ''} ${what} ${precision} on ${r.backend} (${r.threads} thread${r.threads === 1 ? '' : 's'}): ` +
        `${rate} (${r.step_ms.toFixed(1)} ms/step over ${r.steps} steps), peak ${mib(r.peak_bytes)}, ` +
        `activations ${mib(r.activation_bytes)} (load average ${r.load_avg_1m})`,
    );
  }
  return 0;
}

export async function runBench(argv: string[], out: Output): Promise<number> {
  const [which, ...rest] = argv;
  switch (which) {
    case 'gemm':
      return runGemm(rest, out);
    case 'train':
      return runTrainBench(rest, out);
    case '--help':
    case '-h':
    case 'help':
      out.log(BENCH_HELP.trimEnd());
      return 0;
    case undefined:
      throw usage('mixprec bench: which benchmark? (gemm or train; see mixprec bench --help)');
    default:
      throw usage(`mixprec bench: unknown benchmark '${which}' (benchmarks: gemm, train; see mixprec bench --help)`);
  }
}
