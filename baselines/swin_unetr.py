"""SwinUNETR (Hatamizadeh et al., BrainLes 2021) from MONAI, configured as the MedNeXt paper's run.

Settings of MedNeXt's ``nnUNetTrainerV2_SwinUNETR.py`` L39-60 (docs/sources.md#baseline-trainers) on MONAI's
defaults: feature_size 48, patch 2, depths 2,2,2,2,
heads 3,6,12,24, window 7, no gradient checkpointing. MONAI 1.5 removed ``img_size``; the network
(docs/sources.md#monai-api) accepts any size whose dims are multiples of patch_size**5 = 32.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import SwinUNETR as _MonaiSwinUNETR

from baselines._common import as_patch, check_input_shape, require_bottleneck_above_one_voxel, require_divisible

NAME = "SwinUNETR"
DIVISOR = 32


def check_patch_size(patch_size: Sequence[int] | int) -> tuple[int, int, int]:
    """Each dim divisible by 32 (2^3 patch embedding, four 2x merges); the 1/32 level must exceed 1 voxel."""
    patch = as_patch(patch_size, 3, NAME)
    require_divisible(NAME, patch, DIVISOR, "patch embedding 2 followed by four 2x patch mergings")
    require_bottleneck_above_one_voxel(NAME, patch, DIVISOR)
    return patch  # type: ignore[return-value]


class SwinUNETR(_MonaiSwinUNETR):
    """MONAI SwinUNETR (feature size 48) whose forward checks the size rule with a clear error.

    Args:
        in_channels: image channels.
        n_classes: output channels, background included.
    """

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__(in_channels=in_channels, out_channels=n_classes, feature_size=48, use_checkpoint=False)

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        check_input_shape(NAME, x_in, None, 3)
        check_patch_size(tuple(x_in.shape[2:]))
        return super().forward(x_in)


def build(in_channels: int, n_classes: int, patch_size: Sequence[int] | int = (128, 128, 128)) -> SwinUNETR:
    """SwinUNETR for ``patch_size`` inputs (the paper: 128^3); the size only gets checked."""
    check_patch_size(patch_size)
    return SwinUNETR(in_channels, n_classes)
