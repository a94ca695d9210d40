"""The paper's six baselines as :class:`mednext.networks.NetworkSpec` entries (the project's one registry).

Training facts (MedNeXt's ``nnUNet_variants/baselines/nnUNetTrainerV2_*.py``;
docs/sources.md#baseline-trainers): every baseline trainer subclasses nnU-Net's no-deep-supervision
trainer, keeps weight decay 3e-5 and the inherited poly schedule, and uses AdamW(eps=1e-4) with the
learning rates below, except TransBTS, whose trainer only sets lr 1e-4 and so inherits SGD (momentum
0.99, Nesterov). The MedNeXt paper (§3.1) says all non-nnU-Net networks use AdamW; we follow the
released code for TransBTS.
Reference parameter counts: each reference constructor built with those trainers' arguments
(docs/sources.md#baseline-params).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from mednext.network_registry import NetworkSpec, ReferenceCount

if TYPE_CHECKING:
    from torch import nn

WEIGHT_DECAY = 3e-5
ADAMW_EPS = 1e-4  # every AdamW baseline trainer ("1e-8 might cause nans in fp16")
_P128 = (128, 128, 128)
_SOURCE = "reference constructor at MedNeXt's trainer settings (docs/sources.md#baseline-params)"


def _call(module: str, function: str, *args: object) -> object:
    """``baselines.<module>.<function>(*args)``, importing the module only now: most baselines import
    MONAI (seconds), which a run that does not build them (every DAG parse) should not pay."""
    return getattr(importlib.import_module(f"baselines.{module}"), function)(*args)


def _baseline(name: str, module: str, *, lr: float, rule: str, smallest: tuple[int, ...], reference: ReferenceCount,
              divisor: int, optimizer: str = "adamw", dim: str = "3d", paper: tuple[int, ...] = _P128,
              size_class: str = "medium") -> NetworkSpec:
    """One Table 2 baseline (``baselines/<module>.py``): no deep supervision, weight decay 3e-5, AdamW eps
    1e-4 unless SGD; its module is imported when the network is built or its patch checked."""
    return NetworkSpec(
        name=name,
        builder=partial(_call, module, "build"),
        optimizer=optimizer,  # type: ignore[arg-type]
        lr=lr,
        weight_decay=WEIGHT_DECAY,
        adam_eps=ADAMW_EPS if optimizer == "adamw" else 1e-8,
        deep_supervision=False,
        dim=dim,  # type: ignore[arg-type]
        size_class=size_class,
        family="baseline",
        tags=frozenset({"baseline", name}),
        input_divisor=divisor,
        description=f"{name} baseline (Table 2); patch rule: {rule}",
        check_patch_size=partial(_call, module, "check_patch_size"),
        patch_rule=rule,
        paper_patch_size=paper,
        smallest_patch_size=smallest,
        reference=reference,
    )


#: Table 2's baselines, in its order.
BASELINES: dict[str, NetworkSpec] = {
    spec.name: spec
    for spec in (
        _baseline("UNETR", "unetr", lr=1e-4, divisor=16, smallest=(16, 16, 16),
                  rule="input must equal the built img_size; each dimension divisible by 16",
                  reference=ReferenceCount(93_030_000, 1, 14, _P128, _SOURCE)),
        _baseline("TransUNet", "transunet", lr=1e-4, divisor=16, dim="2d", paper=(512, 512), smallest=(32, 32),
                  rule="2D, H = W = img_size, divisible by 16, at least 32",
                  reference=ReferenceCount(105_910_000, 1, 14, (512, 512), _SOURCE)),
        _baseline("TransBTS", "transbts", lr=1e-4, optimizer="sgd", divisor=8, size_class="large", smallest=_P128,
                  rule="only 128x128x128",
                  reference=ReferenceCount(32_990_000, 4, 3, _P128, _SOURCE)),
        _baseline("nnFormer", "nnformer", lr=5e-5, divisor=32, smallest=(32, 32, 32),
                  rule="input must equal the crop size; each dimension divisible by 32 and each stage by its window",
                  reference=ReferenceCount(37_660_000, 1, 14, _P128, _SOURCE)),
        _baseline("SwinUNETR", "swin_unetr", lr=1e-4, divisor=32, size_class="large", smallest=(32, 32, 64),
                  rule="each dimension divisible by 32, not all equal to 32",
                  reference=ReferenceCount(62_190_000, 1, 14, _P128, _SOURCE)),
        _baseline("3D-UX-Net", "uxnet3d", lr=5e-4, divisor=16, size_class="large", smallest=(16, 16, 32),
                  rule="each dimension divisible by 16, not all equal to 16",
                  reference=ReferenceCount(53_010_000, 1, 14, _P128, _SOURCE)),
    )
}


def names() -> list[str]:
    """The paper's baseline names, in the order of its Table 2."""
    return list(BASELINES)


def get(name: str) -> NetworkSpec:
    """Spec for ``name`` (exact paper spelling), or KeyError listing the known names."""
    try:
        return BASELINES[name]
    except KeyError:
        raise KeyError(f"unknown baseline {name!r} (baselines/registry.py); known: {', '.join(BASELINES)}") from None


def build(name: str, in_channels: int, n_classes: int, patch_size: Sequence[int]) -> nn.Module:
    """Build baseline ``name`` for ``patch_size``; PatchSizeError names the rule a bad patch breaks."""
    return get(name).build(in_channels, n_classes, patch_size)
