/**
 * The seed's network (PyTorch's CIFAR-10 tutorial Net): conv 3->6 5x5, max-pool 2, conv 6->16 5x5,
 * max-pool 2, linear 400->120->84->10, ReLU. Parameter names match the tutorial's (conv1, conv2,
 * fc1, fc2, fc3), so checkpoints map one to one. It adapts to the input's channels and size
 * (MNIST's 1x28x28 gives fc1 256->120).
 */
import type { Tensor } from '../tensor/tensor.js';
import { Module } from '../nn/module.js';
import { Conv2d, Linear } from '../nn/layers.js';
import * as F from '../nn/functional.js';
import { relu } from '../ops/elementwise.js';

export interface LeNetOptions {
  inChannels?: number;
  imageSize?: number;
  numClasses?: number;
}

export class LeNet extends Module {
  declare readonly conv1: Conv2d;
  declare readonly conv2: Conv2d;
  declare readonly fc1: Linear;
  declare readonly fc2: Linear;
  declare readonly fc3: Linear;
  readonly inChannels: number;
  readonly imageSize: number;
  readonly numClasses: number;

  constructor(options: LeNetOptions = {}) {
    super();
    this.inChannels = options.inChannels ?? 3;
    this.imageSize = options.imageSize ?? 32;
    this.numClasses = options.numClasses ?? 10;
    const side = Math.floor((Math.floor((this.imageSize - 4) / 2) - 4) / 2);
    if (side < 1) throw new RangeError(`LeNet: images of ${this.imageSize}x${this.imageSize} are too small (need at least 16x16)`);
    this.registerModule('conv1', new Conv2d(this.inChannels, 6, 5));
    this.registerModule('conv2', new Conv2d(6, 16, 5));
    this.registerModule('fc1', new Linear(16 * side * side, 120));
    this.registerModule('fc2', new Linear(120, 84));
    this.registerModule('fc3', new Linear(84, this.numClasses));
  }

  forward(x: Tensor): Tensor {
    let h = F.maxPool2d(relu(this.conv1.call(x)), 2);
    h = F.maxPool2d(relu(this.conv2.call(h)), 2);
    h = h.flatten(1);
    h = relu(this.fc1.call(h));
    h = relu(this.fc2.call(h));
    return this.fc3.call(h);
  }
}
