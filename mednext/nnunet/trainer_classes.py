"""Trainer classes generated from the network registry, one per entry, made on first request.

Each class is a two-line subclass of its family's base (:mod:`mednext.nnunet.trainers`) that only
sets ``network_name``; nnU-Net finds it by name through ``nnUNet_extTrainer``
(:mod:`mednext.nnunet.ext_trainers.mednext_repro_trainers`).
"""

from __future__ import annotations

from mednext.networks import NetworkSpec, get_network, list_networks, network_for_trainer
from mednext.nnunet.trainers import DeepSupervisedTrainer, NoDeepSupervisionTrainer, ReproTrainer

_CACHE: dict[str, type[ReproTrainer]] = {}


def base_trainer_for(spec: NetworkSpec) -> type[ReproTrainer]:
    """The family base: nnU-Net's architecture, MedNeXt-style deep supervision, or none."""
    if spec.builder is None:
        return ReproTrainer
    return DeepSupervisedTrainer if spec.deep_supervision else NoDeepSupervisionTrainer


def trainer_class(trainer_name: str) -> type[ReproTrainer]:
    """The trainer class called ``trainer_name`` (e.g. ``nnUNetTrainer_MedNeXt_S_k3``); KeyError if unknown."""
    cached = _CACHE.get(trainer_name)
    if cached is not None:
        return cached
    spec = network_for_trainer(trainer_name)
    base = base_trainer_for(spec)
    cls = type(
        trainer_name,
        (base,),
        {
            "network_name": spec.name,
            "__module__": __name__,
            "__qualname__": trainer_name,
            "__doc__": f"nnU-Net trainer for {spec.name}: {spec.description}",
        },
    )
    _CACHE[trainer_name] = cls
    return cls


def trainer_for_network(network_name: str) -> type[ReproTrainer]:
    """The trainer class of registry entry ``network_name``."""
    return trainer_class(get_network(network_name).trainer_name)


def all_trainer_names() -> list[str]:
    """Trainer class names of every registered network."""
    return [get_network(name).trainer_name for name in list_networks()]


def __getattr__(name: str) -> type:
    """``from mednext.nnunet.trainer_classes import nnUNetTrainer_MedNeXt_S_k3`` works too."""
    if name.startswith("nnUNetTrainer"):
        try:
            return trainer_class(name)
        except KeyError:
            pass
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
