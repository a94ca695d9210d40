"""The MedNeXt v1 encoder-decoder (paper §2.1-2.4, Fig. 1a).

Module names, creation order and parameter shapes equal the official v1 release
(``nnunet_mednext/network_architecture/mednextv1``), so its checkpoints load with ``strict=True``
and give the same forward (docs/sources.md#mednext-layout).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mednext.network.blocks import MedNeXtBlock, MedNeXtDownBlock, MedNeXtUpBlock, OutBlock, SpatialDims

N_STAGES = 9  # 4 encoder stages, bottleneck, 4 decoder stages (Fig. 1a)
N_LEVELS = 4  # number of 2x down-samplings


def _broadcast(value: int | Sequence[int], name: str) -> list[int]:
    """Return ``value`` as a list of 9 per-stage ints (an int is broadcast, as the official code)."""
    values = [int(value)] * N_STAGES if isinstance(value, int) else [int(v) for v in value]
    if len(values) != N_STAGES:
        raise ValueError(f"{name} needs {N_STAGES} per-stage values (4 encoder, bottleneck, 4 decoder), got {values}")
    return values


class MedNeXt(nn.Module):
    """MedNeXt v1 (Roy et al., MICCAI 2023).

    Stage ``i`` of the encoder has ``n_channels * 2**i`` channels; the bottleneck ``16 * n_channels``.
    Skips are merged by addition. With deep supervision the forward returns
    ``[full, 1/2, 1/4, 1/8, 1/16]``-resolution logits whenever ``do_ds`` is set (train or eval mode),
    otherwise the full-resolution logits.

    Args:
        in_channels: input modalities (1 for CT, 4 for BraTS).
        n_channels: width C of the first stage (32 in every paper variant, §2.4).
        n_classes: output classes including background.
        exp_r: expansion ratio R, one int or 9 per-stage values (Table 1). Down-block ``i`` uses
            the ratio of encoder stage ``i+1``, up-block ``i`` that of its decoder stage.
        kernel_size: depthwise kernel k of every block (3 or 5, §2.3); overrides the two below.
        enc_kernel_size: encoder kernel when ``kernel_size`` is None.
        dec_kernel_size: bottleneck and decoder kernel when ``kernel_size`` is None.
        deep_supervision: build the 4 extra heads (``out_1``-``out_4``) and return 5 outputs.
        do_res: residual connection inside each MedNeXt block.
        do_res_up_down: residual 1x1 (transposed) conv in the resampling blocks (§2.2); False is
            the "Standard Up and Downsampling" ablation of Table 1 (right).
        checkpoint_style: None, or 'outside_block' to run every block, resampler and head under
            gradient checkpointing (used for M and L, §3.1).
        block_counts: 9 per-stage block counts B (Table 1).
        dim: '3d' or '2d'.
    """

    def __init__(
        self,
        in_channels: int,
        n_channels: int,
        n_classes: int,
        exp_r: int | Sequence[int] = 4,
        kernel_size: int | None = 7,
        enc_kernel_size: int | None = None,
        dec_kernel_size: int | None = None,
        deep_supervision: bool = False,
        do_res: bool = False,
        do_res_up_down: bool = False,
        checkpoint_style: Literal["outside_block"] | None = None,
        block_counts: Sequence[int] = (2,) * N_STAGES,
        dim: SpatialDims = "3d",
    ) -> None:
        super().__init__()
        if checkpoint_style not in (None, "outside_block"):
            raise ValueError(f"checkpoint_style must be None or 'outside_block', got {checkpoint_style!r}")
        if kernel_size is not None:
            enc_kernel_size = dec_kernel_size = kernel_size
        if enc_kernel_size is None or dec_kernel_size is None:
            raise ValueError("give kernel_size, or both enc_kernel_size and dec_kernel_size")
        exp = _broadcast(exp_r, "exp_r")
        blocks = _broadcast(block_counts, "block_counts")
        self.do_ds = deep_supervision
        self.outside_block_checkpointing = checkpoint_style == "outside_block"
        self.dim = dim
        self.block_counts = blocks
        widths = [n_channels * 2**i for i in range(N_LEVELS + 1)]

        def stage(width: int, ratio: int, count: int, kernel: int) -> nn.Sequential:
            return nn.Sequential(
                *(MedNeXtBlock(width, width, ratio, kernel, do_res=do_res, dim=dim) for _ in range(count))
            )

        conv = nn.Conv2d if dim == "2d" else nn.Conv3d
        self.stem = conv(in_channels, n_channels, kernel_size=1)
        for i in range(N_LEVELS):
            setattr(self, f"enc_block_{i}", stage(widths[i], exp[i], blocks[i], enc_kernel_size))
            setattr(
                self,
                f"down_{i}",
                MedNeXtDownBlock(widths[i], widths[i + 1], exp[i + 1], enc_kernel_size, do_res_up_down, dim),
            )
        self.bottleneck = stage(widths[N_LEVELS], exp[N_LEVELS], blocks[N_LEVELS], dec_kernel_size)
        for i in reversed(range(N_LEVELS)):
            stage_index = N_STAGES - 1 - i  # decoder stage 5..8 for level 3..0
            setattr(
                self,
                f"up_{i}",
                MedNeXtUpBlock(
                    widths[i + 1], widths[i], exp[stage_index], dec_kernel_size, do_res_up_down, dim
                ),
            )
            setattr(self, f"dec_block_{i}", stage(widths[i], exp[stage_index], blocks[stage_index], dec_kernel_size))
        self.out_0 = OutBlock(n_channels, n_classes, dim)
        # Kept for state-dict compatibility with the official release (it fed its reentrant checkpointing).
        self.dummy_tensor = nn.Parameter(torch.tensor([1.0]), requires_grad=True)
        if deep_supervision:
            for i in range(1, N_LEVELS + 1):
                setattr(self, f"out_{i}", OutBlock(widths[i], n_classes, dim))

    def _run(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.outside_block_checkpointing and torch.is_grad_enabled():
            return checkpoint(module, x, use_reentrant=False)
        return module(x)

    def _run_stage(self, stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        for block in stage:
            x = self._run(block, x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        x = self.stem(x)
        skips = []
        for i in range(N_LEVELS):
            skip = self._run_stage(getattr(self, f"enc_block_{i}"), x)
            skips.append(skip)
            x = self._run(getattr(self, f"down_{i}"), skip)
        x = self._run_stage(self.bottleneck, x)
        deep_outputs: list[torch.Tensor] = []
        if self.do_ds:
            deep_outputs.append(self._run(self.out_4, x))
        for i in reversed(range(N_LEVELS)):
            x = skips.pop() + self._run(getattr(self, f"up_{i}"), x)
            x = self._run_stage(getattr(self, f"dec_block_{i}"), x)
            if self.do_ds and i > 0:
                deep_outputs.append(self._run(getattr(self, f"out_{i}"), x))
        x = self._run(self.out_0, x)
        if self.do_ds:
            return [x, *reversed(deep_outputs)]
        return x
