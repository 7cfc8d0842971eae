/**
 * ResNets with torchvision's architecture and parameter names (torchvision/models/resnet.py), so a
 * torchvision `state_dict()` loads with strict key matching:
 *
 *   conv1 bn1 relu maxpool layer1..layer4 avgpool fc
 *   layerN.i: BasicBlock (conv1 bn1 relu conv2 bn2 [downsample.0 conv1x1, downsample.1 bn]) for
 *   resnet18/34, Bottleneck (conv1 1x1, conv2 3x3 with the stride, conv3 1x1 to 4x planes, bn1-3)
 *   for resnet50 (torchvision's "ResNet V1.5": the stride on the 3x3).
 *
 * Options beyond torchvision's: `stem: 'cifar'` (conv1 3x3 stride 1, no max-pool: the usual variant
 * for 32x32 images; same parameter names) and `width`, the stem's channels (64 in torchvision;
 * the stages have width, 2, 4, 8x it, times 4 in Bottleneck's output), for small twins of the
 * networks (the tests' 1/8-width fixtures). Initialisation as torchvision: convolutions
 * kaiming-normal (fan out, ReLU gain), batch norms weight 1 and bias 0, the classifier as
 * nn.Linear; `zeroInitResidual` zeroes each block's last batch-norm weight.
 * Pretrained weights (`weights`) are loaded by the resnet18/34/50 factories (./resnet_weights.ts).
 */
import type { Tensor } from '../tensor/tensor.js';
import type { DTypeName } from '../dtype/dtype.js';
import type { Generator } from '../random/generator.js';
import { Module, Sequential } from '../nn/module.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, ReLU } from '../nn/layers.js';
import * as init from '../nn/init.js';
import { noGrad } from '../autograd/mode.js';

export type ResNetBlock = 'basic' | 'bottleneck';
export type ResNetStem = 'imagenet' | 'cifar';

export interface ResNetOptions {
  /** Classes of the fc layer (default 1000, ImageNet's). */
  numClasses?: number;
  /** 'imagenet' (default): conv 7x7 stride 2 + max-pool 3x3 stride 2; 'cifar': conv 3x3 stride 1, no max-pool. */
  stem?: ResNetStem;
  /** Zero the last batch-norm weight of every block, so each starts as the identity (default false). */
  zeroInitResidual?: boolean;
  /** Channels of the stem (default 64, torchvision's); the stages have 1, 2, 4, 8 times as many planes. */
  width?: number;
  /** Input channels (default 3). */
  inChannels?: number;
  /** Dtype of the parameters (default float32). */
  dtype?: DTypeName;
  /** Generator for the initial weights (default mx.defaultGenerator). */
  generator?: Generator;
}

interface LayerOpts {
  dtype?: DTypeName;
  generator?: Generator;
}

const conv3x3 = (cin: number, cout: number, stride: number, o: LayerOpts) => new Conv2d(cin, cout, 3, { stride, padding: 1, bias: false, ...o });
const conv1x1 = (cin: number, cout: number, stride: number, o: LayerOpts) => new Conv2d(cin, cout, 1, { stride, bias: false, ...o });

/** Two 3x3 convolutions and the shortcut (resnet18/34). */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  declare readonly conv1: Conv2d;
  declare readonly bn1: BatchNorm2d;
  declare readonly relu: ReLU;
  declare readonly conv2: Conv2d;
  declare readonly bn2: BatchNorm2d;
  declare readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, downsample: Sequential | null, o: LayerOpts) {
    super();
    this.registerModule('conv1', conv3x3(inplanes, planes, stride, o));
    this.registerModule('bn1', new BatchNorm2d(planes, { dtype: o.dtype }));
    this.registerModule('relu', new ReLU());
    this.registerModule('conv2', conv3x3(planes, planes, 1, o));
    this.registerModule('bn2', new BatchNorm2d(planes, { dtype: o.dtype }));
    this.registerModule('downsample', downsample);
  }

  /** The batch norm whose weight zeroInitResidual zeroes. */
  get lastNorm(): BatchNorm2d {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    out = this.bn2.call(this.conv2.call(out));
    const identity = this.downsample ? (this.downsample.call(x) as Tensor) : x;
    return this.relu.call(out.add(identity));
  }
}

