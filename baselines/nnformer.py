"""nnFormer (Zhou et al., arXiv 2109.03201), the brain-tumour variant MedNeXt trained.

Written from the paper and MedNeXt's configuration of it (MedNeXt ``nnUNetTrainerV2_nnFormer.py``,
class ``nnUNetTrainerV2_nnFormerTumor``, and its vendored ``custom_networks/nnFormer/nnFormer_tumor.py``;
docs/sources.md#baseline-trainers, #baseline-configs): crop 128^3, embedding 96, depths 2,2,2,2, heads
3,6,12,24, patch 4,4,4, windows 4,4,8,4, drop path 0.2, MLP ratio 4.

Structure:
- embedding: two conv stages (3^3 stride-2 conv, GELU, LayerNorm, 3^3 conv, ...) reach 1/4 size, 96 ch;
- encoder: 4 stages of (shifted-)window self-attention blocks with a 3D relative position bias;
  between stages GELU -> LayerNorm -> 3^3 stride-2 conv doubling the channels ("down-sampling by
  convolution", paper §3); every stage output is LayerNorm-ed and kept as a skip;
- decoder: 3 stages, each LayerNorm -> 2^3 transposed conv halving the channels, added to the skip;
  its first block is skip attention (keys/values from the encoder skip, queries from the up-sampled
  features), the second is shifted-window self-attention;
- head: a transposed conv with kernel = stride = the embedding patch, straight to the classes.

The input must equal the crop size: the attention masks and windows are fixed at build time.
A window larger than a stage's smallest side shrinks to it (and does not shift), as in the paper's code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from baselines._common import PatchSizeError, as_patch, check_input_shape
from baselines._layers import DropPath

NAME = "nnFormer"

Size3 = tuple[int, int, int]


def _effective_window(resolution: Size3, window: int) -> tuple[int, int]:
    """(window, shift) actually used at ``resolution``: a window no smaller than the stage shrinks, unshifted."""
    if min(resolution) <= window:
        return min(resolution), 0
    return window, window // 2


def check_patch_size(
    patch_size: Sequence[int] | int,
    embed_patch: Sequence[int] = (4, 4, 4),
    windows: Sequence[int] = (4, 4, 8, 4),
) -> Size3:
    """Crop must be divisible by embed_patch * 2^3 and every stage's side by the window it uses."""
    patch = as_patch(patch_size, 3, NAME)
    n_down = len(windows) - 1
    for p, e in zip(patch, embed_patch):
        if p % (e * 2**n_down):
            raise PatchSizeError(
                NAME, patch,
                f"each dimension must be divisible by embedding patch x 2^{n_down} = "
                f"{tuple(e * 2**n_down for e in embed_patch)}"
            )
    for stage, window in enumerate(windows):
        res = tuple(p // e // 2**stage for p, e in zip(patch, embed_patch))
        w, _ = _effective_window(res, window)  # type: ignore[arg-type]
        if any(r % w for r in res):
            raise PatchSizeError(NAME, patch, f"stage {stage} has size {res}, not divisible by its attention window {w}")
    return patch  # type: ignore[return-value]


def _partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """(B, S, H, W, C) -> (B * windows, w^3, C), windows in raster order."""
    b, s, h, wd, c = x.shape
    x = x.view(b, s // w, w, h // w, w, wd // w, w, c).permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(-1, w * w * w, c)


def _merge(windows: torch.Tensor, w: int, size: Size3) -> torch.Tensor:
    """Inverse of ``_partition``: (B * windows, w^3, C) -> (B, S, H, W, C)."""
    s, h, wd = size
    c = windows.shape[-1]
    x = windows.view(-1, s // w, h // w, wd // w, w, w, w, c).permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(-1, s, h, wd, c)


def _shift_mask(size: Size3, w: int, shift: int) -> torch.Tensor:
    """Additive attention mask (windows, w^3, w^3): -100 between tokens from different shifted regions."""
    label = torch.zeros(1, *size, 1)
    bands = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    region = 0
    for bs in bands:
        for bh in bands:
            for bw in bands:
                label[:, bs, bh, bw, :] = region
                region += 1
    flat = _partition(label, w).squeeze(-1)
    diff = flat.unsqueeze(1) - flat.unsqueeze(2)
    return torch.where(diff != 0, torch.tensor(-100.0), torch.tensor(0.0))


class WindowAttention(nn.Module):
    """Multi-head attention inside a w^3 window with a learned relative position bias per head.

    ``cross=False``: q, k, v from one input. ``cross=True`` (skip attention): k, v projected from the
    encoder skip, the (normalised) up-sampled decoder features used directly as queries.

    Args:
        dim: token channels; must be divisible by ``heads``.
        window: window side w; the bias table holds one entry per 3D offset, (2w - 1)^3 rows (the
            Swin rule; ``nnFormer_tumor.py`` L246-247).
        heads: attention heads.
        cross: skip attention (keys/values from the skip) instead of self-attention; default False.
    """

    def __init__(self, dim: int, window: int, heads: int, cross: bool = False) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{NAME}: channels {dim} not divisible by {heads} heads")
        self.heads = heads
        self.cross = cross
        self.scale = (dim // heads) ** -0.5
        span = 2 * window - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(span**3, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(*[torch.arange(window)] * 3, indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        index = (rel[..., 0] * span + rel[..., 1]) * span + rel[..., 2]
        self.register_buffer("relative_position_index", index, persistent=False)
        if cross:
            self.kv = nn.Linear(dim, 2 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        return t.view(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, query: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        if self.cross:
            if query is None:
                raise ValueError(f"{NAME}: skip attention needs the up-sampled features as queries")
            k, v = self.kv(x).chunk(2, dim=-1)
            q = query
        else:
            q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = self._heads(q) * self.scale, self._heads(k), self._heads(v)
        attn = q @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        attn = attn + bias.view(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            n_win = mask.shape[0]
            attn = attn.view(b // n_win, n_win, self.heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(b, self.heads, n, n)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Mlp(nn.Sequential):
    """Linear -> GELU -> Linear with hidden width ``ratio * dim``.

    Args:
        dim: token channels in and out.
        ratio: hidden width over ``dim`` (default 4.0: ``mlp_ratio`` of the vendored blocks,
            ``nnFormer_tumor.py`` L313).
    """

    def __init__(self, dim: int, ratio: float = 4.0) -> None:
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class TransformerBlock(nn.Module):
    """(Shifted-)window attention block, pre-norm, with an MLP; ``cross`` makes it a skip-attention block.

    Args:
        dim: token channels.
        resolution: the stage's fixed token grid (S, H, W); attention masks are built for it.
        heads: attention heads.
        window: window side, shrunk to the grid's smallest side (then unshifted) where larger.
        shift: roll the grid by half a window (every second block of a stage, as ``BasicLayer`` in
            ``nnFormer_tumor.py`` L477).
        drop_path: stochastic-depth rate of this block's two residual branches.
        cross: skip attention (the first block of a decoder stage); default False.
    """

    def __init__(self, dim: int, resolution: Size3, heads: int, window: int, shift: bool, drop_path: float,
                 cross: bool = False) -> None:
        super().__init__()
        self.resolution = resolution
        self.window, self.shift = _effective_window(resolution, window)
        if not shift:
            self.shift = 0
        self.cross = cross
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, self.window, heads, cross=cross)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)
        mask = _shift_mask(resolution, self.window, self.shift) if self.shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def _windows(self, t: torch.Tensor) -> torch.Tensor:
        b, _, c = t.shape
        t = t.view(b, *self.resolution, c)
        if self.shift:
            t = torch.roll(t, shifts=(-self.shift,) * 3, dims=(1, 2, 3))
        return _partition(t, self.window)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None, x_up: torch.Tensor | None = None) -> torch.Tensor:
        b, length, c = x.shape
        if length != self.resolution[0] * self.resolution[1] * self.resolution[2]:
            raise PatchSizeError(NAME, (length,),
                                 f"expected {self.resolution} = "
                                 f"{self.resolution[0] * self.resolution[1] * self.resolution[2]} tokens",
                                 "token count")
        if self.cross:
            if skip is None or x_up is None:
                raise ValueError(f"{NAME}: a skip-attention block needs the skip and the up-sampled features")
            y = self.attn(self._windows(self.norm1(skip)), self.attn_mask, query=self._windows(self.norm1(x_up)))
        else:
            y = self.attn(self._windows(self.norm1(x)), self.attn_mask)
        y = _merge(y, self.window, self.resolution)
        if self.shift:
            y = torch.roll(y, shifts=(self.shift,) * 3, dims=(1, 2, 3))
        x = x + self.drop_path(y.reshape(b, length, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, S, H, W) -> (B, S*H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def _volume(t: torch.Tensor, size: Size3) -> torch.Tensor:
    """(B, S*H*W, C) -> (B, C, S, H, W)."""
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *size)


class TokenLayerNorm(nn.LayerNorm):
    """LayerNorm over channels of a (B, C, S, H, W) volume (``nn.LayerNorm``'s arguments, channels first)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class ConvEmbedStage(nn.Sequential):
    """3^3 strided conv -> GELU -> LayerNorm -> 3^3 conv [-> GELU -> LayerNorm unless last].

    Args:
        cin: input channels.
        cout: output channels.
        stride: stride of the first conv per axis (half the embedding patch, ``nnFormer_tumor.py`` L673-676).
        last: the second of the two stages, which ends after its second conv.
    """

    def __init__(self, cin: int, cout: int, stride: Sequence[int], last: bool) -> None:
        layers: list[nn.Module] = [
            nn.Conv3d(cin, cout, 3, stride=tuple(stride), padding=1),
            nn.GELU(),
            TokenLayerNorm(cout),
            nn.Conv3d(cout, cout, 3, padding=1),
        ]
        if not last:
            layers += [nn.GELU(), TokenLayerNorm(cout)]
        super().__init__(*layers)


class PatchEmbed(nn.Sequential):
    """Two conv stages, each with stride patch/2, to ``embed_dim`` channels, then LayerNorm.

    Args:
        in_channels: image channels.
        embed_dim: output channels (the first stage has half of them).
        patch: total down-sampling per axis; each stage strides by ``patch // 2``.
    """

    def __init__(self, in_channels: int, embed_dim: int, patch: Sequence[int]) -> None:
        stride = [p // 2 for p in patch]
        super().__init__(
            ConvEmbedStage(in_channels, embed_dim // 2, stride, last=False),
            ConvEmbedStage(embed_dim // 2, embed_dim, stride, last=True),
            TokenLayerNorm(embed_dim),
        )


class DownMerge(nn.Sequential):
    """GELU -> LayerNorm -> 3^3 stride-2 conv doubling the channels (on volumes).

    Args:
        dim: input channels; the output has ``2 * dim`` (``PatchMerging``, ``nnFormer_tumor.py`` L401-410).
    """

    def __init__(self, dim: int) -> None:
        super().__init__(nn.GELU(), TokenLayerNorm(dim), nn.Conv3d(dim, 2 * dim, 3, stride=2, padding=1))


class UpExpand(nn.Sequential):
    """LayerNorm -> 2^3 stride-2 transposed conv halving the channels (on volumes).

    Args:
        dim: input channels; the output has ``dim // 2`` (``Patch_Expanding``, ``nnFormer_tumor.py`` L424-430).
    """

    def __init__(self, dim: int) -> None:
        super().__init__(TokenLayerNorm(dim), nn.ConvTranspose3d(dim, dim // 2, 2, stride=2))


class EncoderStage(nn.Module):
    """``depth`` blocks alternating regular and shifted windows on a fixed grid.

    Args:
        dim: token channels of the stage.
        resolution: the stage's token grid (S, H, W).
        depth: number of blocks.
        heads: attention heads per block.
        window: window side of the stage.
        rates: stochastic-depth rate of each block (``depth`` values).
    """

    def __init__(self, dim: int, resolution: Size3, depth: int, heads: int, window: int, rates: Sequence[float]) -> None:
        super().__init__()
        self.resolution = resolution
        self.blocks = nn.ModuleList(
            [TransformerBlock(dim, resolution, heads, window, shift=i % 2 == 1, drop_path=rates[i]) for i in range(depth)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = _tokens(x)
        for blk in self.blocks:
            t = blk(t)
        return _volume(t, self.resolution)


class DecoderStage(nn.Module):
    """Up-sample, add the skip, one skip-attention block, then shifted-window blocks.

    Args:
        dim: token channels of the stage (the input from below has ``2 * dim``).
        resolution: the stage's token grid, that of the matching encoder stage.
        depth: number of blocks, the first being skip attention.
        heads: attention heads per block.
        window: window side of the stage.
        rates: stochastic-depth rate of each block (``depth`` values).
    """

    def __init__(self, dim: int, resolution: Size3, depth: int, heads: int, window: int, rates: Sequence[float]) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = UpExpand(2 * dim)
        self.blocks = nn.ModuleList(
            [TransformerBlock(dim, resolution, heads, window, shift=False, drop_path=rates[0], cross=True)]
            + [TransformerBlock(dim, resolution, heads, window, shift=True, drop_path=rates[i]) for i in range(1, depth)]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x_up = _tokens(self.up(x))
        s = _tokens(skip)
        t = self.blocks[0](x_up + s, skip=s, x_up=x_up)
        for blk in self.blocks[1:]:
            t = blk(t)
        return _volume(t, self.resolution)


class NnFormer(nn.Module):
    """nnFormer for a fixed crop; returns logits at crop resolution (no deep supervision).

    The defaults are the brain-tumour configuration that MedNeXt trained on every dataset: the
    arguments of MedNeXt's ``nnUNetTrainerV2_nnFormerTumor.initialize_network`` (``nnUNetTrainerV2_nnFormer.py``
    L34-46, called "trainer" below) and the defaults of its vendored ``nnFormer_tumor.py``;
    docs/sources.md#baseline-configs. Deep supervision is off there too.

    Args:
        in_channels: image channels (modalities).
        n_classes: output channels, background included.
        crop_size: the one input size accepted; windows and shift masks are built for it (default
            (128, 128, 128): the trainer's ``crop_size``, the MedNeXt paper's 3D patch, §3.1).
        embed_dim: channels after the patch embedding, doubled at every stage (default 96: trainer
            ``embedding_dim``).
        depths: blocks per encoder stage; decoder stage j has ``depths[j]`` blocks (default (2, 2, 2, 2):
            trainer ``depths``).
        heads: attention heads per encoder stage; decoder stage j uses ``heads[j + 1]`` (default
            (3, 6, 12, 24): trainer ``num_heads``).
        patch: stride of the convolutional patch embedding per axis, undone by the output head
            (default (4, 4, 4): trainer ``patch_size``).
        windows: attention window side per stage (default (4, 4, 8, 4): trainer ``window_size``).
        drop_path_rate: largest stochastic-depth rate, reached linearly over the blocks (default 0.2:
            the vendored encoder's and decoder's default, ``nnFormer_tumor.py`` L719 and L827).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        crop_size: Sequence[int] = (128, 128, 128),
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 2, 2),
        heads: Sequence[int] = (3, 6, 12, 24),
        patch: Sequence[int] = (4, 4, 4),
        windows: Sequence[int] = (4, 4, 8, 4),
        drop_path_rate: float = 0.2,
    ) -> None:
        super().__init__()
        if not len(depths) == len(heads) == len(windows) == 4:
            raise ValueError(f"{NAME}: expected 4 depths, heads and windows, got {depths}, {heads}, {windows}")
        self.crop_size = check_patch_size(crop_size, patch, windows)
        n = len(depths)
        dims = [embed_dim * 2**i for i in range(n)]
        grids: list[Size3] = [tuple(c // p // 2**i for c, p in zip(self.crop_size, patch)) for i in range(n)]  # type: ignore[misc]

        self.patch_embed = PatchEmbed(in_channels, embed_dim, patch)
        enc_rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.encoder = nn.ModuleList()
        for i in range(n):
            rates = enc_rates[sum(depths[:i]) : sum(depths[: i + 1])]
            self.encoder.append(EncoderStage(dims[i], grids[i], depths[i], heads[i], windows[i], rates))
        self.downs = nn.ModuleList([DownMerge(dims[i]) for i in range(n - 1)])
        self.skip_norms = nn.ModuleList([TokenLayerNorm(d) for d in dims])

        # decoder stage j (j = 0 shallowest) works on encoder stage j's grid with that stage's depth and
        # window but the heads of stage j + 1 (paper code: reversed lists without the bottleneck entry);
        # drop-path rates run deep to shallow
        dec_depths = [depths[j] for j in reversed(range(n - 1))]  # deep -> shallow
        dec_rates = torch.linspace(0, drop_path_rate, sum(dec_depths)).tolist()
        self.decoder = nn.ModuleList()
        for j in range(n - 1):
            k = n - 2 - j  # position in the deep-to-shallow lists
            rates = dec_rates[sum(dec_depths[:k]) : sum(dec_depths[: k + 1])]
            self.decoder.append(DecoderStage(dims[j], grids[j], depths[j], heads[j + 1], windows[j], rates))
        self.head = nn.ConvTranspose3d(embed_dim, n_classes, tuple(patch), stride=tuple(patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_shape(NAME, x, self.crop_size, 3)
        y = self.patch_embed(x)
        skips = []
        for i, stage in enumerate(self.encoder):
            y = stage(y)
            skips.append(self.skip_norms[i](y))
            if i < len(self.downs):
                y = self.downs[i](y)
        y = skips[-1]
        for j in reversed(range(len(self.decoder))):
            y = self.decoder[j](y, skips[j])
        return self.head(y)


def build(in_channels: int, n_classes: int, patch_size: Sequence[int] | int = (128, 128, 128)) -> NnFormer:
    """nnFormer (tumour settings) with crop = ``patch_size``; only that input size is accepted."""
    return NnFormer(in_channels, n_classes, crop_size=check_patch_size(patch_size))
