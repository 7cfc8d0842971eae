/**
 * Loss modules: thin wrappers of the mx.nn.functional losses (computed in float32 for 16-bit inputs).
 * forward(input, target). Class weights and posWeight are registered as buffers, as in PyTorch, so
 * they follow `to(dtype)` and appear in stateDict().
 */
import type { Tensor } from '../tensor/tensor.js';
import * as F from './functional.js';
import { Module } from './module.js';

export type Reduction = 'mean' | 'sum' | 'none';

function checkReduction(name: string, reduction: string): Reduction {
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new RangeError(`${name}: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  }
  return reduction;
}

abstract class Loss extends Module {
  readonly reduction: Reduction;

  constructor(reduction: Reduction | undefined) {
    super();
    this.reduction = checkReduction(new.target.name, reduction ?? 'mean');
  }

  abstract override forward(input: Tensor, target: Tensor): Tensor;

  override extraRepr(): string {
    return `reduction='${this.reduction}'`;
  }
}

export interface CrossEntropyLossOptions {
  /** Per-class weights [C]. */
  weight?: Tensor | null;
  /** Targets equal to it are skipped (and excluded from the mean). Default -100. */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** Mix the targets with the uniform distribution by this amount. Default 0. */
  labelSmoothing?: number;
}

/** Cross entropy of logits [N, C, ...] (or [C]) with int32 class indices or class probabilities. */
export class CrossEntropyLoss extends Loss {
  declare readonly weight: Tensor | null;
  readonly ignoreIndex: number;
  readonly labelSmoothing: number;

  constructor(options: CrossEntropyLossOptions = {}) {
    super(options.reduction);
    this.registerBuffer('weight', options.weight ?? null);
    this.ignoreIndex = options.ignoreIndex ?? -100;
    this.labelSmoothing = options.labelSmoothing ?? 0;
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return F.crossEntropy(input, target, {
      weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction, labelSmoothing: this.labelSmoothing,
    });
  }
}

export interface NLLLossOptions {
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
}

/** Negative log-likelihood of log-probabilities [N, C, ...] (or [C]) with int32 class indices. */
export class NLLLoss extends Loss {
  declare readonly weight: Tensor | null;
  readonly ignoreIndex: number;

  constructor(options: NLLLossOptions = {}) {
    super(options.reduction);
    this.registerBuffer('weight', options.weight ?? null);
    this.ignoreIndex = options.ignoreIndex ?? -100;
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return F.nllLoss(input, target, { weight: this.weight, ignoreIndex: this.ignoreIndex, reduction: this.reduction });
  }
}

/** Mean squared error. */
export class MSELoss extends Loss {
  constructor(options: { reduction?: Reduction } = {}) {
    super(options.reduction);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return F.mseLoss(input, target, { reduction: this.reduction });
  }
}

/** Mean absolute error. */
export class L1Loss extends Loss {
  constructor(options: { reduction?: Reduction } = {}) {
    super(options.reduction);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return F.l1Loss(input, target, { reduction: this.reduction });
  }
}

export interface BCEWithLogitsLossOptions {
  /** Weight of each element (broadcast to the input). */
  weight?: Tensor | null;
  /** Weight of the positive examples, per class (broadcast along the last dim). */
  posWeight?: Tensor | null;
  reduction?: Reduction;
}

/** Binary cross entropy on logits (a sigmoid and BCE in one numerically stable step). */
export class BCEWithLogitsLoss extends Loss {
  declare readonly weight: Tensor | null;
  declare readonly posWeight: Tensor | null;

  constructor(options: BCEWithLogitsLossOptions = {}) {
    super(options.reduction);
    this.registerBuffer('weight', options.weight ?? null);
    this.registerBuffer('posWeight', options.posWeight ?? null);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropyWithLogits(input, target, { weight: this.weight, posWeight: this.posWeight, reduction: this.reduction });
  }
}

/** Binary cross entropy on probabilities. */
export class BCELoss extends Loss {
  declare readonly weight: Tensor | null;

  constructor(options: { weight?: Tensor | null; reduction?: Reduction } = {}) {
    super(options.reduction);
    this.registerBuffer('weight', options.weight ?? null);
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropy(input, target, { weight: this.weight, reduction: this.reduction });
  }
}
