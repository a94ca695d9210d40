"""The one registry of networks: every trainer, Snakemake job and table row resolves a name here.

timm-style: a network is a :class:`NetworkSpec` registered under its name. An entry states only what
differs from the defaults: how to build the model, optimiser and learning rate, deep supervision,
nnU-Net configuration, the network it starts from (UpKern, §2.3) and a size class for cluster
resources. The Table 2 grid (§3.1) is built in; the Table 1 ablations (:mod:`mednext.ablations`) and
other packages add entries through :func:`register_network`, from a plugin module listed in
:data:`NETWORK_PLUGINS` (or the ``MEDNEXT_NETWORK_PLUGINS`` environment variable) that defines
``register_networks()``. Adding a network is one such call.

Training settings of §3.1: AdamW (lr 1e-3, weight decay 3e-5, eps 1e-4) for every MedNeXt,
nnU-Net's default SGD for nnU-Net; the KiTS19 kernel-5 learning rate is the override in
:data:`LR_OVERRIDES`.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Literal

from torch import nn

log = logging.getLogger(__name__)

#: ``builder(in_channels, n_classes, patch_size) -> nn.Module``; ``len(patch_size)`` is 2 or 3.
NetworkBuilder = Callable[[int, int, tuple[int, ...]], nn.Module]
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

#: Modules that add networks through ``register_networks()``: the paper's ablations (part of this
#: package) and the optional baselines plugin; a missing module is skipped.
NETWORK_PLUGINS: tuple[str, ...] = ("mednext.ablations", "baselines.registry")
#: plugins imported only when a name is not found without them (or for a full listing): the
#: baselines import MONAI, ~4 s of every training's and evaluation's start-up that MedNeXt and
#: nnU-Net runs do not need.
LAZY_PLUGINS: tuple[str, ...] = ("baselines.registry",)
ENV_PLUGINS = "MEDNEXT_NETWORK_PLUGINS"  # extra plugin modules, comma separated
ENV_LR_OVERRIDES = "MEDNEXT_LR_OVERRIDES"  # JSON {"<dataset key>/<tag>": lr}, replaces LR_OVERRIDES

#: Per-dataset learning-rate exceptions keyed by (dataset key, network tag). §3.1: "The learning
#: rate for all MedNeXt models is [1e-3], except kernel:5 in KiTS19, which uses [...] for
#: stability"; the number is lost in our copy of the text. 1e-4 is the one value the official
#: repository provides for all four kernel-5 variants (``_{S,B,M,L}_kernel5_lr_1e_4``).
LR_OVERRIDES: dict[tuple[str, str], float] = {("kits19", "k5"): 1e-4}

MEDNEXT_LR = 1e-3
MEDNEXT_WEIGHT_DECAY = 3e-5
MEDNEXT_ADAM_EPS = 1e-4
NNUNET_SGD_LR = 1e-2  # nnUNetTrainer default (momentum 0.99, Nesterov)
MEDNEXT_SIZE_CLASS: dict[str, str] = {"S": "small", "B": "medium", "M": "large", "L": "xlarge"}


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
        lr: initial learning rate (before :data:`LR_OVERRIDES`).
        weight_decay: optimiser weight decay.
        adam_eps: AdamW epsilon.
        deep_supervision: a network with a ``do_ds`` switch returning 5 outputs at scales
            ``1/2**i`` (MedNeXt); nnU-Net's own architecture uses nnU-Net's deep supervision.
        dim: ``"3d"`` or ``"2d"``; selects the nnU-Net configuration.
        init_from: network whose final checkpoint (same dataset, plans and fold) initialises this
            one through UpKern (§2.3); None trains from scratch.
        size_class: one of :data:`SIZE_CLASSES`, for cluster resources.
        family: ``"mednext"``, ``"ablation"``, ``"nnunet"`` or ``"baseline"``.
        tags: labels matched by :data:`LR_OVERRIDES` (e.g. ``"k5"``).
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
    weight_decay: float = MEDNEXT_WEIGHT_DECAY
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


# ----------------------------------------------------------------------------------------------
# built-in entries: the paper grid (§2.4, §3.1, Table 1 ablations, Table 2)


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
            mednext_spec(variant, 5, init_from=f"MedNeXt-{variant}_k3", description=f"MedNeXt-{variant}, kernel 5 (UpKern from k3)")
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


# ----------------------------------------------------------------------------------------------
# the registry


class _Registry:
    """Name -> spec, filled with the built-ins and plugins on first use (no import-time work).

    :data:`LAZY_PLUGINS` are loaded only by ``ensure_loaded(everything=True)``.
    """

    def __init__(self) -> None:
        self.specs: dict[str, NetworkSpec] = {}
        self.loaded = False
        self.lazy_loaded = False

    def ensure_loaded(self, everything: bool = False) -> None:
        if not self.loaded:
            self.loaded = True  # set first: plugins call register_network while we load them
            for spec in builtin_networks():
                self.add(spec)
            for module_name in plugin_modules():
                if module_name not in LAZY_PLUGINS:
                    _load_plugin(module_name)
        if everything and not self.lazy_loaded:
            self.lazy_loaded = True
            for module_name in plugin_modules():
                if module_name in LAZY_PLUGINS:
                    _load_plugin(module_name)

    def ensure_known(self, name: str) -> None:
        """Load the lazy plugins too unless ``name`` and its UpKern parent are registered without them."""
        self.ensure_loaded()
        spec = self.specs.get(name)
        if spec is None or (spec.init_from is not None and spec.init_from not in self.specs):
            self.ensure_loaded(everything=True)

    def add(self, spec: NetworkSpec, overwrite: bool = False) -> NetworkSpec:
        spec.validate()
        existing = self.specs.get(spec.name)
        if existing is not None and existing != spec and not overwrite:
            raise ValueError(f"network {spec.name!r} is already registered with a different spec; pass overwrite=True to replace it")
        clash = next((s for s in self.specs.values() if s.trainer_name == spec.trainer_name and s.name != spec.name), None)
        if clash is not None:
            raise ValueError(f"networks {spec.name!r} and {clash.name!r} map to the same trainer class {spec.trainer_name}")
        self.specs[spec.name] = spec
        return spec


_REGISTRY = _Registry()


def plugin_modules() -> list[str]:
    """Plugin modules to load: :data:`NETWORK_PLUGINS` plus ``$MEDNEXT_NETWORK_PLUGINS``."""
    extra = [m.strip() for m in os.environ.get(ENV_PLUGINS, "").split(",") if m.strip()]
    return list(dict.fromkeys([*NETWORK_PLUGINS, *extra]))


def import_plugin(module_name: str, required: str) -> ModuleType | None:
    """Import plugin ``module_name``, or None when its top-level package is not installed.

    A plugin is optional, but a different package under the same top-level name must not stand in
    for it silently (``baselines`` is also OpenAI's PyPI package): a found package without the
    submodule, or a module without attribute ``required``, raises ImportError naming its file.
    A plugin whose own imports are broken raises as well.
    """
    top = module_name.partition(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == top:
            log.debug("network plugin %s not installed; skipped", module_name)
            return None
        if error.name == module_name:
            found = getattr(sys.modules.get(top), "__file__", None) or top
            raise ImportError(
                f"{found}: package {top!r} has no module {module_name!r}; it is not this project's plugin "
                f"(another package with the same name installed?): uninstall it or put ours first on sys.path"
            ) from None
        raise
    package_dirs = [os.path.realpath(p) for p in getattr(sys.modules[top], "__path__", [])]
    module_file = os.path.realpath(getattr(module, "__file__", None) or "")
    if module is not sys.modules[top] and not any(module_file.startswith(d + os.sep) for d in package_dirs):
        # e.g. an editable install's finder maps ``baselines.registry`` to our file under a foreign ``baselines``
        raise ImportError(
            f"{getattr(sys.modules[top], '__file__', top)}: package {top!r} is not the one {module_name!r} belongs to "
            f"({module_file}); another package with the same name installed? uninstall it or put ours first on sys.path"
        )
    if not hasattr(module, required):
        raise ImportError(
            f"{getattr(module, '__file__', module_name)}: module {module_name!r} defines no {required!r}; it is not "
            f"this project's plugin (another package with the same name installed?)"
        )
    return module


def _load_plugin(module_name: str) -> None:
    """Import a plugin and register its networks; only the built-in list's plugins may be absent."""
    module = import_plugin(module_name, "register_networks")
    if module is None and module_name not in NETWORK_PLUGINS:
        raise ImportError(f"${ENV_PLUGINS} names {module_name!r}, which cannot be imported: install it or put "
                          f"its folder on PYTHONPATH")
    if module is not None:
        module.register_networks()


def register_network(spec: NetworkSpec, *, overwrite: bool = False) -> NetworkSpec:
    """Add ``spec`` to the registry and return it (the hook used by the baselines package).

    Registering an identical spec twice is a no-op; a different spec under a taken name raises
    ValueError unless ``overwrite``.
    """
    _REGISTRY.ensure_loaded()
    return _REGISTRY.add(spec, overwrite=overwrite)


def get_network(name: str) -> NetworkSpec:
    """The spec registered as ``name``; KeyError lists the known names."""
    _REGISTRY.ensure_known(name)
    try:
        spec = _REGISTRY.specs[name]
    except KeyError:
        raise KeyError(f"unknown network {name!r}; registered: {', '.join(sorted(_REGISTRY.specs))}") from None
    if spec.init_from is not None and spec.init_from not in _REGISTRY.specs:
        raise KeyError(f"network {name!r} starts from {spec.init_from!r}, which is not registered")
    return spec


def network_for_trainer(trainer_name: str) -> NetworkSpec:
    """The spec whose nnU-Net trainer class is ``trainer_name``; KeyError if none."""
    for everything in (False, True):
        _REGISTRY.ensure_loaded(everything)
        for spec in _REGISTRY.specs.values():
            if spec.trainer_name == trainer_name:
                return spec
    raise KeyError(f"no registered network has trainer class {trainer_name!r}")


def list_networks(families: Iterable[str] | None = None) -> list[str]:
    """Registered names in registration order, optionally only the given families."""
    _REGISTRY.ensure_loaded(everything=True)
    wanted = None if families is None else set(families)
    return [n for n, s in _REGISTRY.specs.items() if wanted is None or s.family in wanted]


def _normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def lr_overrides_from_env(environ: Mapping[str, str] | None = None) -> dict[tuple[str, str], float]:
    """:data:`LR_OVERRIDES`, or the JSON mapping ``{"kits19/k5": 1e-4}`` in ``$MEDNEXT_LR_OVERRIDES``."""
    environ = os.environ if environ is None else environ
    raw = environ.get(ENV_LR_OVERRIDES)
    if not raw:
        return dict(LR_OVERRIDES)
    try:
        parsed = json.loads(raw)
        result = {}
        for key, value in parsed.items():
            dataset_key, tag = key.split("/")
            result[(dataset_key, tag)] = float(value)
    except (ValueError, AttributeError) as error:
        raise ValueError(f"${ENV_LR_OVERRIDES} must be JSON like {{\"kits19/k5\": 0.0001}}, found {raw!r}: {error}") from None
    return result


def lr_for(spec: NetworkSpec, dataset_name: str, overrides: Mapping[tuple[str, str], float] | None = None) -> float:
    """Learning rate of ``spec`` on ``dataset_name`` (e.g. ``Dataset040_KiTS19``).

    An override ``(dataset key, tag)`` applies when the key occurs in the dataset name (case and
    punctuation ignored) and the tag is one of ``spec.tags``. Two matching overrides with
    different values raise ValueError.
    """
    overrides = lr_overrides_from_env() if overrides is None else overrides
    dataset = _normalise(dataset_name)
    hits = {lr for (key, tag), lr in overrides.items() if _normalise(key) in dataset and tag in spec.tags}
    if len(hits) > 1:
        raise ValueError(f"conflicting learning-rate overrides for {spec.name} on {dataset_name}: {sorted(hits)}")
    return hits.pop() if hits else spec.lr
