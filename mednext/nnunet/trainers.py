"""nnU-Net v2 trainer bases for the paper's recipe: one per family; each network is a tiny generated subclass.

- :class:`ReproTrainer`: nnU-Net's architecture and training loop with the registry's optimiser and
  learning rate, the job's settings (:class:`~mednext.nnunet.job_settings.TrainingJob`), UpKern starts
  and the recipe card; resumability comes from :class:`~mednext.nnunet.resumable.ResumableTrainer`,
  the divergence guard and the official epoch-100 rescue from :class:`~mednext.nnunet.guarded.GuardedTrainer`.
  Used as is for the nnU-Net baseline.
- :class:`DeepSupervisedTrainer`: a registry-built network with MedNeXt's deep supervision (5 outputs
  at scales 1/2**i, official loss weights 16:8:4:2:1). nnU-Net v2 would switch deep supervision
  through ``decoder.deep_supervision`` and derive 6 anisotropic scales from the plans' pooling; the
  project's MedNeXt has a ``do_ds`` switch, isotropic 2x downsampling between its 5 outputs, returns
  one tensor in eval mode and always builds its heads so that inference checkpoints load.
- :class:`NoDeepSupervisionTrainer`: a registry-built network without deep supervision (baselines).

The training loop is nnU-Net's; nothing here forks it (§3.1: the training schedule and the rest of
nnU-Net's pipeline "remain unchanged").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from torch import nn
from torch._dynamo import OptimizedModule

from mednext.atomic import atomic_write_text
from mednext.networks import NetworkSpec, get_network, lr_for
from mednext.nnunet.checkpointing_choice import choice_for_job
from mednext.nnunet.checkpoints import INITIAL_WEIGHTS_FILE, LATEST, UPKERN_REPORT_FILE, network_weights
from mednext.nnunet.divergence import NonFiniteLossGuard
from mednext.nnunet.guarded import GuardedTrainer
from mednext.nnunet.job_settings import TrainingJob, TrainingSettings
from mednext.nnunet.paths import final_checkpoint
from mednext.nnunet.rescue import RescueState
from mednext.nnunet.resumable import ResumableTrainer, save_atomically

#: MedNeXt deep supervision: full resolution and 4 heads at 1/2 .. 1/16 (Fig. 1a).
DS_OUTPUTS = 5
#: Official loss weights of the 5 outputs, [16, 8, 4, 2, 1] / 31 (official
#: ``nnUNetTrainerV2_MedNeXt.py``: 1/2**i normalised; nnU-Net v2 would give the 1/16 head weight 0).
DS_LOSS_WEIGHTS: tuple[float, ...] = tuple(float(w) for w in np.array([16, 8, 4, 2, 1]) / 31)
_AUTOCAST_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _unwrap(network: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    module = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
    return module._orig_mod if isinstance(module, OptimizedModule) else module


def _gpu_model(device: torch.device) -> str | None:
    """The model name of the GPU a training runs on (None on the CPU)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(device)


def job_for(dataset_folder: str) -> TrainingJob:
    """The job of this process: ``$MEDNEXT_TRAINING_JOB`` (``mednext-repro train``), else the paper's
    settings, with the dataset's registry key found from its nnU-Net folder (a plain ``nnUNetv2_train``)."""
    from mednext.data.errors import UnknownDatasetError
    from mednext.data.registry import get_dataset

    job = TrainingJob.from_env()
    if job is not None:
        return job
    try:
        key: str | None = get_dataset(dataset_folder).key
    except UnknownDatasetError:
        key = None
    return TrainingJob(TrainingSettings.paper(), key)


