"""Training logs written by nnU-Net's own ``print_to_log_file`` and moving averages from nnU-Net's own logger.

The status reader must agree with what nnU-Net writes and computes, so the test inputs come from
nnU-Net's code, not from the reader's idea of the format.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
from nnunetv2.training.logging.nnunet_logger import MetaLogger
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer


class NnunetLogWriter:
    """Writes the epoch lines of ``nnUNetTrainer`` into ``training_log_<start>.txt`` of a fold folder,
    with log-line times starting at ``start`` and advancing ``epoch_seconds`` per epoch."""

    def __init__(self, fold_dir: Path, start: datetime, epoch_seconds: float = 5.0) -> None:
        fold_dir.mkdir(parents=True, exist_ok=True)
        # nnUNetTrainer.__init__'s own %-format, kept verbatim so the names match nnU-Net's
        name = "training_log_%d_%d_%d_%02.0d_%02.0d_%02.0d.txt" % (  # noqa: UP031
            start.year, start.month, start.day, start.hour, start.minute, start.second)
        self.path = fold_dir / name
        self._trainer = SimpleNamespace(local_rank=0, log_file=str(self.path))
        self._clock = start
        self.epoch_seconds = epoch_seconds

    def line(self, *args: object) -> None:
        """One ``print_to_log_file`` line at the writer's clock."""
        with mock.patch("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.time", return_value=self._clock.timestamp()), \
                mock.patch("builtins.print"):
            nnUNetTrainer.print_to_log_file(self._trainer, *args)

    def epoch(self, epoch: int, dice_per_class: list[float], finish: bool = True) -> None:
        """What ``on_train_epoch_start`` and ``on_epoch_end`` log for one epoch (``finish=False``: killed mid-epoch)."""
        with mock.patch("builtins.print"):
            clock = mock.patch("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.time", return_value=self._clock.timestamp())
            with clock:
                for args in ([""], [f"Epoch {epoch}"], [f"Current learning rate: {np.round(0.01, decimals=5)}"]):
                    nnUNetTrainer.print_to_log_file(self._trainer, *args)
            if not finish:
                return
            self._clock += timedelta(seconds=self.epoch_seconds)
            with mock.patch("nnunetv2.training.nnUNetTrainer.nnUNetTrainer.time", return_value=self._clock.timestamp()):
                for args in (["train_loss", np.round(np.float32(-0.5), decimals=4)],
                             ["val_loss", np.round(np.float32(-0.6), decimals=4)],
                             ["Pseudo dice", [np.round(np.float32(v), decimals=4) for v in dice_per_class]],
                             [f"Epoch time: {np.round(self.epoch_seconds, decimals=2)} s"]):
                    nnUNetTrainer.print_to_log_file(self._trainer, *args)


def nnunet_ema(dice_per_epoch: list[list[float]]) -> float:
    """The ``ema_fg_dice`` nnU-Net's logger holds after these epochs (mean over classes as ``on_validation_epoch_end``)."""
    logger = MetaLogger(output_folder=None, resume=False)
    for epoch, values in enumerate(dice_per_epoch):
        logger.log("mean_fg_dice", float(np.nanmean(values)), epoch)
    return float(logger.get_value("ema_fg_dice", step=-1))
