"""The official epoch-100 rescue: a training whose validation Dice is still 0 is re-initialised.

What the official MedNeXt code does (nnU-Net v1; ``nnunet_mednext/training/network_training/
nnUNetTrainerV2.py``, ``on_epoch_end``): after epoch 100 (0-based, so the 101st, once its validation
and checkpoint are done), if that epoch's estimated validation Dice is exactly 0, it writes 0.95 into
the ``momentum`` of the optimiser's first parameter group (nnU-Net's SGD uses 0.99) and re-initialises
the network with ``InitWeights_He(1e-2)``: Kaiming-normal weights with negative slope 0.01 on every
Conv2d, Conv3d, ConvTranspose2d and ConvTranspose3d, their biases 0; normalisation layers, the
optimiser's state (momentum buffers, Adam moments), the learning rate and the epoch count stay as they
are. The estimated Dice is the mean over foreground classes of the global Dice on the epoch's
validation batches, classes absent from all of them left out (``nnUNetTrainer.finish_online_evaluation``):
nnU-Net v2's ``mean_fg_dice`` (a NaN mean, with no class present, is not 0). The MedNeXt trainers
(``MedNeXt/nnUNetTrainerV2_MedNeXt.py``) keep this ``on_epoch_end`` and only swap the optimiser for
AdamW, which has no momentum: the official assignment adds an entry AdamW never reads, so for MedNeXt
(and every AdamW baseline) the rescue is the re-initialisation alone. nnU-Net v2 dropped the rescue;
:class:`mednext.nnunet.trainers.ReproTrainer` restores it.

The epoch is a config value (``training.rescue_epoch``) so that a shortened run can exercise it; the
paper's protocol is :data:`OFFICIAL_RESCUE_EPOCH`. Sources with lines: ``docs/sources.md#recipe-rescue``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mednext.atomic import atomic_write_text

if TYPE_CHECKING:  # torch only where weights change: provenance and status read records without it
    import torch
    from torch import nn

#: The epoch (0-based) at whose end the official trainer checks the validation Dice.
OFFICIAL_RESCUE_EPOCH = 100
#: The momentum the official rescue writes into the first parameter group.
RESCUE_MOMENTUM = 0.95
#: Negative slope of the official ``InitWeights_He`` used for the re-initialisation.
HE_NEGATIVE_SLOPE = 1e-2
#: The record a fired rescue leaves in the fold folder (read back after a resume, by provenance and the recipe card).
RESCUE_RECORD = "rescue.json"


@dataclass
class RescueState:
    """The rescue as a trainer exposes it: the configured epoch (``None``: off), whether and when it fired,
    the validation Dice that made it fire, the first parameter group's momentum before and after
    (``None`` for an optimiser without momentum, e.g. AdamW) and the number of modules re-initialised."""

    epoch: int | None = OFFICIAL_RESCUE_EPOCH
    fired: bool = False
    fired_at_epoch: int | None = None
    mean_foreground_dice: float | None = None
    momentum_before: float | None = None
    momentum_after: float | None = None
    reinitialised_modules: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def rescue_due(epoch: int, rescue_epoch: int | None, mean_foreground_dice: float) -> bool:
    """Whether the epoch that just ended triggers the rescue: it is ``rescue_epoch`` and its Dice is exactly 0."""
    if rescue_epoch is None or epoch != rescue_epoch:
        return False
    return not math.isnan(mean_foreground_dice) and mean_foreground_dice == 0


def lower_momentum(optimizer: torch.optim.Optimizer) -> tuple[float | None, float | None]:
    """Set the first parameter group's momentum to :data:`RESCUE_MOMENTUM`; ``(before, after)``, or
    ``(None, None)`` for an optimiser that has no momentum (nothing the official assignment changes)."""
    group = optimizer.param_groups[0]
    if "momentum" not in group:
        return None, None
    before = float(group["momentum"])
    group["momentum"] = RESCUE_MOMENTUM
    return before, RESCUE_MOMENTUM


def reinitialise(network: nn.Module) -> int:
    """Re-draw every convolution as the official ``InitWeights_He(1e-2)`` (nnU-Net v2's library ships the
    same initialiser); the number of modules re-drawn (Conv2d/3d, ConvTranspose2d/3d)."""
    from dynamic_network_architectures.initialization.weight_init import InitWeights_He
    from torch import nn

    network.apply(InitWeights_He(HE_NEGATIVE_SLOPE))
    convolutions = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    return sum(isinstance(m, convolutions) for m in network.modules())


def apply_rescue(state: RescueState, network: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                 mean_foreground_dice: float) -> RescueState:
    """Lower the momentum and re-initialise ``network`` (see the module docstring); ``state`` updated."""
    import torch

    with torch.no_grad():
        state.reinitialised_modules = reinitialise(network)
    state.momentum_before, state.momentum_after = lower_momentum(optimizer)
    state.fired, state.fired_at_epoch, state.mean_foreground_dice = True, epoch, float(mean_foreground_dice)
    return state


def describe(state: RescueState) -> str:
    """The training-log line of a fired rescue."""
    momentum = (f"momentum of the first parameter group {state.momentum_before:g} -> {state.momentum_after:g}"
                if state.momentum_after is not None else "the optimiser has no momentum (left as it was)")
    return (f"Rescue at the end of epoch {state.fired_at_epoch}: the mean foreground pseudo-Dice was "
            f"{state.mean_foreground_dice:g}, so the network was re-initialised as the official v1 trainer does "
            f"(He normal, slope {HE_NEGATIVE_SLOPE:g}, convolutions re-drawn: {state.reinitialised_modules}); {momentum}")


def record_still_holds(recorded: RescueState, resumed: bool, epochs_done: int) -> bool:
    """Whether a recorded rescue describes the weights a training starts with: it fired, and the training
    resumes from a checkpoint written after it (``epochs_done`` past its epoch). A fresh start, or a resume
    from an older checkpoint (which redoes the rescue epoch and decides again), drops the record."""
    return recorded.fired and resumed and recorded.fired_at_epoch is not None and epochs_done > recorded.fired_at_epoch


def write_rescue_record(fold_dir: str | Path, state: RescueState) -> Path:
    return atomic_write_text(Path(fold_dir) / RESCUE_RECORD, json.dumps(state.as_dict(), indent=2) + "\n")


def read_rescue_record(fold_dir: str | Path) -> RescueState | None:
    """The rescue recorded in ``fold_dir`` (``None`` when it never fired there or the record is unreadable)."""
    try:
        data = json.loads((Path(fold_dir) / RESCUE_RECORD).read_text(encoding="utf-8"))
        return RescueState(**data)
    except (OSError, ValueError, TypeError):
        return None
