"""Resumability for nnU-Net v2 trainings that outlive a SLURM job: the part of the trainer that is not recipe.

A paper training runs 9 to 233 GPU-hours against partition limits of about 72 h, so every attempt
must end with a checkpoint the next attempt resumes from, losing at most one epoch:

- SIGTERM (SLURM's time limit) and SIGUSR1 only set a flag; the loop then saves ``checkpoint_latest``
  at the next iteration or epoch end and exits with 128 + signal number, a failure Snakemake retries.
- ``checkpoint_latest`` is also written every ``checkpoint_minutes`` of wall time, so a job killed
  without a signal (node failure) loses at most that much.
- Every checkpoint is written to a temporary name and renamed; the previous ``checkpoint_latest`` is
  kept as ``checkpoint_latest.prev.pth`` for when the newest turns out unreadable
  (:func:`mednext.nnunet.checkpoints.recover_resume_checkpoints`).
- nnU-Net's ``progress.png`` (about 0.7 s of matplotlib per epoch) is redrawn at most every 30 s on
  the CPU, where demo epochs take seconds; on a GPU every epoch, as nnU-Net does.

The training loop stays nnU-Net's; these are overrides of its hooks.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from mednext.atomic import atomic_output
from mednext.nnunet.checkpoints import LATEST, PREVIOUS_LATEST
from mednext.nnunet.job_settings import SIGNAL_AFTER_LAST_EPOCH, SIGNAL_SAVED_LATEST, STOP_SIGNALS

#: On the CPU ``progress.png`` is redrawn at most this often (and always after the last epoch).
PROGRESS_PLOT_MIN_SECONDS = 30.0


def progress_plot_due(epoch: int, num_epochs: int, seconds_since_last_plot: float) -> bool:
    """Whether a CPU training's epoch that just ended redraws ``progress.png``: the last epoch, or
    :data:`PROGRESS_PLOT_MIN_SECONDS` since the previous drawing (a process's first epoch always draws)."""
    return epoch >= num_epochs - 1 or seconds_since_last_plot >= PROGRESS_PLOT_MIN_SECONDS


class StopTraining(SystemExit):
    """Raised after the signal save: the process ends non-zero so that Snakemake retries and resumes."""


def save_atomically(obj: object, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj, path)`` through a temporary file, so a kill never leaves half a file."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


class ResumableTrainer(nnUNetTrainer):
    """nnU-Net's trainer made safe to stop and resume at any moment (see the module docstring).

    A subclass sets :attr:`checkpoint_minutes` in its constructor (the config's
    ``training.checkpoint_minutes``).
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.checkpoint_minutes: float | None = None
        self.restored_from_checkpoint = False
        self.stop_signal: int | None = None
        self._previous_handlers: dict[int, object] = {}
        self._last_latest_save = time.monotonic()
        # nnU-Net's epoch end calls logger.plot_progress_png; route it through the throttle
        self._draw_progress_png = self.logger.plot_progress_png
        self._last_progress_plot = -float("inf")
        self.logger.plot_progress_png = self._plot_progress_when_due

    def _plot_progress_when_due(self, output_folder: str) -> None:
        """nnU-Net's ``progress.png``: every epoch on a GPU, on the CPU when :func:`progress_plot_due` says so."""
        now = time.monotonic()
        if self.device.type != "cpu" or progress_plot_due(self.current_epoch, self.num_epochs, now - self._last_progress_plot):
            self._draw_progress_png(output_folder)
            self._last_progress_plot = now

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint, written to a temporary name and renamed (a kill never leaves half a file).

        A new ``checkpoint_latest.pth`` first moves the previous one to ``checkpoint_latest.prev.pth``:
        if the new file turns out unreadable, the runner resumes from the previous one.
        """
        if self.local_rank != 0 or self.disable_checkpointing:
            super().save_checkpoint(filename)  # nnU-Net's own no-op (or its message)
            return
        with atomic_output(filename) as tmp:
            super().save_checkpoint(str(tmp))
            if os.path.basename(filename) == LATEST:
                if os.path.isfile(filename):
                    os.replace(filename, os.path.join(os.path.dirname(filename), PREVIOUS_LATEST))
                self._last_latest_save = time.monotonic()

    def save_latest(self, epochs_done: int) -> None:
        """``checkpoint_latest.pth`` recording ``epochs_done`` finished epochs (the resume starts epoch ``epochs_done``)."""
        current = self.current_epoch
        self.current_epoch = epochs_done - 1  # nnU-Net stores current_epoch + 1
        try:
            self.save_checkpoint(os.path.join(self.output_folder, LATEST))
        finally:
            self.current_epoch = current

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        self.restored_from_checkpoint = True

    # -- stop signals ------------------------------------------------------------------------
    def _on_stop_signal(self, signum: int, frame: object) -> None:
        if os.getpid() != self._handler_pid:
            return  # an augmentation worker (forked with the handler): keep serving batches until shut down
        if self.stop_signal is None:
            self.stop_signal = signum
            print(f"received {signal.Signals(signum).name}: checkpoint_latest is saved after this iteration, then the "
                  f"training exits for the retry to resume", file=sys.stderr, flush=True)

    def install_stop_handlers(self) -> None:
        """SIGTERM/SIGUSR1 only set a flag; the loop saves at the next iteration or epoch end and exits.

        Installed before nnU-Net forks its augmentation workers, which inherit the handler and so
        survive the signal that SLURM sends to every process of the step, until the trainer ends them.
        """
        self._handler_pid = os.getpid()
        for signum in STOP_SIGNALS:
            previous = signal.signal(signum, self._on_stop_signal)
            self._previous_handlers.setdefault(signum, previous)

    def restore_signal_handlers(self) -> None:
        """Put back the handlers :meth:`install_stop_handlers` replaced. A process that trains in-process
        (tests, notebooks) would otherwise keep a handler whose forked children ignore SIGTERM, and a
        later ``multiprocessing.Pool`` would hang in ``terminate()`` waiting for them."""
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers.clear()

    def stop_after_signal(self) -> None:
        """Shut the data loaders down and exit with 128 + signal number (a failure Snakemake retries)."""
        self.shut_down_data_loaders()
        signum = int(self.stop_signal or signal.SIGTERM)
        raise StopTraining(128 + signum)

    def shut_down_data_loaders(self) -> None:
        """End nnU-Net's augmentation worker processes (before an early exit)."""
        from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter
        from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter

        for loader in (self.dataloader_train, self.dataloader_val):
            if isinstance(loader, (NonDetMultiThreadedAugmenter, MultiThreadedAugmenter)):
                loader._finish()

    def _stop_mid_epoch_if_signalled(self, where: str) -> None:
        """After a stop signal: save ``checkpoint_latest`` with this epoch unfinished, log it, and exit."""
        if self.stop_signal is None:
            return
        self.save_latest(self.current_epoch)
        self.print_to_log_file(
            f"{signal.Signals(self.stop_signal).name}: {SIGNAL_SAVED_LATEST} mid-epoch {self.current_epoch}{where}; "
            f"the retry restarts epoch {self.current_epoch}"
        )
        self.stop_after_signal()

    # -- nnU-Net's hooks ---------------------------------------------------------------------
    def run_training(self) -> None:
        """nnU-Net's training loop; the stop-signal handlers live only as long as it runs."""
        try:
            super().run_training()
        finally:
            if os.getpid() == getattr(self, "_handler_pid", None):
                self.restore_signal_handlers()

    def on_train_start(self) -> None:
        """Stop handlers first (before nnU-Net forks its workers), then nnU-Net's start."""
        self.install_stop_handlers()
        super().on_train_start()
        self._last_latest_save = time.monotonic()

    def train_step(self, batch: dict) -> dict:
        """nnU-Net's step; after a stop signal, save with this epoch unfinished (it is redone on resume)."""
        result = super().train_step(batch)
        self._stop_mid_epoch_if_signalled("")
        return result

    def validation_step(self, batch: dict) -> dict:
        """nnU-Net's step; after a stop signal, save at once (this epoch redone on resume) rather than
        finish the validation batches, so that the save ends well inside SLURM's KillWait."""
        result = super().validation_step(batch)
        self._stop_mid_epoch_if_signalled(" (during validation)")
        return result

    def on_epoch_end(self) -> None:
        """nnU-Net's epoch end, plus ``checkpoint_latest`` every :attr:`checkpoint_minutes` or after a stop signal."""
        epoch = self.current_epoch
        super().on_epoch_end()  # increments current_epoch; saves latest every save_every epochs
        if epoch == self.num_epochs - 1:
            return  # on_train_end writes checkpoint_final next
        due = self.checkpoint_minutes is not None and time.monotonic() - self._last_latest_save >= self.checkpoint_minutes * 60
        if self.stop_signal is not None or due:
            if not (epoch + 1) % self.save_every == 0:  # nnU-Net has not just saved it
                self.save_latest(epoch + 1)
        if self.stop_signal is not None:
            self.print_to_log_file(f"{signal.Signals(self.stop_signal).name}: {SIGNAL_SAVED_LATEST} after epoch {epoch}; "
                                   f"the retry starts epoch {epoch + 1}")
            self.stop_after_signal()

    def on_train_end(self) -> None:
        """nnU-Net's end (checkpoint_final, latest removed), the previous latest removed too; exit if signalled."""
        super().on_train_end()
        previous = os.path.join(self.output_folder, PREVIOUS_LATEST)
        if self.local_rank == 0 and os.path.isfile(previous):
            os.remove(previous)
        if self.stop_signal is not None:
            self.print_to_log_file(f"{signal.Signals(self.stop_signal).name} {SIGNAL_AFTER_LAST_EPOCH}: checkpoint_final is "
                                   "written; the retry runs the final validation")
            raise StopTraining(128 + int(self.stop_signal))
