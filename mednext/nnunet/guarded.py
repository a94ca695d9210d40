"""Two watches on nnU-Net's training loop: the divergence guard and the official epoch-100 rescue.

Thin hooks; the decisions live in :mod:`mednext.nnunet.divergence` and :mod:`mednext.nnunet.rescue`.
:class:`GuardedTrainer` is mixed into :class:`mednext.nnunet.trainers.ReproTrainer` *under*
:class:`mednext.nnunet.resumable.ResumableTrainer` (``class ReproTrainer(ResumableTrainer, GuardedTrainer)``),
so that its epoch end runs right after nnU-Net's and before the resumable trainer's timed or
signal-triggered ``checkpoint_latest``: a rescue is never lost to a save of the weights it replaced.
It relies on the resumable trainer's ``shut_down_data_loaders`` to end nnU-Net's workers before exiting.

Exposed for the recipe card and provenance: :attr:`GuardedTrainer.rescue` (the configured epoch, whether
and when it fired) and :attr:`GuardedTrainer.zero_dice_rescue`.
"""

from __future__ import annotations

import dataclasses
import os

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from mednext.nnunet.divergence import (
    DEFAULT_PATIENCE,
    DIVERGED_CHECKPOINT,
    DIVERGED_EXIT_CODE,
    DIVERGED_MARKER,
    Divergence,
    NonFiniteLossGuard,
    write_marker,
)
from mednext.nnunet.rescue import (
    RESCUE_RECORD,
    RescueState,
    apply_rescue,
    describe,
    read_rescue_record,
    record_still_holds,
    rescue_due,
    write_rescue_record,
)


class DivergedTraining(SystemExit):
    """Raised after the divergence guard stopped the training; the process exits with :data:`DIVERGED_EXIT_CODE`."""


class GuardedTrainer(nnUNetTrainer):
    """nnU-Net's trainer with the divergence guard and the zero-Dice rescue (see the module docstring).

    A subclass sets :attr:`rescue` and :attr:`loss_guard` from its settings in its constructor;
    the defaults are the official rescue epoch and :data:`~mednext.nnunet.divergence.DEFAULT_PATIENCE`.
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.rescue = RescueState()
        self.loss_guard = NonFiniteLossGuard(DEFAULT_PATIENCE)
        self.iteration_in_epoch = 0

    @property
    def zero_dice_rescue(self) -> bool:
        """Whether this training runs the official zero-Dice rescue (at :attr:`rescue`'s epoch)."""
        return self.rescue.epoch is not None

    # -- the rescue ----------------------------------------------------------------------------
    def on_train_start(self) -> None:
        """nnU-Net's start; a training resumed after its rescue takes the rescue back, any other start drops a
        stale record (a resume from a checkpoint older than the rescue redoes that epoch and decides again)."""
        super().on_train_start()
        recorded = read_rescue_record(self.output_folder)
        if recorded is None:
            return
        if record_still_holds(recorded, getattr(self, "restored_from_checkpoint", False), self.current_epoch):
            self.rescue = dataclasses.replace(recorded, epoch=self.rescue.epoch)
        elif self.local_rank == 0:
            os.remove(os.path.join(self.output_folder, RESCUE_RECORD))

    def on_epoch_end(self) -> None:
        """nnU-Net's epoch end (its checkpoints, as the official order), then the rescue when it is due."""
        epoch = self.current_epoch
        dice = float(self.logger.get_value("mean_fg_dice", step=-1))
        super().on_epoch_end()
        if not self.rescue.fired and rescue_due(epoch, self.rescue.epoch, dice):
            apply_rescue(self.rescue, self.network, self.optimizer, epoch, dice)
            self.print_to_log_file(describe(self.rescue))
            if self.local_rank == 0:
                write_rescue_record(self.output_folder, self.rescue)
            self.after_rescue()

    def after_rescue(self) -> None:
        """Called once the rescue fired and was recorded (the recipe card is rewritten here by subclasses)."""

    # -- the divergence guard ------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self.iteration_in_epoch = 0
        super().on_train_epoch_start()

    def train_step(self, batch: dict) -> dict:
        """nnU-Net's step; stop the training when the loss has been non-finite ``patience`` times in a row."""
        result = super().train_step(batch)
        divergence = self.loss_guard.observe(float(result["loss"]), self.current_epoch, self.iteration_in_epoch)
        self.iteration_in_epoch += 1
        if divergence is not None:
            self.stop_diverged(divergence)
        return result

    def stop_diverged(self, divergence: Divergence) -> None:
        """Save the diverged state beside (not over) the last good ``checkpoint_latest``, write the marker, exit."""
        divergence = dataclasses.replace(divergence, checkpoint=DIVERGED_CHECKPOINT)
        if self.local_rank == 0:
            self.save_checkpoint(os.path.join(self.output_folder, DIVERGED_CHECKPOINT))
            write_marker(self.output_folder, divergence)
        self.print_to_log_file(f"Divergence guard: {divergence.describe()}; saved {DIVERGED_CHECKPOINT} and wrote "
                               f"{DIVERGED_MARKER}; the next attempt refuses to start until the marker is removed or "
                               "training.retry_diverged is set (it then resumes from the last checkpoint_latest)")
        self.shut_down_data_loaders()
        raise DivergedTraining(DIVERGED_EXIT_CODE)