/** 1x1 reduce, 3x3 (with the stride), 1x1 expand to 4x planes, and the shortcut (resnet50). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  declare readonly conv1: Conv2d;
  declare readonly bn1: BatchNorm2d;
  declare readonly conv2: Conv2d;
  declare readonly bn2: BatchNorm2d;
  declare readonly conv3: Conv2d;
  declare readonly bn3: BatchNorm2d;
  declare readonly relu: ReLU;
  declare readonly downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, downsample: Sequential | null, o: LayerOpts) {
    super();
    this.registerModule('conv1', conv1x1(inplanes, planes, 1, o));
    this.registerModule('bn1', new BatchNorm2d(planes, { dtype: o.dtype }));
    this.registerModule('conv2', conv3x3(planes, planes, stride, o));
    this.registerModule('bn2', new BatchNorm2d(planes, { dtype: o.dtype }));
    this.registerModule('conv3', conv1x1(planes, planes * Bottleneck.expansion, 1, o));
    this.registerModule('bn3', new BatchNorm2d(planes * Bottleneck.expansion, { dtype: o.dtype }));
    this.registerModule('relu', new ReLU());
    this.registerModule('downsample', downsample);
  }

  get lastNorm(): BatchNorm2d {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    let out = this.relu.call(this.bn1.call(this.conv1.call(x)));
    out = this.relu.call(this.bn2.call(this.conv2.call(out)));
    out = this.bn3.call(this.conv3.call(out));
    const identity = this.downsample ? (this.downsample.call(x) as Tensor) : x;
    return this.relu.call(out.add(identity));
  }
}

/** The networks by name: block type and blocks per stage. */
export const RESNET_CONFIGS = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
} as const satisfies Record<string, { block: ResNetBlock; layers: readonly number[] }>;
export type ResNetName = keyof typeof RESNET_CONFIGS;

export class ResNet extends Module {
  declare readonly conv1: Conv2d;
  declare readonly bn1: BatchNorm2d;
  declare readonly relu: ReLU;
  declare readonly maxpool: MaxPool2d | Identity;
  declare readonly layer1: Sequential;
  declare readonly layer2: Sequential;
  declare readonly layer3: Sequential;
  declare readonly layer4: Sequential;
  declare readonly avgpool: AdaptiveAvgPool2d;
  declare readonly fc: Linear;
  readonly block: ResNetBlock;
  readonly layers: readonly number[];
  readonly numClasses: number;
  readonly stem: ResNetStem;
  readonly width: number;
  readonly inChannels: number;
  /** Channels into fc (512 · expansion at width 64). */
  readonly features: number;

