"""nnU-Net v2 trainer bases: one per family; each registered network is a tiny generated subclass.

- :class:`ReproTrainer`: nnU-Net's architecture and training loop with the registry's optimiser
  and learning rate, the schedule from the environment, UpKern starts, atomic checkpoints. Used
  as is for the nnU-Net baseline.
- :class:`DeepSupervisedTrainer`: a registry-built network with MedNeXt-style deep supervision
  (``do_ds`` switch, 5 outputs at scales 1/2**i). The four fixes of
  shared/reference/install_and_integration_trials.md §4: ``do_ds`` instead of
  ``decoder.deep_supervision``; isotropic 5-level target scales; a list in eval mode (the project's
  MedNeXt already returns one); heads always built so inference checkpoints load.
- :class:`NoDeepSupervisionTrainer`: a registry-built network without deep supervision (baselines).

The training loop is nnU-Net's; nothing here forks it (§3.1: "training schedule ... remain[s]
unchanged").
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn
from torch._dynamo import OptimizedModule

from mednext.networks import NetworkSpec, get_network, lr_for
from mednext.nnunet.checkpoints import network_weights
from mednext.nnunet.job_settings import (  # noqa: F401  (re-exported: the trainers' environment and file names)
    ENV_EPOCHS,
    ENV_ITERS,
    ENV_VAL_ITERS,
    ENV_SAVE_EVERY,
    ENV_SAVE_INITIAL,
    ENV_MIRRORING,
    ENV_CHECKPOINT_MINUTES,
    ENV_GRADIENT_CHECKPOINTING,
    ENV_AUTOCAST_DTYPE,
    ENV_CHANNELS_LAST,
    ENV_CPU_THREADS,
    STOP_SIGNALS,
    LATEST_CHECKPOINT,
    PREVIOUS_LATEST_CHECKPOINT,
    INITIAL_WEIGHTS_FILE,
    UPKERN_REPORT_FILE,
    Schedule,
)
from mednext.nnunet.paths import final_checkpoint

#: MedNeXt deep supervision: full resolution and 4 heads at 1/2 .. 1/16 (Fig. 1a).
DS_OUTPUTS = 5
#: Official v1 loss weights for the 5 outputs, [16, 8, 4, 2, 1] / 31
#: (shared/reference/mednext_official.md §4; nnU-Net v2 would give the 1/16 head weight 0).
DS_LOSS_WEIGHTS: tuple[float, ...] = tuple(float(w) for w in np.array([16, 8, 4, 2, 1]) / 31)


def _unwrap(network: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    module = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
    return module._orig_mod if isinstance(module, OptimizedModule) else module


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "t", "yes", "y")


def checkpoint_minutes_from_env(environ: dict[str, str] | None = None) -> float:
    """``$MEDNEXT_CHECKPOINT_MINUTES`` as a positive number (default 30)."""
    raw = (os.environ if environ is None else environ).get(ENV_CHECKPOINT_MINUTES, "") or "30"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"${ENV_CHECKPOINT_MINUTES} must be a positive number of minutes, found {raw!r}")
    return value


def gradient_checkpointing_from_env(environ: dict[str, str] | None = None) -> bool | None:
    """``$MEDNEXT_GRADIENT_CHECKPOINTING``: None for auto (the network's default), True/False to force."""
    raw = ((os.environ if environ is None else environ).get(ENV_GRADIENT_CHECKPOINTING, "") or "auto").strip().lower()
    choices = {"auto": None, "on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
    if raw not in choices:
        raise ValueError(f"${ENV_GRADIENT_CHECKPOINTING} must be auto, on or off, found {raw!r}")
    return choices[raw]


def autocast_dtype_from_env(environ: dict[str, str] | None = None) -> torch.dtype:
    """``$MEDNEXT_AUTOCAST_DTYPE``: torch.float16 (default, nnU-Net's) or torch.bfloat16."""
    raw = ((os.environ if environ is None else environ).get(ENV_AUTOCAST_DTYPE, "") or "float16").strip().lower()
    choices = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if raw not in choices:
        raise ValueError(f"${ENV_AUTOCAST_DTYPE} must be float16 or bfloat16, found {raw!r}")
    return choices[raw]


#: nnU-Net redraws ``progress.png`` after every epoch (about 0.7 s of matplotlib on a CPU core). On the
#: CPU (the demo's few-second epochs) it is redrawn at most this often, and always after the last epoch;
#: on a GPU every epoch, as nnU-Net does.
PROGRESS_PLOT_MIN_SECONDS = 30.0


def progress_plot_due(epoch: int, num_epochs: int, seconds_since_last_plot: float) -> bool:
    """Whether a CPU training's epoch that just ended redraws ``progress.png``: the last epoch, or
    :data:`PROGRESS_PLOT_MIN_SECONDS` since the previous drawing (a process's first epoch always draws)."""
    return epoch >= num_epochs - 1 or seconds_since_last_plot >= PROGRESS_PLOT_MIN_SECONDS


class StopTraining(SystemExit):
    """Raised after the signal save: the process ends non-zero so that Snakemake retries and resumes."""


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class ReproTrainer(nnUNetTrainer):
    """nnU-Net trainer configured by a :class:`~mednext.networks.NetworkSpec` (set ``network_name``)."""

    network_name: ClassVar[str | None] = None

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),
    ) -> None:
        super().__init__(plans, configuration, fold, dataset_json, device)
        spec = self.network_spec()
        schedule = Schedule.from_env()
        self.num_epochs = schedule.epochs
        self.num_iterations_per_epoch = schedule.iters
        self.num_val_iterations_per_epoch = schedule.val_iters
        self.save_every = schedule.save_every
        self.initial_lr = lr_for(spec, self.plans_manager.dataset_name)
        self.weight_decay = spec.weight_decay
        self.enable_deep_supervision = spec.deep_supervision
        self.restored_from_checkpoint = False
        # Speed/memory knobs (issue 11, config `training:`); defaults are the official protocol.
        self.checkpoint_minutes = checkpoint_minutes_from_env()
        self.gradient_checkpointing = gradient_checkpointing_from_env()
        self.autocast_dtype = autocast_dtype_from_env()
        self.channels_last = _truthy(os.environ.get(ENV_CHANNELS_LAST, "0"))
        if self.device.type == "cuda" and self.autocast_dtype == torch.bfloat16:
            self.grad_scaler = None  # bf16 has fp32's exponent range: nothing to scale
        if self.device.type == "cpu" and os.environ.get(ENV_CPU_THREADS):
            # nnUNetv2_train sets torch's threads to every core of the machine; two such jobs on one
            # machine oversubscribe it (about 2.5x slower per iteration on 2 cores, measured).
            torch.set_num_threads(max(1, int(os.environ[ENV_CPU_THREADS])))
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

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """nnU-Net's augmentation settings; mirroring TTA dropped when ``$MEDNEXT_TTA_MIRRORING`` is 0."""
        settings = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        if not _truthy(os.environ.get(ENV_MIRRORING, "1")):
            self.inference_allowed_mirroring_axes = None
        return settings

    @classmethod
    def network_spec(cls) -> NetworkSpec:
        """The registry entry this trainer trains."""
        if cls.network_name is None:
            raise TypeError(f"{cls.__name__} is a base trainer; use a generated subclass (mednext.nnunet.trainer_classes)")
        return get_network(cls.network_name)

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, PolyLRScheduler]:
        """AdamW (§3.1) or nnU-Net's SGD, both with nnU-Net's poly schedule."""
        spec = self.network_spec()
        if spec.optimizer == "sgd":
            return super().configure_optimizers()
        optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay, eps=spec.adam_eps
        )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def initialize(self) -> None:
        """nnU-Net's set-up, then the gradient-checkpointing, autocast and memory-format settings."""
        was_initialized = self.was_initialized
        super().initialize()
        if not was_initialized:
            self.apply_speed_settings()

    def apply_speed_settings(self) -> None:
        """Apply :attr:`gradient_checkpointing`, :attr:`autocast_dtype` and :attr:`channels_last`.

        Autocast and channels-last only matter on CUDA (nnU-Net autocasts only there). Networks without
        MedNeXt's ``outside_block_checkpointing`` switch ignore a forced gradient-checkpointing setting.
        """
        network = _unwrap(self.network)
        if self.gradient_checkpointing is not None and hasattr(network, "outside_block_checkpointing"):
            network.outside_block_checkpointing = self.gradient_checkpointing
        if self.device.type == "cuda":
            torch.set_autocast_dtype("cuda", self.autocast_dtype)  # nnU-Net's autocast(...) takes the default dtype
            if self.channels_last and len(self.configuration_manager.patch_size) == 3:
                network.to(memory_format=torch.channels_last_3d)
            elif self.channels_last:
                network.to(memory_format=torch.channels_last)

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint, written to a temporary name and renamed (a kill never leaves half a file).

        A new ``checkpoint_latest.pth`` first moves the previous one to ``checkpoint_latest.prev.pth``:
        if the new file turns out unreadable, the runner resumes from the previous one (issue 11).
        """
        tmp = filename + ".tmp"
        super().save_checkpoint(tmp)
        if not os.path.isfile(tmp):
            return
        if os.path.basename(filename) == LATEST_CHECKPOINT:
            if os.path.isfile(filename):
                os.replace(filename, os.path.join(os.path.dirname(filename), PREVIOUS_LATEST_CHECKPOINT))
            self._last_latest_save = time.monotonic()
        os.replace(tmp, filename)

    def save_latest(self, epochs_done: int) -> None:
        """``checkpoint_latest.pth`` recording ``epochs_done`` finished epochs (the resume starts epoch ``epochs_done``)."""
        current = self.current_epoch
        self.current_epoch = epochs_done - 1  # nnU-Net stores current_epoch + 1
        try:
            self.save_checkpoint(os.path.join(self.output_folder, LATEST_CHECKPOINT))
        finally:
            self.current_epoch = current

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

    def run_training(self) -> None:
        """nnU-Net's training loop; the stop-signal handlers live only as long as it runs."""
        try:
            super().run_training()
        finally:
            if os.getpid() == getattr(self, "_handler_pid", None):
                self.restore_signal_handlers()

    def stop_after_signal(self) -> None:
        """Shut the data loaders down and exit with 128 + signal number (a failure Snakemake retries)."""
        from batchgenerators.dataloading.multi_threaded_augmenter import MultiThreadedAugmenter
        from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter

        for loader in (self.dataloader_train, self.dataloader_val):
            if isinstance(loader, (NonDetMultiThreadedAugmenter, MultiThreadedAugmenter)):
                loader._finish()
        signum = int(self.stop_signal or signal.SIGTERM)
        raise StopTraining(128 + signum)

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

    def _stop_mid_epoch_if_signalled(self, where: str) -> None:
        """After a stop signal: save ``checkpoint_latest`` with this epoch unfinished, log it, and exit."""
        if self.stop_signal is None:
            return
        self.save_latest(self.current_epoch)
        self.print_to_log_file(
            f"{signal.Signals(self.stop_signal).name}: saved checkpoint_latest mid-epoch {self.current_epoch}{where}; "
            f"the retry restarts epoch {self.current_epoch}"
        )
        self.stop_after_signal()

    def on_epoch_end(self) -> None:
        """nnU-Net's epoch end, plus ``checkpoint_latest`` every :attr:`checkpoint_minutes` or after a stop signal."""
        epoch = self.current_epoch
        super().on_epoch_end()  # increments current_epoch; saves latest every save_every epochs
        if epoch == self.num_epochs - 1:
            return  # on_train_end writes checkpoint_final next
        due = time.monotonic() - self._last_latest_save >= self.checkpoint_minutes * 60
        if self.stop_signal is not None or due:
            if not (epoch + 1) % self.save_every == 0:  # nnU-Net has not just saved it
                self.save_latest(epoch + 1)
        if self.stop_signal is not None:
            self.print_to_log_file(f"{signal.Signals(self.stop_signal).name}: saved checkpoint_latest after epoch {epoch}; "
                                   f"the retry starts epoch {epoch + 1}")
            self.stop_after_signal()

    def on_train_end(self) -> None:
        """nnU-Net's end (checkpoint_final, latest removed), the previous latest removed too; exit if signalled."""
        super().on_train_end()
        previous = os.path.join(self.output_folder, PREVIOUS_LATEST_CHECKPOINT)
        if self.local_rank == 0 and os.path.isfile(previous):
            os.remove(previous)
        if self.stop_signal is not None:
            self.print_to_log_file(f"{signal.Signals(self.stop_signal).name} after the last epoch: checkpoint_final is "
                                   "written; the retry runs the final validation")
            raise StopTraining(128 + int(self.stop_signal))

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        self.restored_from_checkpoint = True

    def on_train_start(self) -> None:
        """nnU-Net's start, the recipe card, then (fresh runs only) the UpKern start and the optional initial snapshot."""
        self.install_stop_handlers()
        super().on_train_start()
        self._last_latest_save = time.monotonic()
        self.write_recipe_card()
        if self.restored_from_checkpoint:
            return
        self.initialise_from_parent()
        if _truthy(os.environ.get(ENV_SAVE_INITIAL)) and self.local_rank == 0:
            state = {k: v.detach().cpu().clone() for k, v in _unwrap(self.network).state_dict().items()}
            _atomic_save(state, Path(self.output_folder) / INITIAL_WEIGHTS_FILE)

    def write_recipe_card(self) -> None:
        """``recipe.json`` in the fold folder: this run's effective recipe (rank 0; issue 10)."""
        if self.local_rank != 0:
            return
        from mednext.nnunet.recipe import build_recipe, write_recipe

        write_recipe(build_recipe(self), self.output_folder)

    def parent_checkpoint(self) -> Path | None:
        """Final checkpoint of ``init_from`` for this dataset, plans, configuration and fold."""
        spec = self.network_spec()
        if spec.init_from is None:
            return None
        parent = get_network(spec.init_from)
        results = Path(self.output_folder_base).parent.parent
        return final_checkpoint(
            results, self.plans_manager.dataset_name, parent.trainer_name, self.plans_manager.plans_name,
            self.configuration_name, self.fold,
        )

    def initialise_from_parent(self) -> None:
        """UpKern from the parent network's final checkpoint (§2.3); FileNotFoundError if it is missing."""
        from mednext.upkern import upkern_load

        source = self.parent_checkpoint()
        if source is None:
            return
        spec = self.network_spec()
        if not source.is_file():
            raise FileNotFoundError(
                f"{spec.name} starts from the final checkpoint of {spec.init_from} for the same dataset and fold, "
                f"expected at {source}; train {spec.init_from} fold {self.fold} first"
            )
        report = upkern_load(_unwrap(self.network), network_weights(source))
        if report.missing or report.unused:
            raise ValueError(
                f"UpKern from {source} into {spec.name} left keys unmatched: missing {report.missing[:5]}, "
                f"unused {report.unused[:5]} (init_from must be the same architecture up to kernel size)"
            )
        summary = {
            "network": spec.name,
            "init_from": spec.init_from,
            "source": str(source),
            "copied": len(report.copied),
            "resampled": len(report.resampled),
            "resampled_keys": report.resampled,
        }
        if self.local_rank == 0:
            target = Path(self.output_folder) / UPKERN_REPORT_FILE
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
            os.replace(tmp, target)
        self.print_to_log_file(
            f"UpKern: initialised {spec.name} from {source} "
            f"({len(report.copied)} tensors copied, {len(report.resampled)} kernels resampled)"
        )


