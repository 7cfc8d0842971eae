/**
 * A GPT in nanoGPT's layout (Karpathy's nanoGPT, model.py), with its parameter names, so that a
 * nanoGPT checkpoint loads as it is:
 *
 *   transformer.wte (Embedding vocabSize x nEmbd), transformer.wpe (Embedding blockSize x nEmbd),
 *   transformer.drop, transformer.h.N (Block: ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
 *   mlp.c_proj), transformer.ln_f, lm_head (no bias, its weight tied to transformer.wte's)
 *
 * Pre-norm blocks x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); causal self-attention through
 * F.scaledDotProductAttention (the fused FlashAttention kernels on wasm and webgpu) with dropout on
 * the weights; GELU (exact) in the MLP; LayerNorms without bias when `bias` is false. nanoGPT's
 * initialisation: every Linear and Embedding weight N(0, 0.02), biases 0, and the residual
 * projections (c_proj) N(0, 0.02 / sqrt(2 nLayer)).
 *
 *   const model = mx.models.gpt({ nLayer: 4, nHead: 4, nEmbd: 128, blockSize: 64, vocabSize: 65, bias: false, dropout: 0 });
 *   const [logits, loss] = model.call(idx, targets);   // idx, targets int32 [B, T]
 *   model.loadStateDict((await mx.io.loadTorch('ckpt.pt')).model);
 *   const out = await model.generate(idx, 100, { temperature: 0.8, topK: 200 });
 */
import { int32 } from '../dtype/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { scope } from '../tensor/scope.js';
import { noGrad } from '../autograd/mode.js';
import { arange, tensor } from '../ops/creation.js';
import { add } from '../ops/elementwise.js';
import { narrow, reshape, transpose } from '../ops/shape.js';
import { Module, ModuleList, type LoadStateDictOptions, type LoadStateDictResult, type StateDict } from '../nn/module.js';
import { Dropout, Embedding, LayerNorm, Linear } from '../nn/layers.js';
import * as F from '../nn/functional.js';
import * as init from '../nn/init.js';
import { defaultGenerator, type Generator } from '../random/generator.js';
import { sampleLogits } from './sampling.js';

/** nanoGPT's GPTConfig, camelCase. */
export interface GPTConfig {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** The longest context (positions of wpe). */
  blockSize: number;
  vocabSize: number;
  /** Biases in the Linears and LayerNorms (nanoGPT's default true; its Shakespeare recipe false). */
  bias: boolean;
  /** Dropout after the embeddings, on the attention weights and after each residual branch. */
  dropout: number;
}

export interface GenerateOptions {
  /** Default 1; 0 picks the most likely token. */
  temperature?: number;
  /** Sample among the k most likely tokens only. */
  topK?: number | null;
  /** Default mx.defaultGenerator. */
  generator?: Generator;
  /** Wraps each forward pass (e.g. the training precision's autocast). */
  underPrecision?: <T>(fn: () => T) => T;
}

