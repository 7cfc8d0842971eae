/**
 * Where mixprec's state-dict names differ from PyTorch's. mixprec names module members in camelCase
 * (`bn.runningMean`), PyTorch in snake_case (`bn.running_mean`); these are the members whose names
 * differ (LSTM/GRU already use PyTorch's `weight_ih_l0`, ...). The table serves both directions:
 * `Module.loadStateDict` accepts PyTorch's names as they are, and `mx.io.saveTorch` writes PyTorch's,
 * so a state dict goes to PyTorch and back without renaming by hand.
 *
 * It lives below nn/ and io/ (both use it; neither may import the other).
 */

/** mixprec member name -> PyTorch's. */
export const TORCH_MEMBER_NAMES: Readonly<Record<string, string>> = Object.freeze({
  runningMean: 'running_mean',
  runningVar: 'running_var',
  numBatchesTracked: 'num_batches_tracked',
  posWeight: 'pos_weight',
});

const FROM_TORCH: ReadonlyMap<string, string> = new Map(Object.entries(TORCH_MEMBER_NAMES).map(([m, t]) => [t, m]));
const TO_TORCH: ReadonlyMap<string, string> = new Map(Object.entries(TORCH_MEMBER_NAMES));

function renameLast(key: string, table: ReadonlyMap<string, string>): string {
  const dot = key.lastIndexOf('.');
  const renamed = table.get(key.slice(dot + 1));
  return renamed === undefined ? key : key.slice(0, dot + 1) + renamed;
}

/** `layer1.0.bn1.running_mean` -> `layer1.0.bn1.runningMean`; other keys unchanged. */
export function fromTorchKey(key: string): string {
  return renameLast(key, FROM_TORCH);
}

/** `layer1.0.bn1.runningMean` -> `layer1.0.bn1.running_mean`; other keys unchanged. */
export function toTorchKey(key: string): string {
  return renameLast(key, TO_TORCH);
}

/**
 * Set (non-enumerable) on every dict `mx.io.loadTorch` returns: `Module.loadStateDict` then converts
 * values into the module's dtypes as PyTorch's `load_state_dict` does (a float16 checkpoint into a
 * float32 model), where a mixprec state dict must match dtypes unless `allowDtypeCast` is given.
 */
export const FROM_PYTORCH: unique symbol = Symbol.for('mixprec.fromPyTorch');

export function markFromPyTorch<T extends object>(dict: T): T {
  Object.defineProperty(dict, FROM_PYTORCH, { value: true, enumerable: false });
  return dict;
}

export function isFromPyTorch(dict: unknown): boolean {
  return typeof dict === 'object' && dict !== null && (dict as Record<symbol, unknown>)[FROM_PYTORCH] === true;
}
