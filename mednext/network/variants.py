"""The four MedNeXt configurations of Table 1 (left) and the factory that builds them (§2.4).

Every variant uses C=32, residual blocks and residual resampling; M and L train with gradient
checkpointing (§3.1; official ``create_mednext_v1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mednext.network.blocks import SpatialDims
from mednext.network.mednext_v1 import MedNeXt

KERNEL_SIZES: tuple[int, ...] = (3, 5)  # §2.4: "experiment with k in {3, 5}"


@dataclass(frozen=True)
class MedNeXtVariant:
    """One row of Table 1 (left): per-stage expansion ratios R and block counts B."""

    name: str
    exp_r: tuple[int, ...]
    block_counts: tuple[int, ...]
    gradient_checkpointing: bool
    n_channels: int = 32


VARIANTS: dict[str, MedNeXtVariant] = {
    v.name: v
    for v in (
        MedNeXtVariant("S", (2,) * 9, (2,) * 9, False),
        MedNeXtVariant("B", (2, 3, 4, 4, 4, 4, 4, 3, 2), (2,) * 9, False),
        MedNeXtVariant("M", (2, 3, 4, 4, 4, 4, 4, 3, 2), (3, 4, 4, 4, 4, 4, 4, 4, 3), True),
        MedNeXtVariant("L", (3, 4, 8, 8, 8, 8, 8, 4, 3), (3, 4, 8, 8, 8, 8, 8, 4, 3), True),
    )
}


def get_variant(name: str) -> MedNeXtVariant:
    """Look a variant up by its Table 1 name ('S', 'B', 'M', 'L')."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown MedNeXt variant {name!r}; expected one of {sorted(VARIANTS)}") from None


def create_mednext_v1(
    in_channels: int,
    n_classes: int,
    variant: str,
    kernel_size: int = 3,
    deep_supervision: bool = False,
    dim: SpatialDims = "3d",
    residual_resampling: bool = True,
    gradient_checkpointing: bool | None = None,
) -> MedNeXt:
    """Build MedNeXt-``variant`` with kernel ``kernel_size``.

    Args:
        in_channels: input modalities.
        n_classes: output classes including background.
        variant: 'S', 'B', 'M' or 'L' (Table 1, left).
        kernel_size: depthwise kernel, 3 or 5 in the paper.
        deep_supervision: build the 4 deep-supervision heads (the paper trains with them).
        dim: '3d' (paper) or '2d'.
        residual_resampling: False gives the "Standard Up and Downsampling" ablation (Table 1, right).
        gradient_checkpointing: override the variant's default (on for M and L).
    """
    spec = get_variant(variant)
    use_checkpointing = spec.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    return MedNeXt(
        in_channels=in_channels,
        n_channels=spec.n_channels,
        n_classes=n_classes,
        exp_r=spec.exp_r,
        kernel_size=kernel_size,
        deep_supervision=deep_supervision,
        do_res=True,
        do_res_up_down=residual_resampling,
        checkpoint_style="outside_block" if use_checkpointing else None,
        block_counts=spec.block_counts,
        dim=dim,
    )
