"""The paper's own networks as registry entries: the MedNeXt grid (§2.4, Table 1 left) and nnU-Net (Table 2).

:func:`mednext_spec` makes the entry of one MedNeXt variant and kernel (the ablations use it too);
:func:`builtin_networks` lists Table 2's eight MedNeXt configurations and nnU-Net. Training settings
of §3.1: AdamW (lr 1e-3, weight decay 3e-5, eps 1e-4) for every MedNeXt, nnU-Net's default SGD for
nnU-Net; the KiTS19 kernel-5 learning rate is the override in :data:`LR_OVERRIDES`.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from mednext.network_registry import CONFIGURATION_FOR_DIM, Family, NetworkSpec

if TYPE_CHECKING:
    from torch import nn

MEDNEXT_LR = 1e-3
MEDNEXT_WEIGHT_DECAY = 3e-5
#: "1e-8 might cause nans in fp16" (official ``nnUNetTrainerV2_MedNeXt.py``)
MEDNEXT_ADAM_EPS = 1e-4
NNUNET_SGD_LR = 1e-2  # nnUNetTrainer default (momentum 0.99, Nesterov)
MEDNEXT_SIZE_CLASS: dict[str, str] = {"S": "small", "B": "medium", "M": "large", "L": "xlarge"}

#: Per-dataset learning-rate exceptions keyed by (dataset registry key, network tag). §3.1: "The
#: learning rate for all MedNeXt models is [1e-3], except kernel:5 in KiTS19, which uses [...] for
#: stability"; the number is lost in our copy of the text. 1e-4 is the one value the official
#: repository provides for all four kernel-5 variants (``_{S,B,M,L}_kernel5_lr_1e_4``).
LR_OVERRIDES: dict[tuple[str, str], float] = {("kits19", "k5"): 1e-4}


def build_mednext(
    variant: str,
    kernel_size: int,
    residual_resampling: bool,
    in_channels: int,
    n_classes: int,
    patch_size: tuple[int, ...],
) -> nn.Module:
    """MedNeXt-``variant`` for nnU-Net: always built with deep-supervision heads.

    The heads must exist for checkpoints to load at inference (nnU-Net builds with deep supervision
    off there); the trainer switches outputs with ``do_ds``.
    """
    from mednext.network.variants import create_mednext_v1

    dim = f"{len(patch_size)}d"
    if dim not in CONFIGURATION_FOR_DIM:
        raise ValueError(f"MedNeXt needs a 2D or 3D patch, got {patch_size}")
    return create_mednext_v1(
        in_channels,
        n_classes,
        variant,
        kernel_size=kernel_size,
        deep_supervision=True,
        dim=dim,  # type: ignore[arg-type]
        residual_resampling=residual_resampling,
    )


def mednext_spec(
    variant: str,
    kernel_size: int,
    *,
    name: str | None = None,
    residual_resampling: bool = True,
    init_from: str | None = None,
    family: Family = "mednext",
    description: str = "",
) -> NetworkSpec:
    """The entry of MedNeXt-``variant`` with kernel ``kernel_size`` (§2.4), trained with §3.1's AdamW.

    ``residual_resampling=False`` gives the standard up/down-sampling of the Table 1 ablation;
    ``init_from`` names the network whose final checkpoint starts it by UpKern (§2.3).
    """
    return NetworkSpec(
        name=name or f"MedNeXt-{variant}_k{kernel_size}",
        builder=partial(build_mednext, variant, kernel_size, residual_resampling),
        optimizer="adamw",
        lr=MEDNEXT_LR,
        weight_decay=MEDNEXT_WEIGHT_DECAY,
        adam_eps=MEDNEXT_ADAM_EPS,
        deep_supervision=True,
        dim="3d",
        init_from=init_from,
        size_class=MEDNEXT_SIZE_CLASS[variant],
        family=family,
        tags=frozenset({"mednext", f"k{kernel_size}", variant}),
        input_divisor=16,
        description=description or f"MedNeXt-{variant}, kernel {kernel_size}",
    )


def builtin_networks() -> list[NetworkSpec]:
    """The paper's Table 2 networks: 8 MedNeXt configurations and nnU-Net (the ablations: :mod:`mednext.ablations`)."""
    specs = []
    for variant in ("S", "B", "M", "L"):
        specs.append(mednext_spec(variant, 3))
        specs.append(
            mednext_spec(variant, 5, init_from=f"MedNeXt-{variant}_k3",
                         description=f"MedNeXt-{variant}, kernel 5 (UpKern from k3)")
        )
    specs.append(
        NetworkSpec(
            name="nnUNet",
            builder=None,
            optimizer="sgd",
            lr=NNUNET_SGD_LR,
            weight_decay=3e-5,
            deep_supervision=True,
            size_class="medium",
            family="nnunet",
            description="nnU-Net default architecture from the plans (SGD, poly schedule)",
        )
    )
    return specs
