/** One recorded op in the autograd graph: its inputs and the rule that maps the output gradient to theirs. */
import type { Tensor } from '../tensor/tensor.js';

/** Sees a gradient; may return a replacement. On a leaf, returning null consumes it (nothing accumulates). */
export type GradHook = (grad: Tensor) => Tensor | void | null;
export type BackwardFn = (gradOutput: Tensor) => readonly (Tensor | null | undefined)[];

/** The output of a slicing view is input[start : start + length] along `dim`. */
export interface SliceSpec {
  readonly dim: number;
  readonly start: number;
  readonly length: number;
}

export class GradNode {
  /** Hooks registered on the node's output tensor (a non-leaf). */
  readonly hooks: GradHook[] = [];
  /** Set after a backward pass without retainGraph: the saved tensors are gone. */
  released = false;
  /** The output keeps its gradient in `.grad` (retainGrad). */
  retainGradOf: Tensor | null = null;

  constructor(
    readonly op: string,
    readonly inputs: readonly Tensor[],
    private backwardFn: BackwardFn | null,
    /** Set for slicing views: the output is this slice of inputs[0] (see OpDef.gradientSlice). */
    readonly slice: SliceSpec | null = null,
  ) {}

  apply(gradOutput: Tensor): readonly (Tensor | null | undefined)[] {
    if (!this.backwardFn) {
      throw new Error(
        `Trying to backward through the graph a second time (op '${this.op}'): pass { retainGraph: true } to the first backward()`,
      );
    }
    return this.backwardFn(gradOutput);
  }

  release(): void {
    this.backwardFn = null;
    this.released = true;
  }
}