  constructor(block: ResNetBlock, layers: readonly number[], options: ResNetOptions = {}) {
    super();
    if (block !== 'basic' && block !== 'bottleneck') throw new RangeError(`ResNet: block must be 'basic' or 'bottleneck', got ${JSON.stringify(block)}`);
    if (!Array.isArray(layers) || layers.length !== 4 || layers.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new RangeError(`ResNet: layers must be 4 positive block counts, got ${JSON.stringify(layers)}`);
    }
    this.block = block;
    this.layers = [...layers];
    this.numClasses = options.numClasses ?? 1000;
    this.stem = options.stem ?? 'imagenet';
    this.width = options.width ?? 64;
    this.inChannels = options.inChannels ?? 3;
    for (const [k, v] of [['numClasses', this.numClasses], ['width', this.width], ['inChannels', this.inChannels]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`ResNet: ${k} must be a positive integer, got ${v}`);
    }
    if (this.stem !== 'imagenet' && this.stem !== 'cifar') throw new RangeError(`ResNet: stem must be 'imagenet' or 'cifar', got ${JSON.stringify(this.stem)}`);
    const o: LayerOpts = { dtype: options.dtype, generator: options.generator };
    const Block = block === 'basic' ? BasicBlock : Bottleneck;
    const expansion = Block.expansion;
    const w = this.width;

    this.registerModule('conv1', this.stem === 'imagenet'
      ? new Conv2d(this.inChannels, w, 7, { stride: 2, padding: 3, bias: false, ...o })
      : conv3x3(this.inChannels, w, 1, o));
    this.registerModule('bn1', new BatchNorm2d(w, { dtype: o.dtype }));
    this.registerModule('relu', new ReLU());
    this.registerModule('maxpool', this.stem === 'imagenet' ? new MaxPool2d(3, { stride: 2, padding: 1 }) : new Identity());
    let inplanes = w;
    const makeLayer = (planes: number, blocks: number, stride: number): Sequential => {
      const downsample = stride !== 1 || inplanes !== planes * expansion
        ? new Sequential(conv1x1(inplanes, planes * expansion, stride, o), new BatchNorm2d(planes * expansion, { dtype: o.dtype }))
        : null;
      const list: Module[] = [new Block(inplanes, planes, stride, downsample, o)];
      inplanes = planes * expansion;
      for (let i = 1; i < blocks; i++) list.push(new Block(inplanes, planes, 1, null, o));
      return new Sequential(...list);
    };
    this.registerModule('layer1', makeLayer(w, layers[0]!, 1));
    this.registerModule('layer2', makeLayer(2 * w, layers[1]!, 2));
    this.registerModule('layer3', makeLayer(4 * w, layers[2]!, 2));
    this.registerModule('layer4', makeLayer(8 * w, layers[3]!, 2));
    this.registerModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    this.features = 8 * w * expansion;
    this.registerModule('fc', new Linear(this.features, this.numClasses, o));

    // torchvision's initialisation (nn.Linear keeps its own).
    noGrad(() => {
      for (const m of this.modules()) {
        if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { mode: 'fanOut', nonlinearity: 'relu', generator: o.generator });
        else if (m instanceof BatchNorm2d) {
          init.ones_(m.weight!);
          init.zeros_(m.bias!);
        }
      }
      if (options.zeroInitResidual) {
        for (const m of this.modules()) if (m instanceof BasicBlock || m instanceof Bottleneck) init.zeros_(m.lastNorm.weight!);
      }
    });
  }

  /** Replace the classifier with a fresh nn.Linear(features, numClasses) (a new head for fine-tuning). */
  resetClassifier(numClasses: number, options: LayerOpts = {}): void {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new RangeError(`ResNet.resetClassifier: numClasses must be a positive integer, got ${numClasses}`);
    this.registerModule('fc', new Linear(this.features, numClasses, { dtype: this.fc.weight.dtype, ...options }));
    (this as { numClasses: number }).numClasses = numClasses;
  }

  /** Everything but the classifier: the parameters a --freeze-backbone run keeps fixed. */
  backboneParameters(): Tensor[] {
    const head = new Set(this.fc.parameters());
    return this.parameters().filter((p) => !head.has(p));
  }

  forward(x: Tensor): Tensor {
    let h = this.maxpool.call(this.relu.call(this.bn1.call(this.conv1.call(x)))) as Tensor;
    h = this.layer1.call(h) as Tensor;
    h = this.layer2.call(h) as Tensor;
    h = this.layer3.call(h) as Tensor;
    h = this.layer4.call(h) as Tensor;
    return this.fc.call((this.avgpool.call(h) as Tensor).flatten(1)) as Tensor;
  }

  override extraRepr(): string {
    return `block=${this.block}, layers=[${this.layers.join(',')}], stem=${this.stem}, width=${this.width}, numClasses=${this.numClasses}`;
  }
}

/** A ResNet by name with the given options (no weights: see resnet18/34/50 in ./resnet_weights.ts). */
export function createResNet(name: ResNetName, options: ResNetOptions = {}): ResNet {
  const config = RESNET_CONFIGS[name];
  if (!config) throw new RangeError(`createResNet: unknown network '${String(name)}' (networks: ${Object.keys(RESNET_CONFIGS).join(', ')})`);
  return new ResNet(config.block, config.layers, options);
}
