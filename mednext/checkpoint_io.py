"""``torch.load(weights_only=True)`` for the project's checkpoint formats.

nnU-Net v2 stores numpy scalars (losses, Dice, EMA) next to the weights, which the weights-only
unpickler rejects; exactly those numpy types are allowed, nothing executable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

#: numpy globals found in nnU-Net v2 checkpoints (``logging``, ``_best_ema``): scalars and dtypes.
NUMPY_SAFE_GLOBALS: list[object] = [
    np._core.multiarray.scalar,
    np.dtype,
    *(getattr(np.dtypes, name) for name in (
        "BoolDType", "Float16DType", "Float32DType", "Float64DType", "Int8DType", "Int16DType", "Int32DType",
        "Int64DType", "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType",
    )),
]


def load_weights_only(path: str | Path) -> Any:
    """Load ``path`` on the CPU with the weights-only unpickler (numpy scalars allowed)."""
    with torch.serialization.safe_globals(NUMPY_SAFE_GLOBALS):
        return torch.load(Path(path), map_location="cpu", weights_only=True)
