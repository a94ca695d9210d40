"""The network registry's mechanism: what a network entry is, and a registry that checks and looks entries up.

timm-style: a network is a :class:`NetworkSpec` registered under its name. An entry states only what
differs from the defaults: how to build the model, optimiser and learning rate, deep supervision,
nnU-Net configuration, the network it starts from (UpKern, §2.3) and a size class for cluster
resources. The entries themselves live elsewhere (:mod:`mednext.network_specs`, :mod:`mednext.ablations`,
:mod:`baselines.registry`); :mod:`mednext.networks` assembles them into the project's one registry.
Nothing here imports torch: the workflow resolves names at DAG parse without it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from torch import nn

#: ``builder(in_channels, n_classes, patch_size) -> nn.Module``; ``len(patch_size)`` is 2 or 3.
NetworkBuilder = Callable[[int, int, tuple[int, ...]], "nn.Module"]
#: ``check(patch_size) -> patch`` as a tuple, or raise ValueError naming the rule a patch breaks.
PatchCheck = Callable[[Sequence[int]], tuple[int, ...]]
OptimizerName = Literal["adamw", "sgd"]
Dim = Literal["3d", "2d"]
Family = Literal["mednext", "ablation", "nnunet", "baseline"]

OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")
#: Cluster resource classes, smallest first (mapped to GPU memory/runtime by the workflow).
SIZE_CLASSES: tuple[str, ...] = ("small", "medium", "large", "xlarge")
FAMILIES: tuple[str, ...] = ("mednext", "ablation", "nnunet", "baseline")
#: nnU-Net configuration trained for each dimensionality (plans from :mod:`mednext.nnunet.planning`).
CONFIGURATION_FOR_DIM: dict[str, str] = {"3d": "3d_fullres", "2d": "2d"}
TRAINER_PREFIX = "nnUNetTrainer_"
#: AdamW weight decay of every MedNeXt and baseline trainer (official code); a spec's default.
DEFAULT_WEIGHT_DECAY = 3e-5


@dataclass(frozen=True)
class ReferenceCount:
    """Parameter count of a network's reference implementation at the stated settings."""

    params: int
    in_channels: int
    n_classes: int
    patch_size: tuple[int, ...]
    source: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    """One trainable network.

    Attributes:
        name: registry name, e.g. ``"MedNeXt-B_k5"``; also the row label of the tables.
        builder: ``(in_channels, n_classes, patch_size) -> nn.Module``; None trains nnU-Net's own
            architecture from the plans.
        optimizer: ``"adamw"`` (AdamW with ``adam_eps``) or ``"sgd"`` (nnU-Net's SGD, momentum
            0.99, Nesterov); both with nnU-Net's poly schedule.
        lr: initial learning rate (before per-dataset overrides, :func:`mednext.networks.lr_for`).
        weight_decay: optimiser weight decay.
        adam_eps: AdamW epsilon.
        deep_supervision: a network with a ``do_ds`` switch returning 5 outputs at scales
            ``1/2**i`` (MedNeXt); nnU-Net's own architecture uses nnU-Net's deep supervision.
        dim: ``"3d"`` or ``"2d"``; selects the nnU-Net configuration.
        init_from: network whose final checkpoint (same dataset, plans and fold) initialises this
            one through UpKern (§2.3); None trains from scratch.
        size_class: one of :data:`SIZE_CLASSES`, for cluster resources.
        family: ``"mednext"``, ``"ablation"``, ``"nnunet"`` or ``"baseline"``.
        tags: labels that learning-rate overrides match (e.g. ``"k5"``).
        input_divisor: every patch axis must be divisible by this.
        description: one line for tables and logs.
        check_patch_size: the network's own patch rule (raises naming the rule), or None when
            :attr:`input_divisor` says it all; :meth:`build` calls it first.
        patch_rule: the rule of ``check_patch_size`` in words.
        paper_patch_size: patch of the paper's runs (§3.1: 128³, 512² in 2D), if fixed per network.
        smallest_patch_size: smallest legal patch (fast tests, CPU demos).
        reference: parameter count of the reference implementation, if one is recorded.
    """

    name: str
    builder: NetworkBuilder | None = None
    optimizer: OptimizerName = "adamw"
    lr: float = 1e-4
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    adam_eps: float = 1e-8
    deep_supervision: bool = False
    dim: Dim = "3d"
    init_from: str | None = None
    size_class: str = "medium"
    family: Family = "baseline"
    tags: frozenset[str] = field(default_factory=frozenset)
    input_divisor: int = 1
    description: str = ""
    check_patch_size: PatchCheck | None = None
    patch_rule: str = ""
    paper_patch_size: tuple[int, ...] | None = None
    smallest_patch_size: tuple[int, ...] | None = None
    reference: ReferenceCount | None = None

    def build(self, in_channels: int, n_classes: int, patch_size: Sequence[int]) -> nn.Module:
        """The network for ``patch_size``, after :attr:`check_patch_size` (if any) accepted it."""
        if self.builder is None:
            raise ValueError(f"network {self.name!r} is built by nnU-Net from the plans, not by a builder")
        patch = tuple(int(p) for p in patch_size)
        if self.check_patch_size is not None:
            patch = self.check_patch_size(patch)
        return self.builder(in_channels, n_classes, patch)

    @property
    def trainer_name(self) -> str:
        """nnU-Net trainer class name, e.g. ``nnUNetTrainer_MedNeXt_B_k5``."""
        return TRAINER_PREFIX + re.sub(r"\W", "_", self.name)

    @property
    def configuration(self) -> str:
        """nnU-Net configuration name trained for this network."""
        return CONFIGURATION_FOR_DIM[self.dim]

    def validate(self) -> None:
        """Raise ValueError naming the offending field if the entry is malformed."""
        problems = []
        if not self.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", self.name):
            problems.append(f"name {self.name!r} must be letters, digits, '_', '-', '.'")
        if self.builder is not None and not callable(self.builder):
            problems.append(f"builder must be callable or None, got {type(self.builder).__name__}")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer {self.optimizer!r} not in {OPTIMIZERS}")
        if not self.lr > 0 or not self.weight_decay >= 0 or not self.adam_eps > 0:
            problems.append(f"lr/weight_decay/adam_eps must be >0/>=0/>0, got {self.lr}/{self.weight_decay}/{self.adam_eps}")
        if self.dim not in CONFIGURATION_FOR_DIM:
            problems.append(f"dim {self.dim!r} not in {tuple(CONFIGURATION_FOR_DIM)}")
        if self.size_class not in SIZE_CLASSES:
            problems.append(f"size_class {self.size_class!r} not in {SIZE_CLASSES}")
        if self.family not in FAMILIES:
            problems.append(f"family {self.family!r} not in {FAMILIES}")
        if self.init_from == self.name:
            problems.append("init_from names the network itself")
        if self.input_divisor < 1:
            problems.append(f"input_divisor must be >= 1, got {self.input_divisor}")
        if self.check_patch_size is not None and not callable(self.check_patch_size):
            problems.append("check_patch_size must be callable or None")
        n_axes = int(self.dim[0]) if self.dim in CONFIGURATION_FOR_DIM else None
        for label, patch in (("paper_patch_size", self.paper_patch_size), ("smallest_patch_size", self.smallest_patch_size)):
            if patch is None:
                continue
            if len(patch) != n_axes:
                problems.append(f"{label} {patch} does not have {n_axes} axes (dim {self.dim!r})")
            elif self.input_divisor >= 1 and any(p % self.input_divisor for p in patch):
                problems.append(f"{label} {patch} is not divisible by input_divisor {self.input_divisor}")
        if problems:
            raise ValueError(f"invalid network spec {self.name!r}: " + "; ".join(problems))


