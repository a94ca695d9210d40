"""TransBTS (Wang et al., MICCAI 2021) as MedNeXt trained it: 128^3 input only.

Written from the paper and MedNeXt's configuration of it (MedNeXt ``nnUNetTrainerV2_TransBTS.py`` and its
vendored ``custom_networks/TransBTS/``; docs/sources.md#baseline-trainers, #baseline-configs): img 128,
patch_dim 8, embedding 512, 8 heads, 4 layers, MLP 4096, dropout 0.1 (attention too), learned position
embedding, input channels and classes as parameters, logits out (no softmax).

Structure (paper §2): a 3D CNN encoder (16 base channels, GroupNorm(8) residual blocks, three
stride-2 convs) brings 128^3 to 16^3 x 128; BatchNorm -> ReLU -> 3^3 conv to 512 channels gives
4096 tokens, plus a learned (1, 4096, 512) position embedding; a pre-norm ViT (4 layers) follows.
The decoder takes the last layer's tokens (before the final LayerNorm, as the reference does),
reshapes them to 16^3 x 512, reduces to 128 channels (two conv-BN-ReLU, then a residual pair of them) and
up-samples three times with skip concatenations to 16 channels, then a 1x1 conv to the classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines._common import PatchSizeError, as_patch, check_input_shape

NAME = "TransBTS"
IMG = 128
PATCH_DIM = 8


def check_patch_size(patch_size: Sequence[int] | int) -> tuple[int, int, int]:
    """Only 128^3: the learned position embedding holds exactly (128/8)^3 = 4096 tokens."""
    patch = as_patch(patch_size, 3, NAME)
    if patch != (IMG, IMG, IMG):
        raise PatchSizeError(
            NAME, patch, f"only ({IMG}, {IMG}, {IMG}) works: the learned position embedding has (128/8)^3 = 4096 tokens"
        )
    return patch  # type: ignore[return-value]


class ResBlock(nn.Module):
    """GroupNorm(8) -> ReLU -> 3^3 conv, twice, plus the input.

    Args:
        channels: channels in and out, a multiple of 8 (``EnBlock`` in the vendored ``Unet_skipconnection.py``).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1),
            nn.GroupNorm(8, channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CNNEncoder(nn.Module):
    """3^3 conv + channel dropout 0.2, then 1/2/2/4 residual blocks per level with stride-2 convs between.

    Args:
        in_channels: image channels.
        base: channels of the first level, doubled at each of the three down-samplings (default 16:
            ``base_channels=16`` in ``TransBTS_downsample8x_skipconnection.py`` L75).
        dropout: 3D (channel) dropout after the first conv, in training only (default 0.2:
            ``InitConv`` in ``Unet_skipconnection.py`` L21-30, L75).
    """

    def __init__(self, in_channels: int, base: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        self.init_conv = nn.Conv3d(in_channels, base, 3, padding=1)
        self.dropout = dropout
        self.level1 = ResBlock(base)
        self.down1 = nn.Conv3d(base, 2 * base, 3, stride=2, padding=1)
        self.level2 = nn.Sequential(ResBlock(2 * base), ResBlock(2 * base))
        self.down2 = nn.Conv3d(2 * base, 4 * base, 3, stride=2, padding=1)
        self.level3 = nn.Sequential(ResBlock(4 * base), ResBlock(4 * base))
        self.down3 = nn.Conv3d(4 * base, 8 * base, 3, stride=2, padding=1)
        self.level4 = nn.Sequential(*[ResBlock(8 * base) for _ in range(4)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.dropout3d(self.init_conv(x), self.dropout, training=self.training)
        s1 = self.level1(x)
        s2 = self.level2(self.down1(s1))
        s3 = self.level3(self.down2(s2))
        return s1, s2, s3, self.level4(self.down3(s3))


class SelfAttention(nn.Module):
    """Multi-head self-attention, qkv without bias, dropout on the attention map and the output.

    Args:
        dim: token channels; divisible by ``heads``.
        heads: attention heads.
        dropout: dropout on the attention weights and on the projected output (``SelfAttention`` in the
            vendored ``Transformer.py`` L5-17).
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = self.attn_drop(((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1))
        return self.proj_drop(self.proj((attn @ v).transpose(1, 2).reshape(b, n, c)))


class TransformerLayer(nn.Module):
    """x + Dropout(Attn(LN(x))); then x + MLP(LN(x)) with GELU and dropout inside the MLP.

    Args:
        dim: token channels.
        heads: attention heads.
        mlp_dim: hidden width of the MLP.
        dropout: dropout after attention and inside the MLP (``PreNormDrop``, ``FeedForward`` in ``Transformer.py``).
        attn_dropout: dropout inside the attention.
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class ConvBNReLU(nn.Sequential):
    """3^3 conv -> BatchNorm -> ReLU.

    Args:
        cin: input channels.
        cout: output channels.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv3d(cin, cout, 3, padding=1), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """Adds the input to ``body(x)``.

    Args:
        body: a module whose output has the input's shape.
    """

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpCat(nn.Module):
    """1x1 conv to ``cout`` -> 2^3 transposed conv -> concat [skip, up] -> 1x1 conv, then a residual conv pair.

    Args:
        cin: channels coming from below.
        cout: channels after up-sampling, equal to the skip's (``DeUp_Cat`` and ``DeBlock`` in
            ``TransBTS_downsample8x_skipconnection.py`` L281-316).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.reduce = nn.Conv3d(cin, cout, 1)
        self.up = nn.ConvTranspose3d(cout, cout, 2, stride=2)
        self.fuse = nn.Conv3d(2 * cout, cout, 1)
        self.refine = Residual(nn.Sequential(ConvBNReLU(cout, cout), ConvBNReLU(cout, cout)))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        y = self.fuse(torch.cat((skip, self.up(self.reduce(x))), dim=1))
        return self.refine(y)


class TransBTS(nn.Module):
    """TransBTS at 128^3; logits out.

    ``keep_unused_reference_params`` adds the two modules the reference builds but never uses on
    this path (a linear patch projection of 128*C -> 512 and the encoder's final LayerNorm, whose
    output the decoder ignores) so that the parameter count equals the reference's (32.99M at 4->3).
    They receive no gradient. Set it False for the lean network.

    ``img_size`` other than 128 (position embedding (img/8)^3 tokens) is not the reference network
    and :func:`build` refuses it; it exists only so tests can exercise the wiring on small inputs.

    Defaults are the arguments of MedNeXt's ``nnUNetTrainerV2_TransBTS.initialize_network``
    (``nnUNetTrainerV2_TransBTS.py`` L29-49, "trainer" below); docs/sources.md#baseline-configs.

    Args:
        in_channels: image channels (the original TransBTS fixes 4; MedNeXt's copy makes it a parameter).
        n_classes: output channels, background included (likewise a parameter in MedNeXt's copy).
        embed_dim: transformer width; the decoder's widths are ``embed_dim`` / 4, 8, 16, 32 (default 512:
            trainer ``embedding_dim``).
        heads: attention heads (default 8: trainer ``num_heads``).
        layers: transformer layers (default 4: trainer ``num_layers``).
        mlp_dim: hidden width of each MLP (default 4096: trainer ``hidden_dim``).
        dropout: dropout on the embeddings, after attention and in the MLP (default 0.1: trainer
            ``dropout_rate``).
        attn_dropout: dropout on the attention weights (default 0.1: trainer ``attn_dropout_rate``).
        keep_unused_reference_params: build the two modules above that the forward never uses (default
            True, so the count equals the reference's; baselines/DEVIATIONS.md).
        img_size: input side, divisible by 8 (default 128: trainer ``img_dim``; the vendored
            ``PositionalEncoding.py`` L28 fixes the embedding at 4096 tokens, i.e. 128^3 with patch 8).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        embed_dim: int = 512,
        heads: int = 8,
        layers: int = 4,
        mlp_dim: int = 4096,
        dropout: float = 0.1,
        attn_dropout: float = 0.1,
        keep_unused_reference_params: bool = True,
        img_size: int = IMG,
    ) -> None:
        super().__init__()
        if img_size % PATCH_DIM:
            raise PatchSizeError(NAME, (img_size,) * 3, f"img_size must be divisible by {PATCH_DIM}")
        self.img_size = img_size
        self.grid = img_size // PATCH_DIM
        base = 16
        self.encoder = CNNEncoder(in_channels, base)
        self.pre_embed = nn.Sequential(nn.BatchNorm3d(8 * base), nn.ReLU(inplace=True))
        self.embed = nn.Conv3d(8 * base, embed_dim, 3, padding=1)
        self.position_embedding = nn.Parameter(torch.zeros(1, self.grid**3, embed_dim))
        self.embed_drop = nn.Dropout(dropout)
        self.transformer = nn.ModuleList(
            [TransformerLayer(embed_dim, heads, mlp_dim, dropout, attn_dropout) for _ in range(layers)]
        )
        if keep_unused_reference_params:
            self.unused_linear_encoding = nn.Linear(8 * base * in_channels, embed_dim)
            self.unused_final_norm = nn.LayerNorm(embed_dim)
        mid = embed_dim // 4
        self.reduce = nn.Sequential(
            ConvBNReLU(embed_dim, mid),
            ConvBNReLU(mid, mid),
            Residual(nn.Sequential(ConvBNReLU(mid, mid), ConvBNReLU(mid, mid))),
        )
        self.up3 = UpCat(mid, embed_dim // 8)
        self.up2 = UpCat(embed_dim // 8, embed_dim // 16)
        self.up1 = UpCat(embed_dim // 16, embed_dim // 32)
        self.out = nn.Conv3d(embed_dim // 32, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_shape(NAME, x, (self.img_size,) * 3, 3)
        s1, s2, s3, deep = self.encoder(x)
        t = self.embed(self.pre_embed(deep)).flatten(2).transpose(1, 2)
        t = self.embed_drop(t + self.position_embedding)
        for layer in self.transformer:
            t = layer(t)
        y = t.transpose(1, 2).reshape(t.shape[0], t.shape[2], self.grid, self.grid, self.grid)
        y = self.reduce(y)
        y = self.up1(self.up2(self.up3(y, s3), s2), s1)
        return self.out(y)


def build(in_channels: int, n_classes: int, patch_size: Sequence[int] | int = (128, 128, 128)) -> TransBTS:
    """TransBTS; raises PatchSizeError for anything but 128^3."""
    check_patch_size(patch_size)
    return TransBTS(in_channels, n_classes)
