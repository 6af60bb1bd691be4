"""Writes golden.safetensors with the reference safetensors library (the Rust implementation behind
the `safetensors` Python package), so SafetensorsTest can check our reader against a writer we did
not write. Every value is exactly representable in its dtype and is restated by formula in
SafetensorsTest.readsFileWrittenByReferenceLibrary; keep the two in step.

Needs: safetensors (tested with 0.8.0), numpy, ml_dtypes (for bfloat16). Run from anywhere:
    python3 make_golden.py
"""
import math
import os

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

tensors = {
    # f32[i, j] = (4 * i + j) * 0.5 - 2
    "f32": (np.arange(12, dtype=np.float32) * 0.5 - 2).reshape(3, 4),
    # 1/3 and pi need all 53 bits; -2^-1074 is the smallest subnormal double
    "f64": np.array([[1.0 / 3.0, math.pi], [-(2.0 ** -1074), 1e300]], dtype=np.float64),
    # 1, -2, largest half, smallest subnormal half, +inf, -0
    "f16": np.array([1.0, -2.0, 65504.0, 2.0 ** -24, math.inf, -0.0], dtype=np.float16).reshape(2, 3),
    "bf16": np.array([1.0, 3.140625, -0.5, 2.0 ** 100], dtype=ml_dtypes.bfloat16),
    "i64": np.array([[1, -2, 3]], dtype=np.int64),
    "scalar": np.array(7.25, dtype=np.float32),
    "empty": np.zeros((0, 3), dtype=np.float32),
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.safetensors")
save_file(tensors, out, metadata={"format": "np", "source": "make_golden.py"})
print(out, os.path.getsize(out), "bytes")
