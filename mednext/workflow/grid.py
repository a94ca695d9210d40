"""Which trainings the paper needs: datasets x networks x folds, the ablations, and UpKern parents.

Everything resolves through the two registries (:mod:`mednext.networks`, :mod:`mednext.data.registry`),
so adding a network or dataset to the config is the only edit a new run needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mednext.data.registry import get_dataset, register_dataset
from mednext.networks import get_network
from mednext.runs import Run
from mednext.vocabulary import N_FOLDS


class ConfigError(ValueError):
    """The workflow config names something the registries do not know."""


def dataset_name(entry: str | Mapping[str, Any]) -> str:
    """The dataset name of a config ``datasets`` entry: a registry key, or an own dataset's ``name``."""
    return entry if isinstance(entry, str) else str(entry["name"])


def dataset_names(entries: Iterable[str | Mapping[str, Any]]) -> list[str]:
    """The names of config ``datasets`` entries, in order."""
    return [dataset_name(entry) for entry in entries]


def register_own_datasets(config: Mapping[str, Any], source: str = "config") -> list[str]:
    """Validate and register (for this process) every own nnU-Net raw dataset of ``config["datasets"]``
    (entries ``{name, nnunet_raw, regions?}``); return their names. A folder that passed before is not
    read again (signature file under ``paths.nnunet``)."""
    from mednext.data.errors import DataError
    from mednext.data.own_dataset import own_dataset_spec

    cache_dir = Path(config["paths"]["nnunet"]) / "own_datasets_checked" if "paths" in config else None
    names = []
    for entry in config.get("datasets", []):
        if isinstance(entry, str):
            continue
        try:
            spec = own_dataset_spec(str(entry["name"]), entry["nnunet_raw"], entry.get("regions"), cache_dir=cache_dir)
            register_dataset(spec)
        except (DataError, ValueError) as error:
            raise ConfigError(f"{source}: {error}") from None
        names.append(spec.key)
    return names


def check_config(config: Mapping[str, Any], source: str = "config") -> None:
    """Raise :class:`ConfigError` naming ``source`` if a fold is not one of the cross-validation folds or a
    dataset or network is unknown to the registries.

    Own nnU-Net raw datasets in ``datasets`` are validated and registered first
    (:func:`register_own_datasets`), so ablations may name them too.
    """
    outside = [f for f in config.get("folds", []) if not 0 <= int(f) < N_FOLDS]
    if outside:
        raise ConfigError(f"{source}: folds {outside} are not among the {N_FOLDS} cross-validation folds "
                          f"0-{N_FOLDS - 1}")
    register_own_datasets(config, source)
    for key in dataset_names(config.get("datasets", [])) + config.get("ablations", {}).get("datasets", []):
        try:
            get_dataset(key)
        except KeyError as error:
            raise ConfigError(f"{source}: {error.args[0]}") from None
    for name in config.get("networks", []) + config.get("ablations", {}).get("networks", []):
        try:
            get_network(name)
        except KeyError as error:
            raise ConfigError(f"{source}: {error.args[0]}") from None


def _product(datasets: Iterable[str], networks: Iterable[str], folds: Iterable[int]) -> list[Run]:
    return [Run(d, n, int(f)) for d in datasets for n in networks for f in folds]


def main_runs(config: Mapping[str, Any]) -> list[Run]:
    """Table 2: every dataset x network x fold of the config."""
    return _product(dataset_names(config["datasets"]), config["networks"], config["folds"])


def ablation_runs(config: Mapping[str, Any]) -> list[Run]:
    """Table 1 (right): the ablation networks on the ablation datasets."""
    ablations = config.get("ablations", {})
    return _product(ablations.get("datasets", []), ablations.get("networks", []), config["folds"])


def upkern_parents(config: Mapping[str, Any]) -> frozenset[Run]:
    """The runs another configured run starts from by UpKern (same dataset and fold)."""
    return frozenset(parent for parent in (run.parent() for run in all_runs(config)) if parent is not None)


def scheduling_priority(run: Run, parents: frozenset[Run]) -> int:
    """Snakemake priority of a training: 1 for an UpKern parent (:func:`upkern_parents`), else 0.

    Parents then start first, so that a kernel-5 run does not wait for its parent at the end of the
    DAG while the other cores idle (measured on the 2-core demo: about a minute).
    """
    return int(run in parents)


def all_runs(config: Mapping[str, Any]) -> list[Run]:
    """Main and ablation runs plus every UpKern parent they need, each once, sorted."""
    pending = main_runs(config) + ablation_runs(config)
    seen: set[Run] = set()
    while pending:
        run = pending.pop()
        if run in seen:
            continue
        seen.add(run)
        parent = run.parent()
        if parent is not None:
            pending.append(parent)
    return sorted(seen)


def configurations_for(config: Mapping[str, Any], dataset: str) -> list[str]:
    """nnU-Net configurations (3d_fullres, 2d) that the dataset's runs train, in a stable order."""
    wanted = {get_network(r.network).configuration for r in all_runs(config) if r.dataset == dataset}
    return [c for c in ("3d_fullres", "2d") if c in wanted]


def datasets_of(config: Mapping[str, Any]) -> list[str]:
    """Every dataset the config trains on (main and ablations), in config order."""
    return list(dict.fromkeys([*dataset_names(config["datasets"]), *config.get("ablations", {}).get("datasets", [])]))
