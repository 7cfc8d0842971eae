/**
 * Reverse-mode differentiation over the dynamic tape of GradNodes.
 *
 * Nodes run in reverse topological order; gradients reaching a node from several uses are summed
 * first. A leaf that requires grad accumulates into `.grad` in its own dtype. Backward rules are
 * ordinary ops run with recording off, so every backend runs them, in the forward op's dtype.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { GradNode, GradHook } from './node.js';
import { noGrad } from './mode.js';

export interface BackwardOptions {
  /** Keep the graph so that backward can run through it again. */
  retainGraph?: boolean;
}

let activeNode: GradNode | null = null;

/** The node whose backward rule is running (null in the forward pass): lets diagnostics tell the phases apart. */
export function currentBackwardNode(): GradNode | null {
  return activeNode;
}

/** Hooks on leaf tensors, kept outside the Tensor class to keep it small. */
export const leafHooks = new WeakMap<Tensor, GradHook[]>();

/**
 * Run hooks in order; a hook may return a replacement gradient. A hook on a leaf may also return
 * null: it took the gradient itself (float32 master weights do this) and nothing is accumulated.
 */
function runHooks(hooks: readonly GradHook[] | undefined, grad: Tensor): Tensor | null {
  if (!hooks) return grad;
  for (const h of hooks) {
    const replaced = h(grad);
    if (replaced === null) return null;
    if (replaced) grad = replaced;
  }
  return grad;
}

function accumulateLeaf(leaf: Tensor, grad: Tensor, accumulate: (leaf: Tensor, grad: Tensor) => void): void {
  const g = runHooks(leafHooks.get(leaf), grad);
  if (g) accumulate(leaf, g);
}

/** Nodes reachable from `root`, each after every node that feeds it a gradient. */
function topoOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  const stack: [GradNode, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [node, i] = top;
    if (i < node.inputs.length) {
      top[1]++;
      const next = node.inputs[i]!.gradFn;
      if (next && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

export function runBackward(
  root: Tensor,
  gradient: Tensor,
  options: BackwardOptions,
  accumulate: (leaf: Tensor, grad: Tensor) => void,
  add: (a: Tensor, b: Tensor) => Tensor,
  castTo: (t: Tensor, like: Tensor) => Tensor,
): void {
  noGrad(() => {
    if (!root.gradFn) {
      accumulateLeaf(root, gradient, accumulate);
      return;
    }
    const pending = new Map<GradNode, Tensor>();
    const rootNode = root.gradFn;
    pending.set(rootNode, gradient);
    for (const node of topoOrder(rootNode)) {
      let grad = pending.get(node);
      pending.delete(node);
      if (!grad) continue;
      grad = runHooks(node.hooks, grad) ?? grad;
      const retained = node.retainGradOf;
      if (retained) retained.grad = retained.grad ? add(retained.grad, grad) : grad;
      activeNode = node;
      let inputGrads: readonly (Tensor | null | undefined)[];
      try {
        inputGrads = node.apply(grad);
      } finally {
        activeNode = null;
      }
      if (!options.retainGraph) node.release();
      node.inputs.forEach((input, i) => {
        let g = inputGrads[i];
        if (!g || !input.requiresGrad) return;
        if (g.dtype !== input.dtype) g = castTo(g, input);
        if (input.gradFn) {
          const prev = pending.get(input.gradFn);
          pending.set(input.gradFn, prev ? add(prev, g) : g);
        } else {
          accumulateLeaf(input, g, accumulate);
        }
      });
    }
  });
}
