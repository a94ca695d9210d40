"""UNETR (Hatamizadeh et al., WACV 2022) from MONAI, configured as the MedNeXt paper's run.

Settings of MedNeXt's ``nnUNetTrainerV2_UNETR.py`` L29-43 (docs/sources.md#baseline-trainers):
img_size 128^3, feature_size 16, hidden 768, MLP 3072, 12 heads, perceptron patch embedding, instance
norm, residual conv blocks, dropout 0. MONAI 1.6 renamed ``pos_embed`` to ``proj_type``
(docs/sources.md#monai-api).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import UNETR as _MonaiUNETR

from baselines._common import as_patch, check_input_shape, require_divisible

NAME = "UNETR"
VIT_PATCH = 16


def check_patch_size(patch_size: Sequence[int] | int) -> tuple[int, int, int]:
    """UNETR embeds 16^3 patches with a fixed-length position embedding: each dim divisible by 16."""
    patch = as_patch(patch_size, 3, NAME)
    require_divisible(NAME, patch, VIT_PATCH, "the ViT embeds non-overlapping 16^3 patches")
    return patch  # type: ignore[return-value]


class UNETR(_MonaiUNETR):
    """MONAI UNETR whose forward rejects any input size other than its ``img_size``.

    Args:
        in_channels: image channels.
        n_classes: output channels, background included.
        img_size: the one input size accepted, each side divisible by 16 (the paper's run: 128^3).
    """

    def __init__(self, in_channels: int, n_classes: int, img_size: Sequence[int]) -> None:
        self.img_size = check_patch_size(img_size)
        super().__init__(
            in_channels=in_channels,
            out_channels=n_classes,
            img_size=self.img_size,
            feature_size=16,
            hidden_size=768,
            mlp_dim=3072,
            num_heads=12,
            proj_type="perceptron",
            norm_name="instance",
            conv_block=True,
            res_block=True,
            dropout_rate=0.0,
        )

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        check_input_shape(NAME, x_in, self.img_size, 3)
        return super().forward(x_in)


def build(in_channels: int, n_classes: int, patch_size: Sequence[int] | int = (128, 128, 128)) -> UNETR:
    """UNETR for ``patch_size`` inputs (the paper: 128^3)."""
    return UNETR(in_channels, n_classes, check_patch_size(patch_size))
