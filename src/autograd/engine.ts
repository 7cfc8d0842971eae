/**
 * Reverse-mode differentiation over the dynamic tape of GradNodes.
 *
 * Nodes run in reverse topological order; gradients reaching a node from several uses are summed
 * first. A leaf that requires grad accumulates into `.grad` in its own dtype. Backward rules are
 * ordinary ops run with recording off, so every backend runs them, in the forward op's dtype.
 */
import type { Tensor } from '../tensor/tensor.js';
import type { GradNode, GradHook, SliceSpec } from './node.js';
import { noGrad } from './mode.js';
import { storageSerial } from '../tensor/storage.js';

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

/** Called with a leaf once its gradient of this backward pass is complete (PyTorch's post-accumulate-grad hook). */
export type PostAccumulateGradHook = (leaf: Tensor) => void;
export const postAccumulateHooks = new WeakMap<Tensor, PostAccumulateGradHook[]>();

/** Callbacks queued during the backward pass in progress (null outside backward). */
let endOfBackward: (() => void)[] | null = null;
/** Backward passes started so far: tells state kept across hooks which pass a hook belongs to. */
let passes = 0;

/** The number of the backward pass in progress (or of the last one). */
export function backwardPassNumber(): number {
  return passes;
}

/**
 * Run `fn` when the backward pass in progress has delivered every gradient, before `backward()`
 * returns (PyTorch's `queue_callback`): DistributedDataParallel waits for its all-reduces there.
 */
export function queueBackwardCallback(fn: () => void): void {
  if (!endOfBackward) throw new Error('queueBackwardCallback: no backward pass is running');
  endOfBackward.push(fn);
}

/**
 * Run hooks in order; a hook may return a replacement gradient. A hook on a leaf may also return
 * null: it took the gradient itself (float32 master weights do this) and nothing is accumulated.
 */
function runHooks(hooks: readonly GradHook[] | undefined, grad: Tensor): Tensor | null {
  if (!hooks) return grad;
  for (let i = 0; i < hooks.length; i++) {
    const replaced = hooks[i]!(grad);
    if (replaced === null) return null;
    if (replaced) grad = replaced;
  }
  return grad;
}

/**
 * How a gradient reaches a leaf's `.grad`. `owned`: the engine made this tensor in this backward
 * pass and nothing else refers to its storage, so the leaf may keep it instead of copying it.
 */
export type Accumulate = (leaf: Tensor, grad: Tensor, owned: boolean) => void;

function accumulateLeaf(leaf: Tensor, grad: Tensor, accumulate: Accumulate, owned = false): void {
  const hooks = leafHooks.get(leaf);
  const g = runHooks(hooks, grad);
  // A hook has seen (and may hold) the tensor: then it is not ours to give away.
  if (g) accumulate(leaf, g, owned && !hooks);
}

/** Whether a gradient other than the `i`-th of `grads` shares `storage`. */
function sharedWithOther(grads: readonly (Tensor | null | undefined)[], i: number, storage: Tensor['storage']): boolean {
  for (let j = 0; j < grads.length; j++) if (j !== i && grads[j] && grads[j]!.storage === storage) return true;
  return false;
}

/** Nodes reachable from `root`, each after every node that feeds it a gradient. */
function topoOrder(root: GradNode): GradNode[] {
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  const stack: [GradNode, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const { 0: node, 1: i } = top;
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

/** A gradient of a slice of a tensor (see OpDef.gradientSlice): `grad` belongs at `spec` in it. */
export interface SliceGradient {
  spec: SliceSpec;
  grad: Tensor;
}

/** The operations backward needs from the op layer (passed in: the engine sits below it). */
export interface BackwardOps {
  add(a: Tensor, b: Tensor): Tensor;
  castTo(t: Tensor, like: Tensor): Tensor;
  /** The gradient of `like` made of slice gradients (zeros elsewhere) plus `dense` when given. */
  assemble(like: Tensor, slices: readonly SliceGradient[], dense: Tensor | null): Tensor;
}

/** Gradients waiting for a node or leaf: summed dense ones, and slice gradients kept apart until used. */
interface Pending {
  dense: Tensor | null;
  slices: SliceGradient[];
  /** The tensor the slices are slices of (set with the first slice). */
  like: Tensor | null;
}

/**
 * Post-accumulate hooks fire once per leaf per backward pass, after the leaf's last incoming
 * gradient: each leaf counts its edges from the nodes of this pass, and a leaf whose count never
 * reaches zero (an edge of a node that got no gradient) fires at the end.
 */
class PostAccumulate {
  private readonly edges = new Map<Tensor, number>();
  private readonly received = new Set<Tensor>();
  private readonly fired = new Set<Tensor>();

  constructor(order: readonly GradNode[]) {
    for (let n = 0; n < order.length; n++) {
      const inputs = order[n]!.inputs;
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i]!;
        if (!input.gradFn && input.requiresGrad && postAccumulateHooks.has(input)) this.edges.set(input, (this.edges.get(input) ?? 0) + 1);
      }
    }
  }

  /** A gradient reached the leaf. */
  receive(leaf: Tensor): void {
    if (this.edges.has(leaf)) this.received.add(leaf);
  }

  /** One of the leaf's edges was processed; `deferred`: its gradient is still being assembled. */
  edgeDone(leaf: Tensor, deferred: boolean): void {
    const left = this.edges.get(leaf);
    if (left === undefined) return;
    this.edges.set(leaf, left - 1);
    if (left === 1 && !deferred) this.fire(leaf);
  }

  fire(leaf: Tensor): void {
    if (!this.received.has(leaf) || this.fired.has(leaf)) return;
    this.fired.add(leaf);
    for (const hook of [...(postAccumulateHooks.get(leaf) ?? [])]) hook(leaf);
  }

  fireRemaining(): void {
    for (const leaf of this.received) this.fire(leaf);
  }
}

