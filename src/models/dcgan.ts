/**
 * DCGAN (Radford et al. 2015) for 32x32 RGB images, as the PyTorch DCGAN example builds it, with one
 * upsampling stage fewer (32x32 instead of 64x64):
 * - Generator: z [N, latent, 1, 1] -> ConvTranspose2d 4x4 to 4x4 (width*4 channels), then three
 *   stride-2 ConvTranspose2d 4x4 to 8x8 (width*2), 16x16 (width) and 32x32 (3); BatchNorm2d + ReLU
 *   between them, Tanh at the end: images in [-1, 1].
 * - Discriminator: three stride-2 Conv2d 4x4 (3 -> width -> width*2 -> width*4: 16x16, 8x8, 4x4),
 *   LeakyReLU(0.2), BatchNorm2d after all but the first, then a 4x4 Conv2d to one logit per image.
 * Convolutions have no bias (BatchNorm follows them); the init is the paper's: conv weights N(0, 0.02),
 * BatchNorm weights N(1, 0.02), biases 0.
 */
import type { Tensor } from '../tensor/tensor.js';
import { Module, Sequential } from '../nn/module.js';
import { BatchNorm2d, BatchNormBase, Conv2d, ConvTranspose2d, LeakyReLU, ReLU, Tanh } from '../nn/layers.js';
import * as init from '../nn/init.js';
import type { Generator as RandomGenerator } from '../random/generator.js';

export interface DCGANOptions {
  /** Channel multiplier (PyTorch's ngf / ndf). Default 32. */
  width?: number;
  /** Length of the noise vector z (PyTorch's nz). Default 100. */
  latentDim?: number;
  /** Image channels. Default 3. */
  channels?: number;
  /** Draws the initial weights (default: the global generator). */
  generator?: RandomGenerator;
}

function checkOptions(name: string, o: DCGANOptions): { width: number; latentDim: number; channels: number } {
  const width = o.width ?? 32;
  const latentDim = o.latentDim ?? 100;
  const channels = o.channels ?? 3;
  for (const [k, v] of [['width', width], ['latentDim', latentDim], ['channels', channels]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name}: ${k} must be a positive integer, got ${v}`);
  }
  return { width, latentDim, channels };
}

/** The DCGAN paper's initialisation over every submodule (PyTorch example's weights_init). */
export function dcganInit_(model: Module, generator?: RandomGenerator): void {
  for (const m of model.modules()) {
    if (m instanceof Conv2d || m instanceof ConvTranspose2d) {
      init.normal_(m.weight, 0, 0.02, { generator });
      if (m.bias) init.zeros_(m.bias);
    } else if (m instanceof BatchNormBase) {
      if (m.weight) init.normal_(m.weight, 1, 0.02, { generator });
      if (m.bias) init.zeros_(m.bias);
    }
  }
}

/** z [N, latentDim, 1, 1] (or [N, latentDim]) -> images [N, channels, 32, 32] in [-1, 1]. */
export class DCGANGenerator extends Module {
  declare readonly main: Sequential;
  readonly width: number;
  readonly latentDim: number;
  readonly channels: number;

  constructor(options: DCGANOptions = {}) {
    super();
    ({ width: this.width, latentDim: this.latentDim, channels: this.channels } = checkOptions('DCGANGenerator', options));
    const w = this.width;
    const up = (cin: number, cout: number) => new ConvTranspose2d(cin, cout, 4, { stride: 2, padding: 1, bias: false });
    this.registerModule(
      'main',
      new Sequential(
        new ConvTranspose2d(this.latentDim, w * 4, 4, { bias: false }), // 1x1 -> 4x4
        new BatchNorm2d(w * 4),
        new ReLU(),
        up(w * 4, w * 2), // 8x8
        new BatchNorm2d(w * 2),
        new ReLU(),
        up(w * 2, w), // 16x16
        new BatchNorm2d(w),
        new ReLU(),
        up(w, this.channels), // 32x32
        new Tanh(),
      ),
    );
    dcganInit_(this, options.generator);
  }

  forward(z: Tensor): Tensor {
    const x = z.ndim === 2 ? z.reshape([z.shape[0]!, z.shape[1]!, 1, 1]) : z;
    if (x.ndim !== 4 || x.shape[1] !== this.latentDim || x.shape[2] !== 1 || x.shape[3] !== 1) {
      throw new RangeError(`DCGANGenerator: expected noise [N, ${this.latentDim}, 1, 1], got [${z.shape.join(', ')}]`);
    }
    return this.main.call(x) as Tensor;
  }
}

/** images [N, channels, 32, 32] -> logits [N] (real: positive). */
export class DCGANDiscriminator extends Module {
  declare readonly main: Sequential;
  readonly width: number;
  readonly channels: number;

  constructor(options: DCGANOptions = {}) {
    super();
    ({ width: this.width, channels: this.channels } = checkOptions('DCGANDiscriminator', options));
    const w = this.width;
    const down = (cin: number, cout: number) => new Conv2d(cin, cout, 4, { stride: 2, padding: 1, bias: false });
    this.registerModule(
      'main',
      new Sequential(
        down(this.channels, w), // 16x16
        new LeakyReLU(0.2),
        down(w, w * 2), // 8x8
        new BatchNorm2d(w * 2),
        new LeakyReLU(0.2),
        down(w * 2, w * 4), // 4x4
        new BatchNorm2d(w * 4),
        new LeakyReLU(0.2),
        new Conv2d(w * 4, 1, 4, { bias: false }), // 1x1: the logit
      ),
    );
    dcganInit_(this, options.generator);
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4 || x.shape[1] !== this.channels || x.shape[2] !== 32 || x.shape[3] !== 32) {
      throw new RangeError(`DCGANDiscriminator: expected images [N, ${this.channels}, 32, 32], got [${x.shape.join(', ')}]`);
    }
    return (this.main.call(x) as Tensor).reshape([x.shape[0]!]);
  }
}
