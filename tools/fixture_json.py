"""Fixture values as JSON: float32 numbers, with NaN and +-Inf as strings (JSON has no literal for them).
Shared by the fixture generators in this folder."""
import numpy as np


def enc(v):
    v = np.float32(v)
    if np.isnan(v):
        return 'nan'
    if np.isinf(v):
        return 'inf' if v > 0 else '-inf'
    return float(str(v))


def enc_list(a):
    return [enc(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]