export function runBackward(root: Tensor, gradient: Tensor, options: BackwardOptions, accumulate: Accumulate, ops: BackwardOps): void {
  const outer = endOfBackward;
  const callbacks: (() => void)[] = [];
  endOfBackward = callbacks;
  passes++;
  try {
    backwardPass(root, gradient, options, accumulate, ops);
    // Callbacks may queue more (each runs once, in order).
    for (let i = 0; i < callbacks.length; i++) noGrad(callbacks[i]!);
  } finally {
    endOfBackward = outer;
  }
}

function backwardPass(root: Tensor, gradient: Tensor, options: BackwardOptions, accumulate: Accumulate, ops: BackwardOps): void {
  noGrad(() => {
    if (!root.gradFn) {
      accumulateLeaf(root, gradient, accumulate);
      for (const hook of [...(postAccumulateHooks.get(root) ?? [])]) hook(root);
      return;
    }
    const pending = new Map<GradNode, Pending>();
    // slices of leaves (narrowed parameters) are assembled once all gradients are in
    const pendingLeaves = new Map<Tensor, Pending>();
    const gradientOf = (p: Pending): Tensor => (p.slices.length === 0 ? p.dense! : ops.assemble(p.like!, p.slices, p.dense));
    function addTo<K>(map: Map<K, Pending>, key: K, g: Tensor): void {
      const p = map.get(key);
      if (!p) map.set(key, { dense: g, slices: [], like: null });
      else p.dense = p.dense ? ops.add(p.dense, g) : g;
    }
    function addSlice<K>(map: Map<K, Pending>, key: K, of: Tensor, slice: SliceGradient): void {
      const p = map.get(key);
      if (!p) map.set(key, { dense: null, slices: [slice], like: of });
      else {
        p.slices.push(slice);
        p.like = of;
      }
    }
    const rootNode = root.gradFn;
    pending.set(rootNode, { dense: gradient, slices: [], like: null });
    const order = topoOrder(rootNode);
    const post = new PostAccumulate(order);
    // indexed loops, no per-node closures: until TurboFan compiles this, each for-of or forEach
    // allocates per element (bench/README.md, "warm-up")
    for (let n = 0; n < order.length; n++) {
      const node = order[n]!;
      const waiting = pending.get(node);
      pending.delete(node);
      if (!waiting) continue;
      let grad = gradientOf(waiting);
      grad = runHooks(node.hooks, grad) ?? grad;
      const retained = node.retainGradOf;
      if (retained) retained.grad = retained.grad ? ops.add(retained.grad, grad) : grad;
      const input0 = node.inputs[0];
      if (node.slice && !node.released && input0 && input0.requiresGrad) {
        // a slicing view: hand the gradient on as a slice of its input (assembled when used)
        const g = grad.dtype !== input0.dtype ? ops.castTo(grad, input0) : grad;
        const slice = { spec: node.slice, grad: g };
        if (input0.gradFn) addSlice(pending, input0.gradFn, input0, slice);
        else {
          addSlice(pendingLeaves, input0, input0, slice);
          post.edgeDone(input0, true);
        }
        if (!options.retainGraph) node.release();
        continue;
      }
      activeNode = node;
      const firstNew = storageSerial();
      let inputGrads: readonly (Tensor | null | undefined)[];
      try {
        inputGrads = node.apply(grad);
      } finally {
        activeNode = null;
      }
      if (!options.retainGraph) node.release();
      const inputs = node.inputs;
      for (let i = 0; i < inputs.length; i++) {
        const input = inputs[i]!;
        let g = inputGrads[i];
        if (g && input.requiresGrad) {
          if (g.dtype !== input.dtype) g = ops.castTo(g, input);
          if (input.gradFn) addTo(pending, input.gradFn, g);
          else if (pendingLeaves.has(input)) addTo(pendingLeaves, input, g);
          else {
            // Made by this node's rule (or the cast above) and handed to this input only: the leaf may keep it.
            const storage = g.storage;
            const owned = storage.serial >= firstNew && !sharedWithOther(inputGrads, i, storage);
            accumulateLeaf(input, g, accumulate, owned);
            post.receive(input);
          }
        }
        if (!input.gradFn) post.edgeDone(input, pendingLeaves.has(input));
      }
    }
    for (const [leaf, p] of pendingLeaves) {
      accumulateLeaf(leaf, gradientOf(p), accumulate);
      post.receive(leaf);
      post.fire(leaf);
    }
    post.fireRemaining();
  });
}
