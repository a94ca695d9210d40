"""Reading nnU-Net v2 checkpoints (weights-only, see :mod:`mednext.checkpoint_io`)."""

from __future__ import annotations

from pathlib import Path

import torch

from mednext.checkpoint_io import load_weights_only


def load_nnunet_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict (``network_weights``, ``current_epoch``, ...) of an nnU-Net v2 ``.pth`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nnU-Net checkpoint not found: {path}")
    checkpoint = load_weights_only(path)
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ValueError(f"{path} is not an nnU-Net v2 checkpoint (no 'network_weights' key)")
    return checkpoint


def network_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Only the state dict of an nnU-Net v2 checkpoint."""
    return dict(load_nnunet_checkpoint(path)["network_weights"])