function checkConfig(c: GPTConfig): void {
  for (const key of ['nLayer', 'nHead', 'nEmbd', 'blockSize', 'vocabSize'] as const) {
    if (!Number.isInteger(c[key]) || c[key] < 1) throw new RangeError(`gpt: ${key} must be a positive integer, got ${JSON.stringify(c[key])}`);
  }
  if (c.nEmbd % c.nHead !== 0) throw new RangeError(`gpt: nEmbd ${c.nEmbd} must be divisible by nHead ${c.nHead}`);
  if (typeof c.bias !== 'boolean') throw new TypeError(`gpt: bias must be true or false, got ${JSON.stringify(c.bias)}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`gpt: dropout must be in [0, 1), got ${JSON.stringify(c.dropout)}`);
}

class CausalSelfAttention extends Module {
  declare readonly c_attn: Linear;
  declare readonly c_proj: Linear;
  declare readonly resid_dropout: Dropout;

  constructor(readonly config: GPTConfig) {
    super();
    this.registerModule('c_attn', new Linear(config.nEmbd, 3 * config.nEmbd, { bias: config.bias }));
    this.registerModule('c_proj', new Linear(config.nEmbd, config.nEmbd, { bias: config.bias }));
    this.registerModule('resid_dropout', new Dropout(config.dropout));
  }

  forward(x: Tensor): Tensor {
    const [B, T, C] = x.shape as [number, number, number];
    const nh = this.config.nHead;
    const qkv = this.c_attn.call(x);
    // q, k, v [B, nh, T, hs]: views of the projection (the fused kernels read strided inputs)
    const head = (i: number) => transpose(reshape(narrow(qkv, 2, i * C, C), [B, T, nh, C / nh]), 1, 2);
    const y = F.scaledDotProductAttention(head(0), head(1), head(2), { isCausal: true, dropoutP: this.training ? this.config.dropout : 0 });
    return this.resid_dropout.call(this.c_proj.call(reshape(transpose(y, 1, 2), [B, T, C])));
  }
}

class MLP extends Module {
  declare readonly c_fc: Linear;
  declare readonly c_proj: Linear;
  declare readonly dropout: Dropout;

  constructor(config: GPTConfig) {
    super();
    this.registerModule('c_fc', new Linear(config.nEmbd, 4 * config.nEmbd, { bias: config.bias }));
    this.registerModule('c_proj', new Linear(4 * config.nEmbd, config.nEmbd, { bias: config.bias }));
    this.registerModule('dropout', new Dropout(config.dropout));
  }

  forward(x: Tensor): Tensor {
    return this.dropout.call(this.c_proj.call(F.gelu(this.c_fc.call(x))));
  }
}

class Block extends Module {
  declare readonly ln_1: LayerNorm;
  declare readonly attn: CausalSelfAttention;
  declare readonly ln_2: LayerNorm;
  declare readonly mlp: MLP;

  constructor(config: GPTConfig) {
    super();
    this.registerModule('ln_1', new LayerNorm(config.nEmbd, { bias: config.bias }));
    this.registerModule('attn', new CausalSelfAttention(config));
    this.registerModule('ln_2', new LayerNorm(config.nEmbd, { bias: config.bias }));
    this.registerModule('mlp', new MLP(config));
  }

  forward(x: Tensor): Tensor {
    const h = add(x, this.attn.call(this.ln_1.call(x)));
    return add(h, this.mlp.call(this.ln_2.call(h)));
  }
}

/** nanoGPT's `transformer` ModuleDict. */
class Transformer extends Module {
  declare readonly wte: Embedding;
  declare readonly wpe: Embedding;
  declare readonly drop: Dropout;
  declare readonly h: ModuleList;
  declare readonly ln_f: LayerNorm;

  constructor(config: GPTConfig) {
    super();
    this.registerModule('wte', new Embedding(config.vocabSize, config.nEmbd));
    this.registerModule('wpe', new Embedding(config.blockSize, config.nEmbd));
    this.registerModule('drop', new Dropout(config.dropout));
    this.registerModule('h', new ModuleList(Array.from({ length: config.nLayer }, () => new Block(config))));
    this.registerModule('ln_f', new LayerNorm(config.nEmbd, { bias: config.bias }));
  }

  forward(): never {
    throw new Error('GPT.transformer has no forward of its own: call the GPT');
  }
}

/** torch.compile's prefix on the keys of a compiled model's state dict (nanoGPT's sample.py strips it). */
const COMPILED_PREFIX = '_orig_mod.';

export class GPT extends Module {
  declare readonly transformer: Transformer;
  declare readonly lm_head: Linear;
  readonly config: Readonly<GPTConfig>;

  constructor(config: GPTConfig, options: { generator?: Generator } = {}) {
    super();
    checkConfig(config);
    this.config = Object.freeze({ ...config });
    this.registerModule('transformer', new Transformer(config));
    this.registerModule('lm_head', new Linear(config.nEmbd, config.vocabSize, { bias: false }));
    // weight tying: the output projection is the token embedding (one tensor under both names)
    const own = this.lm_head.weight;
    this.lm_head.registerParameter('weight', this.transformer.wte.weight);
    own.dispose();
    this.initWeights(options.generator ?? defaultGenerator);
  }

  /** nanoGPT's _init_weights in module order, then the scaled residual projections. */
  private initWeights(generator: Generator): void {
    for (const m of this.modules()) {
      if (m instanceof Linear) {
        init.normal_(m.weight, 0, 0.02, { generator });
        if (m.bias) init.zeros_(m.bias);
      } else if (m instanceof Embedding) init.normal_(m.weight, 0, 0.02, { generator });
    }
    const std = 0.02 / Math.sqrt(2 * this.config.nLayer);
    for (const [name, p] of this.namedParameters()) if (name.endsWith('c_proj.weight')) init.normal_(p, 0, std, { generator });
  }

  /** Parameters; without the position embedding by default (nanoGPT's get_num_params). */
  numParams(nonEmbedding = true): number {
    const n = this.parameters().reduce((s, p) => s + p.numel, 0);
    return nonEmbedding ? n - this.transformer.wpe.weight.numel : n;
  }

  /**
   * idx int32 [B, T] (T <= blockSize) -> [logits, loss]. With targets (int32 [B, T], -1 ignored):
   * logits [B, T, vocab] and the mean cross-entropy; without: the last position's logits
   * [B, 1, vocab] and null, as nanoGPT's forward.
   */
  forward(idx: Tensor, targets?: Tensor | null): [Tensor, Tensor | null] {
    if (idx.ndim !== 2) throw new RangeError(`GPT: idx must be int32 [B, T], got shape [${idx.shape.join(',')}]`);
    const T = idx.shape[1]!;
    if (T > this.config.blockSize) throw new RangeError(`GPT: cannot forward a sequence of length ${T}, the block size is only ${this.config.blockSize}`);
    if (targets && (targets.ndim !== 2 || targets.shape[0] !== idx.shape[0] || targets.shape[1] !== T)) {
      throw new RangeError(`GPT: targets [${targets.shape.join(',')}] must have idx's shape [${idx.shape.join(',')}]`);
    }
    const tr = this.transformer;
    const pos = arange(0, T, 1, { dtype: 'int32' });
    let x = tr.drop.call(add(tr.wte.call(idx), tr.wpe.call(pos)));
    for (const block of tr.h) x = (block as Block).call(x);
    x = tr.ln_f.call(x);
    if (!targets) return [this.lm_head.call(narrow(x, 1, T - 1, 1)), null];
    const logits = this.lm_head.call(x);
    const V = this.config.vocabSize;
    const loss = F.crossEntropy(reshape(logits, [-1, V]), reshape(targets, [-1]), { ignoreIndex: -1 });
    return [logits, loss];
  }

  /**
   * Load a state dict, also one of nanoGPT's checkpoints: `ckpt.model` from mx.io.loadTorch. As
   * nanoGPT's sample.py, keys of a torch.compile'd model lose their `_orig_mod.` prefix; the
   * `transformer.h.N.attn.bias` buffers that nanoGPT registers on PyTorch < 2.0 (its causal mask,
   * [1, 1, blockSize, blockSize], no parameter) are left out, as nanoGPT's from_pretrained does.
   */
  override loadStateDict(dict: StateDict | ReadonlyMap<string, Tensor>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const entries = dict instanceof Map ? [...dict] : Object.entries(dict as StateDict);
    const kept = new Map<string, Tensor>();
    for (const [key0, value] of entries) {
      const key = key0.startsWith(COMPILED_PREFIX) ? key0.slice(COMPILED_PREFIX.length) : key0;
      const isMask = /^transformer\.h\.\d+\.attn\.bias$/.test(key) && value instanceof Tensor && value.ndim === 4 && value.shape[0] === 1 && value.shape[1] === 1;
      if (!isMask) kept.set(key, value);
    }
    return super.loadStateDict(kept, options);
  }

  /**
   * Continue each row of idx (int32 [B, T]) by maxNewTokens tokens, each drawn from the last
   * position's logits (temperature, topK) with the context cropped to the last blockSize tokens;
   * eval mode, no gradients (nanoGPT's generate). Returns int32 [B, T + maxNewTokens].
   */
  async generate(idx: Tensor, maxNewTokens: number, options: GenerateOptions = {}): Promise<Tensor> {
    if (idx.ndim !== 2 || idx.dtype !== 'int32' || idx.shape[1] === 0) throw new RangeError(`GPT.generate: idx must be a non-empty int32 [B, T], got ${idx.dtype} [${idx.shape.join(',')}]`);
    if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new RangeError(`GPT.generate: maxNewTokens must be an integer >= 0, got ${maxNewTokens}`);
    const [B, T0] = idx.shape as [number, number];
    const run = options.underPrecision ?? (<T>(fn: () => T) => fn());
    const generator = options.generator ?? defaultGenerator;
    const V = this.config.vocabSize;
    const rows = Array.from(await idx.data() as Int32Array, Number);
    const seqs = Array.from({ length: B }, (_, b) => rows.slice(b * T0, (b + 1) * T0));
    const wasTraining = this.training;
    this.eval();
    try {
      for (let n = 0; n < maxNewTokens; n++) {
        const Tc = Math.min(seqs[0]!.length, this.config.blockSize);
        const context = seqs.flatMap((s) => s.slice(s.length - Tc));
        const logits = noGrad(() => scope(() => run(() => this.forward(tensor(context, { dtype: int32, shape: [B, Tc] }))[0].float())));
        const values = (await logits.data()) as Float32Array;
        logits.dispose();
        for (let b = 0; b < B; b++) seqs[b]!.push(sampleLogits(values.subarray(b * V, (b + 1) * V), { temperature: options.temperature, topK: options.topK, generator }));
      }
    } finally {
      this.train(wasTraining);
    }
    return tensor(seqs.flat(), { dtype: int32, shape: [B, T0 + maxNewTokens] });
  }
}

/** A GPT with nanoGPT's layout and initialisation (mx.models.gpt). */
export function gpt(config: GPTConfig, options: { generator?: Generator } = {}): GPT {
  return new GPT(config, options);
}
