"""Reading nnU-Net v2 checkpoints with ``torch.load(weights_only=True)``.

nnU-Net stores numpy scalars (losses, Dice, EMA) next to the weights, which the weights-only
unpickler rejects; this module allows exactly those numpy types and nothing executable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: numpy globals found in nnU-Net v2 checkpoints (``logging``, ``_best_ema``): scalars and dtypes.
_NUMPY_SAFE_GLOBALS: list[object] = [
    np._core.multiarray.scalar,
    np.dtype,
    *(getattr(np.dtypes, name) for name in (
        "BoolDType", "Float16DType", "Float32DType", "Float64DType", "Int8DType", "Int16DType", "Int32DType",
        "Int64DType", "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType",
    )),
]


def load_nnunet_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict (``network_weights``, ``current_epoch``, ...) of an nnU-Net v2 ``.pth`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nnU-Net checkpoint not found: {path}")
    with torch.serialization.safe_globals(_NUMPY_SAFE_GLOBALS):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ValueError(f"{path} is not an nnU-Net v2 checkpoint (no 'network_weights' key)")
    return checkpoint


def network_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Only the state dict of an nnU-Net v2 checkpoint."""
    return dict(load_nnunet_checkpoint(path)["network_weights"])