class ReproTrainer(ResumableTrainer, GuardedTrainer):
    """nnU-Net trainer configured by a :class:`~mednext.networks.NetworkSpec` (set ``network_name``).

    The guards come after the resumable trainer in the bases, so that the rescue runs before its saves.
    """

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
        self.job = job_for(self.plans_manager.dataset_name)
        settings = self.settings = self.job.settings
        self.num_epochs = settings.epochs
        self.num_iterations_per_epoch = settings.iterations_per_epoch
        self.num_val_iterations_per_epoch = settings.val_iterations
        self.save_every = settings.save_every
        self.checkpoint_minutes = settings.checkpoint_minutes
        self.rescue = RescueState(epoch=settings.rescue_epoch)
        self.loss_guard = NonFiniteLossGuard(settings.divergence_patience)
        self.initial_lr = lr_for(spec, self.job.dataset, settings.lr_overrides)
        self.weight_decay = spec.weight_decay
        self.enable_deep_supervision = spec.deep_supervision
        # auto: the network's default, unless a GPU rehearsal showed its peak without checkpointing fits this GPU
        self.checkpointing_choice = choice_for_job(spec.name, settings.gradient_checkpointing, self.job.gpu_rehearsal,
                                                   _gpu_model(self.device))
        self.gradient_checkpointing = self.checkpointing_choice.enabled
        self.autocast_dtype = _AUTOCAST_DTYPES[settings.autocast_dtype]
        self.channels_last = settings.channels_last
        if self.device.type == "cuda" and self.autocast_dtype == torch.bfloat16:
            self.grad_scaler = None  # bf16 has fp32's exponent range: nothing to scale
        if self.device.type == "cpu" and self.job.cpu_threads:
            # nnUNetv2_train sets torch's threads to every core of the machine; two such jobs on one
            # machine oversubscribe it (about 2.5x slower per iteration on 2 cores, measured).
            torch.set_num_threads(max(1, self.job.cpu_threads))

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        """nnU-Net's augmentation settings; mirroring TTA dropped with ``training.tta_mirroring: false``."""
        augmentation = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        if not self.settings.tta_mirroring:
            self.inference_allowed_mirroring_axes = None
        return augmentation

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

    def on_train_start(self) -> None:
        """nnU-Net's start, the recipe card, then (fresh runs only) the UpKern start and the optional initial snapshot."""
        super().on_train_start()
        self.write_recipe_card()
        if self.restored_from_checkpoint:
            return
        self.initialise_from_parent()
        if self.settings.save_initial_weights and self.local_rank == 0:
            state = {k: v.detach().cpu().clone() for k, v in _unwrap(self.network).state_dict().items()}
            save_atomically(state, Path(self.output_folder) / INITIAL_WEIGHTS_FILE)

    def save_checkpoint(self, filename: str) -> None:
        """The resumable trainer's atomic save, except ``checkpoint_latest`` while the loss is non-finite: the
        weights may be diverging, and the latest good checkpoint is what a retry after the guard resumes from."""
        if self.loss_guard.consecutive and os.path.basename(filename) == LATEST:
            self.print_to_log_file(f"{LATEST} not written: the training loss has been non-finite for the last "
                                   f"{self.loss_guard.consecutive} iterations; the previous one stays")
            return
        super().save_checkpoint(filename)

    def after_rescue(self) -> None:
        """The recipe card again, now saying that (and when) the rescue fired; and ``checkpoint_latest`` again
        when nnU-Net wrote it at this epoch's end, just before the rescue: a resume from it would skip the rescue."""
        self.write_recipe_card()
        epochs_done = self.current_epoch  # nnU-Net's epoch end has counted the epoch
        if epochs_done % self.save_every == 0 and epochs_done < self.num_epochs:
            self.save_latest(epochs_done)

    def write_recipe_card(self) -> None:
        """``recipe.json`` in the fold folder: this run's effective recipe (rank 0)."""
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
            atomic_write_text(Path(self.output_folder) / UPKERN_REPORT_FILE, json.dumps(summary, indent=2) + "\n")
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
        network.do_ds = enable_deep_supervision  # heads always exist (checkpoints load at inference); only the outputs switch
        return network

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        _unwrap(self.network).do_ds = enabled  # not nnU-Net's decoder.deep_supervision

    def _get_deep_supervision_scales(self) -> list[list[float]] | None:
        if not self.enable_deep_supervision:
            return None
        dim = len(self.configuration_manager.patch_size)
        return [[1 / 2**i] * dim for i in range(DS_OUTPUTS)]  # MedNeXt's outputs, not the plans' pooling

    def _build_loss(self) -> nn.Module:
        loss = super()._build_loss()
        if self.enable_deep_supervision:
            loss.weight_factors = DS_LOSS_WEIGHTS
        return loss


class NoDeepSupervisionTrainer(_RegistryBuiltTrainer):
    """Networks trained without deep supervision (the baselines: the official baseline trainers subclass
    nnU-Net's no-deep-supervision trainer)."""

    def set_deep_supervision_enabled(self, enabled: bool) -> None:
        return None
