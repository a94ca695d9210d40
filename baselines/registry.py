"""Registry of the paper's six baselines: builders, patch rules and the MedNeXt runs' training settings.

Training facts (shared/reference/mednext_official.md §5, baselines_metrics_datasets.md §A): every
baseline trainer subclasses nnU-Net's no-deep-supervision trainer, keeps weight decay 3e-5 and the
inherited poly schedule, and uses AdamW(eps=1e-4) with the learning rates below, except TransBTS,
whose trainer only sets lr 1e-4 and so inherits SGD (momentum 0.99, Nesterov). The MedNeXt paper
(§3) says all non-nnU-Net networks use AdamW; we follow the released code for TransBTS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from baselines import nnformer, swin_unetr, transbts, transunet, unetr, uxnet3d

OptimizerName = Literal["AdamW", "SGD"]
WEIGHT_DECAY = 3e-5


@dataclass(frozen=True)
class ReferenceCount:
    """Parameter count of the reference implementation at stated settings (facts §A)."""

    params: int
    in_channels: int
    n_classes: int
    patch_size: tuple[int, ...]


@dataclass(frozen=True)
class BaselineSpec:
    """One baseline: how to build it, which patches it takes, and how MedNeXt trained it."""

    name: str
    builder: Callable[[int, int, Sequence[int]], nn.Module]
    check_patch_size: Callable[[Sequence[int]], tuple[int, ...]]
    spatial_dims: Literal[2, 3]
    initial_lr: float
    optimizer: OptimizerName
    paper_patch_size: tuple[int, ...]
    smallest_patch_size: tuple[int, ...]
    patch_rule: str
    reference: ReferenceCount
    optimizer_kwargs: dict[str, object] = field(default_factory=dict)
    input_divisor: int = 16
    size_class: str = "medium"
    deep_supervision: bool = False
    nnunet_configuration: str = "3d_fullres"

    def make_optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser of MedNeXt's trainer for this baseline (weight decay 3e-5)."""
        if self.optimizer == "AdamW":
            return torch.optim.AdamW(params, lr=self.initial_lr, weight_decay=WEIGHT_DECAY, **self.optimizer_kwargs)  # type: ignore[arg-type]
        return torch.optim.SGD(params, lr=self.initial_lr, weight_decay=WEIGHT_DECAY, **self.optimizer_kwargs)  # type: ignore[arg-type]


_ADAMW = {"eps": 1e-4}
_SGD = {"momentum": 0.99, "nesterov": True}
_P128 = (128, 128, 128)

BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec(
            name=unetr.NAME,
            input_divisor=16,
            builder=unetr.build,
            check_patch_size=unetr.check_patch_size,
            spatial_dims=3,
            initial_lr=1e-4,
            optimizer="AdamW",
            optimizer_kwargs=_ADAMW,
            paper_patch_size=_P128,
            smallest_patch_size=(16, 16, 16),
            patch_rule="input must equal the built img_size; each dimension divisible by 16",
            reference=ReferenceCount(93_030_000, 1, 14, _P128),
        ),
        BaselineSpec(
            name=transunet.NAME,
            input_divisor=16,
            builder=transunet.build,
            check_patch_size=transunet.check_patch_size,
            spatial_dims=2,
            initial_lr=1e-4,
            optimizer="AdamW",
            optimizer_kwargs=_ADAMW,
            paper_patch_size=(512, 512),
            smallest_patch_size=(32, 32),
            patch_rule="2D, H = W = img_size, divisible by 16, at least 32",
            reference=ReferenceCount(105_910_000, 1, 14, (512, 512)),
            nnunet_configuration="2d",
        ),
        BaselineSpec(
            name=transbts.NAME,
            size_class="large",
            input_divisor=8,
            builder=transbts.build,
            check_patch_size=transbts.check_patch_size,
            spatial_dims=3,
            initial_lr=1e-4,
            optimizer="SGD",
            optimizer_kwargs=_SGD,
            paper_patch_size=_P128,
            smallest_patch_size=_P128,
            patch_rule="only 128x128x128",
            reference=ReferenceCount(32_990_000, 4, 3, _P128),
        ),
        BaselineSpec(
            name=nnformer.NAME,
            input_divisor=32,
            builder=nnformer.build,
            check_patch_size=nnformer.check_patch_size,
            spatial_dims=3,
            initial_lr=5e-5,
            optimizer="AdamW",
            optimizer_kwargs=_ADAMW,
            paper_patch_size=_P128,
            smallest_patch_size=(32, 32, 32),
            patch_rule="input must equal the crop size; each dimension divisible by 32 and each stage by its window",
            reference=ReferenceCount(37_660_000, 1, 14, _P128),
        ),
        BaselineSpec(
            name=swin_unetr.NAME,
            size_class="large",
            input_divisor=32,
            builder=swin_unetr.build,
            check_patch_size=swin_unetr.check_patch_size,
            spatial_dims=3,
            initial_lr=1e-4,
            optimizer="AdamW",
            optimizer_kwargs=_ADAMW,
            paper_patch_size=_P128,
            smallest_patch_size=(32, 32, 64),
            patch_rule="each dimension divisible by 32, not all equal to 32",
            reference=ReferenceCount(62_190_000, 1, 14, _P128),
        ),
        BaselineSpec(
            name=uxnet3d.NAME,
            size_class="large",
            input_divisor=16,
            builder=uxnet3d.build,
            check_patch_size=uxnet3d.check_patch_size,
            spatial_dims=3,
            initial_lr=5e-4,
            optimizer="AdamW",
            optimizer_kwargs=_ADAMW,
            paper_patch_size=_P128,
            smallest_patch_size=(16, 16, 32),
            patch_rule="each dimension divisible by 16, not all equal to 16",
            reference=ReferenceCount(53_010_000, 1, 14, _P128),
        ),
    )
}


def names() -> list[str]:
    """The paper's baseline names, in the order of its Table 2."""
    return list(BASELINES)


def get(name: str) -> BaselineSpec:
    """Spec for ``name`` (exact paper spelling), or KeyError listing the known names."""
    try:
        return BASELINES[name]
    except KeyError:
        raise KeyError(f"unknown baseline {name!r} (baselines/registry.py); known: {', '.join(BASELINES)}") from None


def build(name: str, in_channels: int, n_classes: int, patch_size: Sequence[int]) -> nn.Module:
    """Build baseline ``name`` for ``patch_size``; PatchSizeError names the rule a bad patch breaks."""
    spec = get(name)
    spec.check_patch_size(patch_size)
    return spec.builder(in_channels, n_classes, patch_size)


def register_networks() -> None:
    """Add the six baselines to the project's network registry (``mednext.networks`` plugin hook).

    Each becomes a no-deep-supervision nnU-Net trainer ``nnUNetTrainer_<name>`` with the optimiser
    and learning rate above; TransUNet trains nnU-Net's 2D configuration. Idempotent.
    """
    from mednext.networks import NetworkSpec, register_network

    for spec in BASELINES.values():
        register_network(
            NetworkSpec(
                name=spec.name,
                builder=spec.builder,
                optimizer="adamw" if spec.optimizer == "AdamW" else "sgd",
                lr=spec.initial_lr,
                weight_decay=WEIGHT_DECAY,
                adam_eps=float(spec.optimizer_kwargs.get("eps", 1e-8)),  # type: ignore[arg-type]
                deep_supervision=False,
                dim="2d" if spec.spatial_dims == 2 else "3d",
                size_class=spec.size_class,
                family="baseline",
                tags=frozenset({"baseline", spec.name}),
                input_divisor=spec.input_divisor,
                description=f"{spec.name} baseline (Table 2); patch rule: {spec.patch_rule}",
            )
        )
