"""The project's one network registry: every trainer, Snakemake job and table row resolves a name here.

It holds the paper's entries, registered on first use: Table 2's MedNeXt grid and nnU-Net
(:mod:`mednext.network_specs`), the Table 1 ablations (:mod:`mednext.ablations`), the six baselines
(:mod:`baselines.registry`, optional: the CLI works without that package), and the networks of any
module named in ``$MEDNEXT_NETWORK_PLUGINS`` (comma separated), each defining ``register_networks()``
that calls :func:`register_network`. Adding a network is one entry in one of those places.
The mechanism (what an entry is, how the registry checks it) is :mod:`mednext.network_registry`.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from types import ModuleType

from mednext.ablations import ABLATIONS
from mednext.network_registry import NetworkRegistry, NetworkSpec, ReferenceCount  # noqa: F401  (re-exported)
from mednext.network_specs import LR_OVERRIDES, builtin_networks

log = logging.getLogger(__name__)

#: Extra plugin modules, comma separated (the only network plugins loaded by name).
ENV_PLUGINS = "MEDNEXT_NETWORK_PLUGINS"

_REGISTRY = NetworkRegistry()
_loaded = False


def _foreign_baselines(found: str, missing: str) -> ImportError:
    return ImportError(f"{found}: package 'baselines' is not this project's (it has no {missing}); another package "
                       f"with the same name installed? uninstall it or put ours first on sys.path")


def baselines_package() -> ModuleType | None:
    """The project's :mod:`baselines` package with its registry loaded, or None when it is not installed.

    A different package under the same top-level name (OpenAI's PyPI ``baselines``) must not stand
    in for ours silently: ImportError naming its file.
    """
    try:
        import baselines
    except ModuleNotFoundError as error:
        if error.name != "baselines":
            raise
        log.debug("the baselines package is not installed; its networks are not registered")
        return None
    found = getattr(baselines, "__file__", None) or "baselines"
    if not hasattr(baselines, "PatchSizeError"):
        raise _foreign_baselines(found, "PatchSizeError")
    try:
        import baselines.registry as registry
    except ModuleNotFoundError as error:
        if error.name == "baselines.registry":
            raise _foreign_baselines(found, "baselines.registry") from None
        raise
    package_dirs = [os.path.realpath(p) for p in getattr(baselines, "__path__", [])]
    if not any(os.path.realpath(registry.__file__ or "").startswith(d + os.sep) for d in package_dirs):
        # an editable install's finder can map baselines.registry to our file under a foreign package
        raise _foreign_baselines(found, "baselines.registry of its own")
    return baselines


def _user_plugins() -> list[ModuleType]:
    """The modules named in ``$MEDNEXT_NETWORK_PLUGINS``; ImportError naming one Python cannot import."""
    modules = []
    for name in [m.strip() for m in os.environ.get(ENV_PLUGINS, "").split(",") if m.strip()]:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            raise ImportError(f"${ENV_PLUGINS} names {name!r}, which cannot be imported ({error}): install it or put "
                              f"its folder on PYTHONPATH") from None
        if not hasattr(module, "register_networks"):
            raise ImportError(f"{getattr(module, '__file__', name)}: ${ENV_PLUGINS} module {name!r} defines no "
                              f"'register_networks()'")
        modules.append(module)
    return modules


def _ensure_loaded() -> None:
    """Register the paper's entries and the plugins' once per process (no import-time work)."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first: plugins call register_network while they load
    for spec in builtin_networks():
        _REGISTRY.add(spec)
    for ablation in ABLATIONS:
        _REGISTRY.add(ablation.network)
    baselines = baselines_package()
    for spec in baselines.registry.BASELINES.values() if baselines is not None else ():
        _REGISTRY.add(spec)  # each a no-deep-supervision trainer; TransUNet trains nnU-Net's 2D configuration
    for plugin in _user_plugins():
        plugin.register_networks()


def register_network(spec: NetworkSpec, *, overwrite: bool = False) -> NetworkSpec:
    """Add ``spec`` to the registry and return it (the hook plugins call).

    Registering an identical spec twice is a no-op; a different spec under a taken name raises
    ValueError unless ``overwrite``.
    """
    _ensure_loaded()
    return _REGISTRY.add(spec, overwrite=overwrite)


def get_network(name: str) -> NetworkSpec:
    """The spec registered as ``name``; KeyError lists the known names."""
    _ensure_loaded()
    return _REGISTRY.get(name)


def network_for_trainer(trainer_name: str) -> NetworkSpec:
    """The spec whose nnU-Net trainer class is ``trainer_name``; KeyError if none."""
    _ensure_loaded()
    return _REGISTRY.for_trainer(trainer_name)


def list_networks(families: Iterable[str] | None = None) -> list[str]:
    """Registered names in registration order, optionally only the given families."""
    _ensure_loaded()
    return _REGISTRY.names(families)


def lr_for(spec: NetworkSpec, dataset: str | None, extra_overrides: Mapping[str, float] | None = None) -> float:
    """Learning rate of ``spec`` on the dataset with registry key ``dataset``.

    An override applies when its dataset key equals ``dataset`` exactly (``*``: every dataset) and its
    tag is one of ``spec.tags``: :data:`~mednext.network_specs.LR_OVERRIDES`, updated by
    ``extra_overrides`` (``{"kits19/k5": 1e-4}``, the config's ``training.lr_overrides``). Two matching
    overrides with different values raise ValueError.
    """
    overrides = dict(LR_OVERRIDES)
    for text, lr in (extra_overrides or {}).items():
        key, _, tag = text.partition("/")
        overrides[(key, tag)] = float(lr)
    hits = {lr for (key, tag), lr in overrides.items() if key in (dataset, "*") and tag in spec.tags}
    if len(hits) > 1:
        raise ValueError(f"conflicting learning-rate overrides for {spec.name} on {dataset}: {sorted(hits)}")
    return hits.pop() if hits else spec.lr
