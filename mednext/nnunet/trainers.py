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
from mednext.nnunet.paths import final_checkpoint

ENV_EPOCHS = "MEDNEXT_EPOCHS"
ENV_ITERS = "MEDNEXT_ITERS"
ENV_VAL_ITERS = "MEDNEXT_VAL_ITERS"
ENV_SAVE_EVERY = "MEDNEXT_SAVE_EVERY"
#: When truthy, a fresh run saves its weights right after initialisation (UpKern included).
ENV_SAVE_INITIAL = "MEDNEXT_SAVE_INITIAL_WEIGHTS"
#: When falsy (``0``), inference and the final validation run without mirroring test-time
#: augmentation (8x fewer forward passes, for the CPU demo); the paper's validation mirrors (§3.1).
ENV_MIRRORING = "MEDNEXT_TTA_MIRRORING"
INITIAL_WEIGHTS_FILE = "initial_weights.pth"
UPKERN_REPORT_FILE = "upkern.json"

#: MedNeXt deep supervision: full resolution and 4 heads at 1/2 .. 1/16 (Fig. 1a).
DS_OUTPUTS = 5
#: Official v1 loss weights for the 5 outputs, [16, 8, 4, 2, 1] / 31
#: (shared/reference/mednext_official.md §4; nnU-Net v2 would give the 1/16 head weight 0).
DS_LOSS_WEIGHTS: tuple[float, ...] = tuple(float(w) for w in np.array([16, 8, 4, 2, 1]) / 31)


@dataclass(frozen=True)
class Schedule:
    """Epochs, iterations per epoch, validation iterations and checkpoint period.

    Paper default (§3.1, nnU-Net's): 1000 epochs x 250 iterations, 50 validation batches,
    ``checkpoint_latest`` every 50 epochs. The ``MEDNEXT_*`` variables shrink it for demos/tests.
    """

    epochs: int = 1000
    iters: int = 250
    val_iters: int = 50
    save_every: int = 50

    _ENV: ClassVar[dict[str, str]] = {
        "epochs": ENV_EPOCHS,
        "iters": ENV_ITERS,
        "val_iters": ENV_VAL_ITERS,
        "save_every": ENV_SAVE_EVERY,
    }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Schedule:
        """The default schedule with any ``MEDNEXT_*`` variable set in ``environ`` applied."""
        environ = dict(os.environ) if environ is None else environ
        values = {}
        for attribute, var in cls._ENV.items():
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(f"${var} must be a positive integer, found {raw!r}")
            values[attribute] = value
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables that make :meth:`from_env` return this schedule."""
        return {var: str(getattr(self, attribute)) for attribute, var in self._ENV.items()}


def _unwrap(network: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    module = network.module if isinstance(network, torch.nn.parallel.DistributedDataParallel) else network
    return module._orig_mod if isinstance(module, OptimizedModule) else module


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "t", "yes", "y")


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

    def save_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint, written to a temporary name and renamed (a kill never leaves half a file)."""
        tmp = filename + ".tmp"
        super().save_checkpoint(tmp)
        if os.path.isfile(tmp):
            os.replace(tmp, filename)

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        super().load_checkpoint(filename_or_checkpoint)
        self.restored_from_checkpoint = True

    def on_train_start(self) -> None:
        """nnU-Net's start, then (fresh runs only) the UpKern start and the optional initial snapshot."""
        super().on_train_start()
        if self.restored_from_checkpoint:
            return
        self.initialise_from_parent()
        if _truthy(os.environ.get(ENV_SAVE_INITIAL)) and self.local_rank == 0:
            state = {k: v.detach().cpu().clone() for k, v in _unwrap(self.network).state_dict().items()}
            _atomic_save(state, Path(self.output_folder) / INITIAL_WEIGHTS_FILE)

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
