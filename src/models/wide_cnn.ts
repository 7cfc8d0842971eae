/**
 * A wider, VGG-style CIFAR network: the GPU benchmark's second model next to LeNet (LeNet's
 * convolutions are too small to keep a GPU busy). With w = `width` (default 64):
 *
 *   conv3x3(in -> w) BN ReLU, conv3x3(w -> w) BN ReLU, max-pool 2            (32x32, then 16x16)
 *   conv3x3(w -> 2w) BN ReLU, conv3x3(2w -> 2w) BN ReLU, max-pool 2          (16x16, then 8x8)
 *   conv3x3(2w -> 4w) BN ReLU, max-pool 2                                    (8x8, then 4x4)
 *   flatten, linear(4w · side² -> numClasses)                                (side = imageSize / 8, floored per pool)
 *
 * Convolutions are 3x3 with padding 1 and no bias (BatchNorm follows each one). Parameter names:
 * `features.<i>.*` (the Sequential above, i = 0..17) and `classifier.*`, as bench/torch_lenet.py's
 * PyTorch twin names them. Under autocast the convolutions and the linear layer run in the 16-bit
 * dtype and BatchNorm in float32 (PyTorch's autocast lists; the op table handles it), and its
 * running statistics stay float32.
 */
import type { Tensor } from '../tensor/tensor.js';
import { Module, Sequential } from '../nn/module.js';
import { BatchNorm2d, Conv2d, Linear, MaxPool2d, ReLU } from '../nn/layers.js';

export interface WideCNNOptions {
  inChannels?: number;
  imageSize?: number;
  numClasses?: number;
  /** Channels of the first stage (then 2x and 4x). Default 64. */
  width?: number;
}

export class WideCNN extends Module {
  declare readonly features: Sequential;
  declare readonly classifier: Linear;
  readonly inChannels: number;
  readonly imageSize: number;
  readonly numClasses: number;
  readonly width: number;

  constructor(options: WideCNNOptions = {}) {
    super();
    this.inChannels = options.inChannels ?? 3;
    this.imageSize = options.imageSize ?? 32;
    this.numClasses = options.numClasses ?? 10;
    this.width = options.width ?? 64;
    for (const [k, v] of [['inChannels', this.inChannels], ['imageSize', this.imageSize], ['numClasses', this.numClasses], ['width', this.width]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`WideCNN: ${k} must be a positive integer, got ${v}`);
    }
    const side = Math.floor(Math.floor(Math.floor(this.imageSize / 2) / 2) / 2);
    if (side < 1) throw new RangeError(`WideCNN: images of ${this.imageSize}x${this.imageSize} are too small (need at least 8x8)`);
    const w = this.width;
    const block = (cin: number, cout: number): Module[] => [new Conv2d(cin, cout, 3, { padding: 1, bias: false }), new BatchNorm2d(cout), new ReLU()];
    this.registerModule(
      'features',
      new Sequential(
        ...block(this.inChannels, w),
        ...block(w, w),
        new MaxPool2d(2),
        ...block(w, 2 * w),
        ...block(2 * w, 2 * w),
        new MaxPool2d(2),
        ...block(2 * w, 4 * w),
        new MaxPool2d(2),
      ),
    );
    this.registerModule('classifier', new Linear(4 * w * side * side, this.numClasses));
  }

  forward(x: Tensor): Tensor {
    return this.classifier.call((this.features.call(x) as Tensor).flatten(1)) as Tensor;
  }
}