class _RegistryBuiltTrainer(ReproTrainer):
    """Builds the network with the spec's builder instead of nnU-Net's plans architecture."""

    @classmethod
    def build_network_architecture(  # type: ignore[override]
        cls,
        plans_manager: PlansManager,
        configuration_manager: ConfigurationManager,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
    ) -> nn.Module:
        spec = cls.network_spec()
        patch = tuple(int(p) for p in configuration_manager.patch_size)
        bad = [p for p in patch if p % spec.input_divisor]
        if bad:
            raise ValueError(
                f"{spec.name} needs every patch axis divisible by {spec.input_divisor}, but plans "
                f"{plans_manager.plans_name!r} of {plans_manager.dataset_name} give patch {list(patch)} "
                f"(re-plan with a patch such as {[max(spec.input_divisor, p - p % spec.input_divisor) for p in patch]})"
            )
        if spec.builder is None:
            raise TypeError(f"network {spec.name!r} has no builder; it trains nnU-Net's architecture with ReproTrainer")
        return spec.builder(num_input_channels, num_output_channels, patch)


class DeepSupervisedTrainer(_RegistryBuiltTrainer):
    """Networks with MedNeXt's deep supervision: ``do_ds`` switch, 5 isotropic 2x-spaced outputs."""

    @classmethod
    def build_network_architecture(  # type: ignore[override]
        cls,
        plans_manager: PlansManager,
        configuration_manager: ConfigurationManager,
        num_input_channels: int,
        num_output_channels: int,
        enable_deep_supervision: bool = True,
    ) -> nn.Module:
        network = super().build_network_architecture(
            plans_manager, configuration_manager, num_input_channels, num_output_channels, enable_deep_supervision
        )
        if not hasattr(network, "do_ds"):
            raise TypeError(f"{cls.network_spec().name}: deep supervision needs a network with a 'do_ds' attribute, "
                            f"got {type(network).__name__}")
        network.do_ds = enable_deep_supervision  # heads always exist (fix 4); only the outputs switch
        return network

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        _unwrap(self.network).do_ds = enabled  # fix 1

    def _get_deep_supervision_scales(self) -> list[list[float]] | None:
        if not self.enable_deep_supervision:
            return None
        dim = len(self.configuration_manager.patch_size)
        return [[1 / 2**i] * dim for i in range(DS_OUTPUTS)]  # fix 2: matches MedNeXt's outputs

    def _build_loss(self) -> nn.Module:
        loss = super()._build_loss()
        if self.enable_deep_supervision:
            loss.weight_factors = DS_LOSS_WEIGHTS
        return loss


class NoDeepSupervisionTrainer(_RegistryBuiltTrainer):
    """Networks trained without deep supervision (the baselines, mednext_official.md §5)."""

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        return None
