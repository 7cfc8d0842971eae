/** Whether ops record the autograd graph. */
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

/** Run `fn` without recording gradients (PyTorch's torch.no_grad). Restores the mode even if fn throws. */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = true;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

export function setGradEnabled(value: boolean): void {
  enabled = value;
}
