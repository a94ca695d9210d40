"""TransUNet (Chen et al., arXiv 2102.04306), R50-ViT-B/16, 2D, trained from scratch as MedNeXt did.

Written from the paper and MedNeXt's configuration of it (MedNeXt ``nnUNetTrainerV2_TransUnet.py`` and its
vendored ``custom_networks/TransUnet/``; docs/sources.md#baseline-trainers, #baseline-configs): hybrid
encoder = ResNet-50 v2 stem and first three stages (3, 4, 9 bottleneck units, weight-standardised
convs, GroupNorm(32)) to 1/16 size and 1024 channels, a 1x1 patch embedding to 768, a learned
position embedding for the (img/16)^2 grid, 12 pre-norm ViT layers (12 heads, MLP 3072, dropout 0.1);
cascaded up-sampler: 3^3 conv to 512, then four (bilinear x2, concat skip, two conv-BN-ReLU) blocks
with channels 256, 128, 64, 16 and skips from 1/8, 1/4, 1/2 (n_skip 3), then a 3x3 conv to the
classes. One input channel is repeated to three (the RGB stem).
No pretrained weights are loaded (``load_from`` is never called in MedNeXt's trainer).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import PatchSizeError, as_patch, check_input_shape, require_divisible

NAME = "TransUNet"
DIVISOR = 16


def check_patch_size(patch_size: Sequence[int] | int) -> tuple[int, int]:
    """2D, square (H = W = img_size), divisible by 16 (the ViT grid is img/16 with 1x1 patches), at least 32."""
    patch = as_patch(patch_size, 2, NAME)
    if patch[0] != patch[1]:
        raise PatchSizeError(NAME, patch, "H must equal W (square img_size; the position embedding is a square grid)")
    require_divisible(NAME, patch, DIVISOR, "the ResNet-50 stem and stages reduce by 16 before the ViT")
    if patch[0] < 2 * DIVISOR:
        raise PatchSizeError(NAME, patch,
                             f"must be at least {2 * DIVISOR}: the 1/16 grid needs 2x2 cells for GroupNorm(1024, 1024)")
    return patch  # type: ignore[return-value]


class StdConv2d(nn.Conv2d):
    """Conv2d with weight standardisation (zero mean, unit variance per output filter, eps 1e-5).

    Takes ``nn.Conv2d``'s arguments (``StdConv2d`` in the vendored ``vit_seg_modeling_resnet_skip.py`` L18).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(self.weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = (self.weight - mean) / torch.sqrt(var + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride here) -> 1x1 std-convs with GroupNorm(32); projection shortcut when shape changes.

    As ``PreActBottleneck`` in the vendored ``vit_seg_modeling_resnet_skip.py`` L38-58.

    Args:
        cin: input channels.
        cout: output channels.
        cmid: channels of the 3x3 conv (a quarter of ``cout`` in ResNet-50).
        stride: stride of the 3x3 conv and of the shortcut (default 1; 2 opens stages 2 and 3).
    """

    def __init__(self, cin: int, cout: int, cmid: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = StdConv2d(cin, cmid, 1, bias=False)
        self.gn1 = nn.GroupNorm(32, cmid, eps=1e-6)
        self.conv2 = StdConv2d(cmid, cmid, 3, stride=stride, padding=1, bias=False)
        self.gn2 = nn.GroupNorm(32, cmid, eps=1e-6)
        self.conv3 = StdConv2d(cmid, cout, 1, bias=False)
        self.gn3 = nn.GroupNorm(32, cout, eps=1e-6)
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(StdConv2d(cin, cout, 1, stride=stride, bias=False), nn.GroupNorm(cout, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x)
        y = F.relu(self.gn1(self.conv1(x)))
        y = F.relu(self.gn2(self.conv2(y)))
        return F.relu(residual + self.gn3(self.conv3(y)))


def _stage(cin: int, cout: int, cmid: int, units: int, stride: int) -> nn.Sequential:
    return nn.Sequential(Bottleneck(cin, cout, cmid, stride), *[Bottleneck(cout, cout, cmid) for _ in range(units - 1)])


class ResNetEncoder(nn.Module):
    """ResNet-50 v2 stem + stages 1-3; returns the 1/16 features and skips at 1/8, 1/4, 1/2.

    Args:
        in_channels: input channels (three for a single-channel image, repeated by the caller).
        units: bottleneck units of the three stages (default (3, 4, 9): ``resnet.num_layers`` of the
            R50-ViT-B/16 config, vendored ``vit_seg_configs.py`` L47).
        width: stem channels, 64 times ``resnet.width_factor`` = 1 (default 64;
            ``vit_seg_modeling_resnet_skip.py`` L117).
    """

    def __init__(self, in_channels: int, units: Sequence[int] = (3, 4, 9), width: int = 64) -> None:
        super().__init__()
        self.root = nn.Sequential(
            StdConv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
            nn.GroupNorm(32, width, eps=1e-6),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.ModuleList(
            [
                _stage(width, 4 * width, width, units[0], 1),
                _stage(4 * width, 8 * width, 2 * width, units[1], 2),
                _stage(8 * width, 16 * width, 4 * width, units[2], 2),
            ]
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        size = x.shape[-1]
        x = self.root(x)
        skips = [x]  # 1/2
        x = F.max_pool2d(x, kernel_size=3, stride=2, padding=0)  # unpadded pool: img/4 - 1
        for i, stage in enumerate(self.stages[:-1]):
            x = stage(x)
            target = size // 4 // (i + 1)
            # zero-pad a skip that the unpadded pool left short (bottom/right), as the reference does
            skips.append(F.pad(x, (0, target - x.shape[-1], 0, target - x.shape[-2])))
        x = self.stages[-1](x)
        return x, skips[::-1]  # deep-first: 1/8, 1/4, 1/2


class Attention(nn.Module):
    """Multi-head self-attention with separate query/key/value/output projections (ViT-B naming).

    Args:
        dim: token channels; divisible by ``heads``.
        heads: attention heads.
        attn_dropout: dropout on the attention weights (in training) and on the output projection.
    """

    def __init__(self, dim: int, heads: int, attn_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attn_dropout = attn_dropout
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.out_drop = nn.Dropout(attn_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)

        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)), dropout_p=p)
        return self.out_drop(self.out(y.transpose(1, 2).reshape(b, n, c)))


class ViTLayer(nn.Module):
    """Pre-norm transformer layer (LayerNorm eps 1e-6), MLP with GELU and dropout.

    As ``Block`` and ``Mlp`` of the vendored ``vit_seg_modeling.py`` (L97-111, L170-175).

    Args:
        dim: token channels.
        heads: attention heads.
        mlp_dim: hidden width of the MLP.
        dropout: dropout inside the MLP and after it.
        attn_dropout: dropout of the attention (see :class:`Attention`).
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, attn_dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)
        self.drop = nn.Dropout(dropout)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.normal_(fc.bias, std=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        h = self.drop(F.gelu(self.fc1(self.norm2(x))))
        return x + self.drop(self.fc2(h))


class ConvBNReLU2d(nn.Sequential):
    """3x3 conv (no bias) -> BatchNorm -> ReLU.

    Args:
        cin: input channels.
        cout: output channels.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UpBlock(nn.Module):
    """Bilinear x2 (align_corners, as nn.UpsamplingBilinear2d) -> [concat skip] -> two conv-BN-ReLU.

    As ``DecoderBlock`` of the vendored ``vit_seg_modeling.py`` L286-318.

    Args:
        cin: channels coming from below.
        cout: output channels.
        skip: channels of the skip concatenated after up-sampling (0: no skip).
    """

    def __init__(self, cin: int, cout: int, skip: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(ConvBNReLU2d(cin + skip, cout), ConvBNReLU2d(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        if skip is not None:
            x = torch.cat((x, skip), dim=1)
        return self.conv(x)


class TransUNet(nn.Module):
    """R50-ViT-B/16 TransUNet for square ``img_size`` slices; logits at input resolution.

    Defaults: MedNeXt's ``nnUNetTrainerV2_TransUNet.initialize_network`` (``nnUNetTrainerV2_TransUnet.py``
    L30-46, "trainer" below) on the R50-ViT-B/16 configuration of the vendored ``vit_seg_configs.py``
    (``get_b16_config`` L3-24, ``get_r50_b16_config`` L42-58, "config" below); docs/sources.md#baseline-configs.
    No pretrained weights: the trainer never loads any.

    Args:
        in_channels: image channels; one channel is repeated to the three the ResNet stem has (trainer:
            ``in_channels=3 if self.num_input_channels==1``).
        n_classes: output channels, background included.
        img_size: side of the square input slice, divisible by 16 and at least 32 (default 512: trainer
            ``img_size``, the MedNeXt paper's 2D patch, §3.1).
        hidden: transformer width (default 768: config ``hidden_size``).
        layers: transformer layers (default 12: config ``transformer.num_layers``).
        heads: attention heads (default 12: config ``transformer.num_heads``).
        mlp_dim: hidden width of each MLP (default 3072: config ``transformer.mlp_dim``).
        dropout: dropout on the embeddings and in the MLPs (default 0.1: config ``transformer.dropout_rate``).
        attn_dropout: attention dropout (default 0.0: config ``transformer.attention_dropout_rate``).
        decoder_channels: output channels of the four up-sampling blocks (default (256, 128, 64, 16):
            config ``decoder_channels``).
        skip_channels: channels of the skips at 1/8, 1/4, 1/2 and full size (default (512, 256, 64, 16):
            config ``skip_channels``).
        n_skip: how many of those skips are used (default 3: config and trainer ``n_skip``).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        img_size: int = 512,
        hidden: int = 768,
        layers: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        decoder_channels: Sequence[int] = (256, 128, 64, 16),
        skip_channels: Sequence[int] = (512, 256, 64, 16),
        n_skip: int = 3,
    ) -> None:
        super().__init__()
        self.img_size = check_patch_size(img_size)
        self.in_channels = in_channels
        stem_channels = 3 if in_channels == 1 else in_channels
        self.grid = self.img_size[0] // DIVISOR
        self.encoder = ResNetEncoder(stem_channels)
        self.patch_embed = nn.Conv2d(1024, hidden, 1)
        self.position_embedding = nn.Parameter(torch.zeros(1, self.grid**2, hidden))
        self.embed_drop = nn.Dropout(dropout)
        self.transformer = nn.ModuleList([ViTLayer(hidden, heads, mlp_dim, dropout, attn_dropout) for _ in range(layers)])
        self.encoder_norm = nn.LayerNorm(hidden, eps=1e-6)
        self.n_skip = n_skip
        self.conv_more = ConvBNReLU2d(hidden, 512)
        ins = [512, *decoder_channels[:-1]]
        skips = [s if i < n_skip else 0 for i, s in enumerate(skip_channels)]
        self.up_blocks = nn.ModuleList([UpBlock(i, o, s) for i, o, s in zip(ins, decoder_channels, skips)])
        self.head = nn.Conv2d(decoder_channels[-1], n_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_shape(NAME, x, self.img_size, 2)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        deep, skips = self.encoder(x)
        t = self.patch_embed(deep).flatten(2).transpose(1, 2)
        t = self.embed_drop(t + self.position_embedding)
        for layer in self.transformer:
            t = layer(t)
        t = self.encoder_norm(t)
        y = self.conv_more(t.transpose(1, 2).reshape(t.shape[0], t.shape[2], self.grid, self.grid))
        for i, block in enumerate(self.up_blocks):
            y = block(y, skips[i] if i < self.n_skip else None)
        return self.head(y)


def build(in_channels: int, n_classes: int, patch_size: Sequence[int] | int = (512, 512)) -> TransUNet:
    """TransUNet for square ``patch_size`` slices (the paper: 512^2), randomly initialised."""
    patch = check_patch_size(patch_size)
    return TransUNet(in_channels, n_classes, img_size=patch[0])
