"""MedNeXt building blocks (paper §2.1-2.2).

Attribute names and creation order follow the official MedNeXt v1 release so that its
checkpoints load with ``strict=True`` (MedNeXt ``mednextv1/blocks.py``; docs/sources.md#mednext-block).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

SpatialDims = Literal["2d", "3d"]


def conv_class(dim: SpatialDims, transposed: bool = False) -> type[nn.Module]:
    """Return the (transposed) convolution class for ``dim`` ('2d' or '3d')."""
    if dim not in ("2d", "3d"):
        raise ValueError(f"dim must be '2d' or '3d', got {dim!r}")
    if transposed:
        return nn.ConvTranspose2d if dim == "2d" else nn.ConvTranspose3d
    return nn.Conv2d if dim == "2d" else nn.Conv3d


class MedNeXtBlock(nn.Module):
    """ConvNeXt-style block, paper §2.1.

    depthwise k^d conv -> channel-wise GroupNorm -> 1x1 expansion to ``exp_r*C`` -> GELU
    -> 1x1 compression to ``out_channels`` (-> + input when ``do_res``).

    Args:
        in_channels: channels C entering the block.
        out_channels: channels leaving the compression layer.
        exp_r: expansion ratio R of the 1x1 expansion layer (§2.4, Table 1).
        kernel_size: spatial size k of the depthwise kernel (3 or 5 in the paper).
        do_res: add the block input to its output (standard residual).
        dim: '3d' for volumes, '2d' for slices.
        stride: stride of the depthwise conv (2 in the down-sampling block, §2.2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        exp_r: int = 4,
        kernel_size: int = 7,
        do_res: bool = True,
        dim: SpatialDims = "3d",
        stride: int = 1,
    ) -> None:
        super().__init__()
        self.do_res = do_res
        self.dim = dim
        conv = conv_class(dim)
        self.conv1 = conv(
            in_channels, in_channels, kernel_size, stride=stride, padding=kernel_size // 2, groups=in_channels
        )
        # One group per channel: "channel-wise GroupNorm" (§2.1), eps 1e-5, affine.
        self.norm = nn.GroupNorm(num_groups=in_channels, num_channels=in_channels)
        self.conv2 = conv(in_channels, exp_r * in_channels, kernel_size=1)
        self.act = nn.GELU()
        self.conv3 = conv(exp_r * in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.act(self.conv2(self.norm(self.conv1(x)))))
        return x + y if self.do_res else y


class MedNeXtDownBlock(MedNeXtBlock):
    """Residual inverted-bottleneck down-sampling block, paper §2.2.

    The depthwise conv has stride 2; the compression layer changes C to ``out_channels``.
    With ``do_res`` a 1x1 stride-2 conv of the input is added (the paper's residual resampling);
    without it the block is the "Standard Up and Downsampling" ablation of Table 1 (right).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        exp_r: int = 4,
        kernel_size: int = 7,
        do_res: bool = False,
        dim: SpatialDims = "3d",
    ) -> None:
        super().__init__(in_channels, out_channels, exp_r, kernel_size, do_res=False, dim=dim, stride=2)
        self.resample_do_res = do_res
        if do_res:
            self.res_conv = conv_class(dim)(in_channels, out_channels, kernel_size=1, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y + self.res_conv(x) if self.resample_do_res else y


def _pad_front(x: torch.Tensor) -> torch.Tensor:
    """Zero-pad one voxel at the start of every spatial axis (2n-1 -> 2n), as the official v1."""
    spatial = x.dim() - 2
    return F.pad(x, (1, 0) * spatial)


class MedNeXtUpBlock(MedNeXtBlock):
    """Residual inverted-bottleneck up-sampling block, paper §2.2.

    The depthwise layer is a stride-2 transposed conv (output 2n-1, padded at the front to 2n);
    with ``do_res`` a 1x1 stride-2 transposed conv of the input is added.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        exp_r: int = 4,
        kernel_size: int = 7,
        do_res: bool = False,
        dim: SpatialDims = "3d",
    ) -> None:
        super().__init__(in_channels, out_channels, exp_r, kernel_size, do_res=False, dim=dim)
        self.resample_do_res = do_res
        transposed = conv_class(dim, transposed=True)
        if do_res:
            self.res_conv = transposed(in_channels, out_channels, kernel_size=1, stride=2)
        # Replacing the module keeps its position in _modules, so key order stays conv1, norm, ...
        self.conv1 = transposed(
            in_channels, in_channels, kernel_size, stride=2, padding=kernel_size // 2, groups=in_channels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _pad_front(super().forward(x))
        return y + _pad_front(self.res_conv(x)) if self.resample_do_res else y


class OutBlock(nn.Module):
    """Segmentation head: a 1x1 transposed conv to ``n_classes`` (official v1 layout)."""

    def __init__(self, in_channels: int, n_classes: int, dim: SpatialDims = "3d") -> None:
        super().__init__()
        self.conv_out = conv_class(dim, transposed=True)(in_channels, n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(x)
