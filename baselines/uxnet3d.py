"""3D UX-Net (Lee et al., ICLR 2023): large-kernel depthwise ConvNeXt-style encoder, UNETR-style decoder.

Written from the paper and MedNeXt's configuration of it (MedNeXt ``nnUNetTrainerV2_3DUXNet.py`` and its
vendored ``custom_networks/UXNet3D/``; docs/sources.md#baseline-trainers, #baseline-configs): depths
2,2,2,2, features 48,96,192,384, layer scale 1e-6, drop path 0.

Encoder: a 7^3 stride-2 stem, then per stage blocks of
``7^3 depthwise conv -> LayerNorm -> 1x1 conv C->4C grouped by C -> GELU -> 1x1 conv 4C->C grouped by C
-> layer scale -> + input`` (the paper's "depthwise convolution scaling"), 2^3 stride-2 convs between
stages, and a LayerNorm on each stage output. Decoder: MONAI's UNETR residual blocks on the raw input
and the four stage outputs (the deepest lifted to 768 channels), four transposed-conv up blocks and a
1x1 output conv. Spatial dims must be multiples of 16 (input /2 by the stem, then /2 three times).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks.dynunet_block import UnetOutBlock
from monai.networks.blocks.unetr_block import UnetrBasicBlock, UnetrUpBlock
from torch import nn

from baselines._common import as_patch, check_input_shape, require_bottleneck_above_one_voxel, require_divisible
from baselines._layers import DropPath

NAME = "3D-UX-Net"
DIVISOR = 16


def check_patch_size(patch_size: Sequence[int] | int) -> tuple[int, int, int]:
    """Each dim divisible by 16 (stride-2 stem, three stride-2 downsamplings); the 1/16 level must exceed 1 voxel."""
    patch = as_patch(patch_size, 3, NAME)
    require_divisible(NAME, patch, DIVISOR, "a stride-2 stem and three stride-2 downsamplings")
    require_bottleneck_above_one_voxel(NAME, patch, DIVISOR)
    return patch  # type: ignore[return-value]


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of a (B, C, D, H, W) tensor, eps 1e-6.

    Args:
        channels: channels C normalised over, with a learned scale and shift each.
        eps: added to the variance (default 1e-6: ``LayerNorm`` in the vendored ``uxnet_encoder.py`` L13).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.movedim(1, -1), self.weight.shape, self.weight, self.bias, self.eps)
        return y.movedim(-1, 1)


class UXBlock(nn.Module):
    """One 3D UX-Net block: 7^3 depthwise conv, LayerNorm, grouped 1x1 expand/compress, layer scale.

    As ``ux_block`` in the vendored ``uxnet_encoder.py`` L35-75.

    Args:
        dim: channels in and out.
        drop_path: stochastic-depth rate of the residual branch (default 0.0).
        layer_scale: initial per-channel scale of the branch; 0 disables it (default 1e-6: L47, L56).
        kernel_size: depthwise kernel side (default 7: L49, the paper's large kernel).
    """

    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale: float = 1e-6, kernel_size: int = 7) -> None:
        super().__init__()
        self.dwconv = nn.Conv3d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = ChannelLayerNorm(dim)
        self.expand = nn.Conv3d(dim, 4 * dim, 1, groups=dim)
        self.act = nn.GELU()
        self.compress = nn.Conv3d(4 * dim, dim, 1, groups=dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale)) if layer_scale > 0 else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.compress(self.act(self.expand(self.norm(self.dwconv(x)))))
        if self.gamma is not None:
            y = y * self.gamma.view(1, -1, 1, 1, 1)
        return x + self.drop_path(y)


class UXEncoder(nn.Module):
    """Stem + 4 stages of UX blocks; returns the LayerNorm-ed output of every stage (/2, /4, /8, /16).

    As ``uxnet_conv`` in the vendored ``uxnet_encoder.py`` L78-130.

    Args:
        in_channels: image channels.
        depths: blocks per stage.
        dims: channels per stage.
        drop_path_rate: largest stochastic-depth rate, reached linearly over the blocks.
        layer_scale: initial layer-scale value of every block.
    """

    def __init__(
        self,
        in_channels: int,
        depths: Sequence[int],
        dims: Sequence[int],
        drop_path_rate: float,
        layer_scale: float,
    ) -> None:
        super().__init__()
        self.downsample = nn.ModuleList(
            [nn.Sequential(nn.Conv3d(in_channels, dims[0], 7, stride=2, padding=3), ChannelLayerNorm(dims[0]))]
        )
        for i in range(len(dims) - 1):
            self.downsample.append(nn.Sequential(ChannelLayerNorm(dims[i]), nn.Conv3d(dims[i], dims[i + 1], 2, stride=2)))
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        start = 0
        for dim, depth in zip(dims, depths):
            self.stages.append(nn.Sequential(*[UXBlock(dim, rates[start + j], layer_scale) for j in range(depth)]))
            start += depth
        self.out_norms = nn.ModuleList([ChannelLayerNorm(d) for d in dims])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for down, stage, norm in zip(self.downsample, self.stages, self.out_norms):
            x = stage(down(x))
            outs.append(norm(x))
        return outs


class UXNet3D(nn.Module):
    """3D UX-Net segmentation network (no deep supervision), logits at input resolution.

    Defaults: MedNeXt's ``nnUNetTrainerV2_3DUXNet.initialize_network`` (``nnUNetTrainerV2_3DUXNet.py`` L29-39,
    "trainer" below) and the defaults of the vendored ``UXNET`` (``network_backbone.py`` L43-56);
    docs/sources.md#baseline-configs.

    Args:
        in_channels: image channels.
        n_classes: output channels, background included.
        depths: UX blocks per encoder stage (default (2, 2, 2, 2): trainer ``depths``).
        feat_size: channels per encoder stage (default (48, 96, 192, 384): trainer ``feat_size``).
        hidden_size: channels of the bottleneck block on the 1/16 features (default 768: ``UXNET`` default).
        drop_path_rate: largest stochastic-depth rate (default 0.0: trainer ``drop_path_rate``).
        layer_scale: initial layer-scale value (default 1e-6: trainer ``layer_scale_init_value``).
        norm_name: normalisation of MONAI's UNETR decoder blocks (default "instance": ``UXNET`` default).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        depths: Sequence[int] = (2, 2, 2, 2),
        feat_size: Sequence[int] = (48, 96, 192, 384),
        hidden_size: int = 768,
        drop_path_rate: float = 0.0,
        layer_scale: float = 1e-6,
        norm_name: str = "instance",
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(feat_size) != 4:
            raise ValueError(f"{NAME}: expected 4 depths and 4 feature sizes, got {list(depths)} and {list(feat_size)}")
        f = list(feat_size)
        self.encoder = UXEncoder(in_channels, depths, f, drop_path_rate, layer_scale)

        def basic(cin: int, cout: int) -> UnetrBasicBlock:
            return UnetrBasicBlock(3, cin, cout, kernel_size=3, stride=1, norm_name=norm_name, res_block=True)

        def up(cin: int, cout: int) -> UnetrUpBlock:
            return UnetrUpBlock(3, cin, cout, kernel_size=3, upsample_kernel_size=2, norm_name=norm_name, res_block=True)

        self.skip0 = basic(in_channels, f[0])  # full resolution, from the raw input
        self.skips = nn.ModuleList([basic(f[0], f[1]), basic(f[1], f[2]), basic(f[2], f[3])])
        self.bottleneck = basic(f[3], hidden_size)
        self.ups = nn.ModuleList([up(hidden_size, f[3]), up(f[3], f[2]), up(f[2], f[1]), up(f[1], f[0])])
        self.head_block = basic(f[0], f[0])
        self.out = UnetOutBlock(3, f[0], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_shape(NAME, x, None, 3)
        check_patch_size(tuple(x.shape[2:]))
        feats = self.encoder(x)  # /2, /4, /8, /16
        skips = [self.skip0(x)] + [blk(feat) for blk, feat in zip(self.skips, feats[:3])]  # /1, /2, /4, /8
        y = self.bottleneck(feats[3])
        for up_block, skip in zip(self.ups, reversed(skips)):
            y = up_block(y, skip)
        return self.out(self.head_block(y))


def build(in_channels: int, n_classes: int, patch_size: Sequence[int] | int = (128, 128, 128)) -> UXNet3D:
    """3D UX-Net as MedNeXt ran it; the patch size only gets checked (the network is size-agnostic)."""
    check_patch_size(patch_size)
    return UXNet3D(in_channels, n_classes)