class NetworkRegistry:
    """Name -> :class:`NetworkSpec`; checks each entry and keeps names and trainer classes unique.

    The mechanism only: :mod:`mednext.networks` holds the project's one instance and fills it with
    the paper's entries.
    """

    def __init__(self) -> None:
        self.specs: dict[str, NetworkSpec] = {}

    def add(self, spec: NetworkSpec, overwrite: bool = False) -> NetworkSpec:
        """Register ``spec``; an identical spec again is a no-op, a different one under a taken name a
        ValueError unless ``overwrite``, as is a second name for the same trainer class."""
        spec.validate()
        existing = self.specs.get(spec.name)
        if existing is not None and existing != spec and not overwrite:
            raise ValueError(f"network {spec.name!r} is already registered with a different spec; "
                             "pass overwrite=True to replace it")
        clash = next((s for s in self.specs.values() if s.trainer_name == spec.trainer_name and s.name != spec.name), None)
        if clash is not None:
            raise ValueError(f"networks {spec.name!r} and {clash.name!r} map to the same trainer class {spec.trainer_name}")
        self.specs[spec.name] = spec
        return spec

    def get(self, name: str) -> NetworkSpec:
        """The spec registered as ``name``; KeyError lists the known names, or names a missing UpKern parent."""
        try:
            spec = self.specs[name]
        except KeyError:
            raise KeyError(f"unknown network {name!r}; registered: {', '.join(sorted(self.specs))}") from None
        if spec.init_from is not None and spec.init_from not in self.specs:
            raise KeyError(f"network {name!r} starts from {spec.init_from!r}, which is not registered")
        return spec

    def for_trainer(self, trainer_name: str) -> NetworkSpec:
        """The spec whose nnU-Net trainer class is ``trainer_name``; KeyError if none."""
        for spec in self.specs.values():
            if spec.trainer_name == trainer_name:
                return spec
        raise KeyError(f"no registered network has trainer class {trainer_name!r}")

    def names(self, families: Iterable[str] | None = None) -> list[str]:
        """Registered names in registration order, optionally only the given families."""
        wanted = None if families is None else set(families)
        return [n for n, s in self.specs.items() if wanted is None or s.family in wanted]
