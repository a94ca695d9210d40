"""nnU-Net external-trainer module: every registered network's trainer class, resolved on demand.

nnU-Net (>= 2.8) puts the ``nnUNet_extTrainer`` folder on ``sys.path``, imports each module in it
and takes ``getattr(module, trainer_name)``; this module answers through
:func:`mednext.nnunet.trainer_classes.trainer_class`, so classes are made only when asked for and
stay identical across look-ups.
"""

from __future__ import annotations

from mednext.nnunet.trainer_classes import all_trainer_names, trainer_class


def __getattr__(name: str) -> type:
    if not name.startswith("nnUNetTrainer"):
        raise AttributeError(name)
    try:
        return trainer_class(name)
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no trainer {name!r}") from None


def __dir__() -> list[str]:
    return sorted([*globals(), *all_trainer_names()])
