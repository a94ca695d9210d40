"""The recipe card: the effective training recipe of one run, read from a real nnU-Net trainer.

:func:`build_recipe` reads an instantiated trainer (built from the dataset's plans, no training) and
returns a flat dict with stable snake_case keys: optimiser and its hyper-parameters after the
per-dataset lr overrides, schedule, sampling, normalisation, loss, deep supervision (weights, target
scales and downsampling), augmentation, precision, compile, gradient checkpointing, inference
settings, UpKern parent and the package versions that decide numerics. Augmentation, deep-supervision
targets, inference averaging and mixed precision are read from what nnU-Net builds and runs
(:mod:`mednext.nnunet.recipe_probes`).
Every training writes the same card as ``recipe.json`` into its fold folder when it starts
(:meth:`mednext.nnunet.trainers.ReproTrainer.on_train_start`); ``mednext-repro recipe`` prints it.
``paper_tables/reported/official_recipe.csv`` holds the official values for the same keys.

Values that nnU-Net hard-codes inside a method (gradient-clipping norm, validation tile step) are
read from the source of the method the trainer would run, so a subclass that changes them shows up.
The evaluation side of the protocol (regions, cross-validation aggregation) is added by
:mod:`mednext.statistics.evaluation_card`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mednext.nnunet.paths import temporary_environ
from mednext.nnunet.recipe_probes import augmentation_items, inference_averaging, mixed_precision, swapped

#: Bump when a key changes meaning or disappears (new keys keep the version).
CARD_VERSION = 1
RECIPE_FILE = "recipe.json"
#: Augmentation and deep-supervision target items (read from the built training pipeline).
AUGMENTATION_ITEMS: tuple[str, ...] = (
    "aug_rotation_deg", "aug_rotation_p", "aug_rotation_p_per_axis", "aug_scaling", "aug_scaling_p",
    "aug_scaling_same_for_all_axes", "aug_elastic_p", "aug_image_interpolation", "aug_seg_interpolation",
    "aug_noise_variance", "aug_noise_p", "aug_blur_sigma", "aug_blur_p", "aug_blur_p_per_channel", "aug_brightness",
    "aug_brightness_p", "aug_contrast", "aug_contrast_p", "aug_lowres_zoom", "aug_lowres_p", "aug_lowres_p_per_channel",
    "aug_lowres_upsampling", "aug_gamma", "aug_gamma_p", "aug_inverted_gamma_p", "aug_gamma_retain_stats",
    "augmentation_mirroring_axes", "ds_target_scales", "ds_target_downsampling",
)
#: The card's keys that the recipe parity test compares with the official code.
RECIPE_ITEMS: tuple[str, ...] = (
    "optimizer", "lr", "betas", "eps", "weight_decay", "momentum", "nesterov", "lr_schedule", "lr_exponent",
    "epochs", "iterations_per_epoch", "val_iterations_per_epoch", "batch_size", "patch_size", "target_spacing_mm",
    "normalization", "batch_dice", "loss", "dice_smooth", "dice_include_background", "deep_supervision_weights",
    "grad_clip_norm", "amp", "amp_dtype", "amp_grad_scaler", "compile", "gradient_checkpointing",
    "foreground_oversampling", "mirroring_axes", "sliding_window_step", "sliding_window_gaussian",
    "inference_averaging", "upkern_parent", "nnunet_base_features", "zero_dice_rescue", *AUGMENTATION_ITEMS,
)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _source_constant(cls: type, method: str, pattern: str) -> float | None:
    """The first number ``pattern`` captures in the source of ``method`` along ``cls``'s MRO."""
    for klass in cls.__mro__:
        func = klass.__dict__.get(method)
        if func is None:
            continue
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError):
            continue
        match = re.search(pattern, source)
        if match:
            return float(match.group(1))
    return None


def _source_text(cls: type, method: str) -> str:
    for klass in cls.__mro__:
        func = klass.__dict__.get(method)
        if func is not None:
            try:
                return inspect.getsource(func)
            except (OSError, TypeError):
                return ""
    return ""


def _optimizer_and_scheduler(trainer: Any) -> tuple[torch.optim.Optimizer, Any]:
    """The trainer's optimiser and scheduler; before ``initialize()``, its own ``configure_optimizers``
    run on a one-parameter stand-in network (the hyper-parameters do not depend on the network)."""
    if getattr(trainer, "optimizer", None) is not None:
        return trainer.optimizer, trainer.lr_scheduler
    with swapped(trainer, "network", nn.Linear(1, 1)):
        return trainer.configure_optimizers()


def _inner_loss(loss: nn.Module) -> tuple[nn.Module, list[float] | None]:
    """The compound loss inside nnU-Net's deep-supervision wrapper, and the wrapper's weights."""
    weights = getattr(loss, "weight_factors", None)
    inner = getattr(loss, "loss", None) if weights is not None else None
    if inner is None:
        return loss, None
    return inner, [round(float(w), 8) for w in weights]


def _compiles_on(trainer: Any, device: torch.device) -> bool:
    """nnU-Net's own decision (``_do_i_compile``) for ``device``."""
    with swapped(trainer, "device", device):
        return bool(trainer._do_i_compile())


def _gradient_checkpointing(trainer: Any, spec: Any) -> bool:
    """The trainer's decision (``training.gradient_checkpointing``, for ``auto`` with a GPU rehearsal:
    :mod:`mednext.nnunet.checkpointing_choice`), else the network's default (M, L on)."""
    from mednext.nnunet.checkpointing_choice import network_checkpoints_by_default

    decided = getattr(trainer, "gradient_checkpointing", None)
    if decided is not None:
        return bool(decided)
    return spec is not None and network_checkpoints_by_default(spec.name)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, Any]:
    """Versions that decide the numerics: torch, CUDA/cuDNN (when present), nnunetv2, monai."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "nnunetv2": _version("nnunetv2"),
        "monai": _version("monai"),
        "dynamic_network_architectures": _version("dynamic_network_architectures"),
    }


def build_recipe(trainer: Any) -> dict[str, Any]:
    """The recipe card of ``trainer`` (an nnU-Net trainer instance; ``initialize()`` not needed).

    The trainer's device is the one the run trains on: nnU-Net decides AMP (its grad scaler is built
    with the trainer) and compile from it.
    """
    target = trainer.device
    spec = trainer.network_spec() if hasattr(trainer, "network_spec") else None
    config = trainer.configuration_manager
    optimizer, scheduler = _optimizer_and_scheduler(trainer)
    defaults = optimizer.defaults
    is_sgd = isinstance(optimizer, torch.optim.SGD)
    loss = trainer.loss if getattr(trainer, "loss", None) is not None else trainer._build_loss()
    inner, ds_weights = _inner_loss(loss)
    dice = getattr(inner, "dc", None)
    augmentation = augmentation_items(trainer)  # builds the pipeline, which also sets the test-time mirror axes
    tta_axes = trainer.inference_allowed_mirroring_axes
    precision = mixed_precision(trainer)
    channels = trainer.dataset_json.get("channel_names", trainer.dataset_json.get("modality", {}))
    normalization = [
        f"{channels.get(str(i), i)}:{scheme}{'+mask' if mask else ''}"
        for i, (scheme, mask) in enumerate(zip(config.normalization_schemes, config.use_mask_for_norm))
    ]
    parent = trainer.parent_checkpoint() if hasattr(trainer, "parent_checkpoint") else None
    arch = config.configuration.get("architecture", {}).get("arch_kwargs", {})
    autocast_dtype = getattr(trainer, "autocast_dtype", None) or torch.get_autocast_dtype("cuda")
    rescue = getattr(trainer, "rescue", None)  # mednext.nnunet.rescue.RescueState of the project's trainers
    card: dict[str, Any] = {
        "card_version": CARD_VERSION,
        "network": spec.name if spec else None,
        "network_family": spec.family if spec else None,
        "trainer": type(trainer).__name__,
        "dataset": trainer.plans_manager.dataset_name,
        "plans": trainer.plans_manager.plans_name,
        "configuration": trainer.configuration_name,
        "fold": trainer.fold,
        "device": target.type,
        "optimizer": type(optimizer).__name__,
        "lr": float(trainer.initial_lr),
        "betas": None if is_sgd else [float(b) for b in defaults.get("betas", ())],
        "eps": None if is_sgd else _float(defaults.get("eps")),
        "weight_decay": _float(defaults.get("weight_decay")),
        "momentum": _float(defaults.get("momentum")) if is_sgd else None,
        "nesterov": bool(defaults.get("nesterov")) if is_sgd else None,
        "lr_schedule": "poly" if type(scheduler).__name__ == "PolyLRScheduler" else type(scheduler).__name__,
        "lr_exponent": _float(getattr(scheduler, "exponent", None)),
        "epochs": int(trainer.num_epochs),
        "iterations_per_epoch": int(trainer.num_iterations_per_epoch),
        "val_iterations_per_epoch": int(trainer.num_val_iterations_per_epoch),
        "batch_size": int(config.batch_size),
        "patch_size": [int(p) for p in config.patch_size],
        "target_spacing_mm": [float(s) for s in config.spacing],
        "normalization": normalization,
        "batch_dice": bool(config.batch_dice),
        "loss": type(inner).__name__,
        "dice_batch": None if dice is None else bool(getattr(dice, "batch_dice", False)),
        "dice_smooth": None if dice is None else _float(getattr(dice, "smooth", None)),
        "dice_include_background": None if dice is None else bool(getattr(dice, "do_bg", False)),
        "deep_supervision": bool(trainer.enable_deep_supervision),
        "deep_supervision_weights": ds_weights,
        "grad_clip_norm": _source_constant(type(trainer), "train_step", r"clip_grad_norm_\([^,]+,\s*([0-9.eE+-]+)\)"),
        "amp": precision["amp"],
        "amp_dtype": str(autocast_dtype).replace("torch.", "") if precision["amp"] else None,
        "amp_grad_scaler": precision["amp_grad_scaler"],
        "compile": _compiles_on(trainer, target),
        "gradient_checkpointing": _gradient_checkpointing(trainer, spec),
        # how it was decided (training.gradient_checkpointing auto/on/off) and the rehearsal figures it rests on
        "gradient_checkpointing_choice": (trainer.checkpointing_choice.record()
                                          if getattr(trainer, "checkpointing_choice", None) is not None else None),
        "channels_last": bool(getattr(trainer, "channels_last", False)),
        "checkpoint_minutes": _float(getattr(trainer, "checkpoint_minutes", None)),
        "checkpoint_every_epochs": int(trainer.save_every),
        "foreground_oversampling": float(trainer.oversample_foreground_percent),
        "probabilistic_oversampling": bool(getattr(trainer, "probabilistic_oversampling", False)),
        "mirroring_axes": None if tta_axes is None else [int(a) for a in tta_axes],
        "sliding_window_step": _source_constant(type(trainer), "perform_actual_validation", r"tile_step_size=([0-9.]+)"),
        "sliding_window_gaussian": "use_gaussian=True" in _source_text(type(trainer), "perform_actual_validation"),
        "inference_averaging": inference_averaging(trainer),
        "upkern_parent": spec.init_from if spec else None,
        "upkern_parent_checkpoint": None if parent is None else str(parent),
        "nnunet_base_features": int(arch["features_per_stage"][0]) if spec and spec.builder is None and arch else None,
        "zero_dice_rescue": bool(getattr(trainer, "zero_dice_rescue", False)),
        "zero_dice_rescue_epoch": rescue.epoch if rescue is not None else None,
        "zero_dice_rescue_fired_at_epoch": rescue.fired_at_epoch if rescue is not None else None,
        **augmentation,
        "versions": package_versions(),
    }
    return card


def write_recipe(card: dict[str, Any], fold_dir: str | Path) -> Path:
    """``fold_dir/recipe.json``, written to a temporary name and renamed."""
    from mednext.atomic import atomic_write_text

    return atomic_write_text(Path(fold_dir) / RECIPE_FILE, json.dumps(card, indent=2) + "\n")


def trainer_for_plans(plans_file: str | Path, network: str, fold: int | str = 0, configuration: str | None = None,
                      job: Any = None, device: str = "cpu") -> Any:
    """An instance of ``network``'s trainer built from ``plans_file`` for ``device``, without side effects.

    Nothing is moved to the device (building for ``cuda`` works without a GPU: nnU-Net only builds
    its grad scaler for it).

    ``job`` (a :class:`~mednext.nnunet.job_settings.TrainingJob`) is what the training would receive;
    default: the paper's settings. nnU-Net's constructor makes the fold folder and a log file: they go
    to a temporary results folder; the UpKern parent is still looked up under the real
    ``$nnUNet_results`` when set.
    """
    from mednext.networks import get_network
    from mednext.nnunet.paths import run_folder
    from mednext.nnunet.trainer_classes import trainer_for_network

    plans_file = Path(plans_file)
    if not plans_file.is_file():
        raise FileNotFoundError(f"plans file {plans_file} not found; run `mednext-repro plan` for this dataset first")
    dataset_json_file = plans_file.parent / "dataset.json"
    if not dataset_json_file.is_file():
        raise FileNotFoundError(f"{dataset_json_file} not found next to the plans {plans_file} (nnU-Net's planner copies it)")
    try:
        plans = json.loads(plans_file.read_text())
        dataset_json = json.loads(dataset_json_file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{plans_file.parent}: unreadable JSON: {error}") from None
    spec = get_network(network)
    configuration = configuration or spec.configuration
    if configuration not in plans.get("configurations", {}):
        raise ValueError(f"plans {plans_file} have no configuration {configuration!r} "
                         f"(found {sorted(plans.get('configurations', {}))})")
    fold_value: int | str = fold if str(fold) == "all" else int(fold)
    real_results = os.environ.get("nnUNet_results")
    cls = trainer_for_network(network)
    job_env = {} if job is None else job.to_env()
    with tempfile.TemporaryDirectory(prefix="mednext_recipe_") as tmp, \
            temporary_environ({"nnUNet_results": tmp, **job_env}), contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings():
        # nnU-Net builds a grad scaler for a CUDA trainer; on a machine without a GPU torch warns that
        # it disables it, which is expected here (nothing runs on the device)
        warnings.filterwarnings("ignore", message=".*GradScaler is enabled, but CUDA is not available.*")
        trainer = cls(plans={**plans, "continue_training": False}, configuration=configuration, fold=fold_value,
                      dataset_json=dataset_json, device=torch.device(device))
    if real_results:
        trainer.output_folder_base = str(run_folder(Path(real_results), plans["dataset_name"], cls.__name__,
                                                    plans["plans_name"], configuration))
        trainer.output_folder = os.path.join(trainer.output_folder_base, f"fold_{fold_value}")
    trainer.print_to_log_file = lambda *args, **kwargs: None  # the temporary log is gone
    return trainer



def recipe_for_plans(
    plans_file: str | Path,
    network: str,
    fold: int | str = 0,
    configuration: str | None = None,
    device: str = "cuda",
    job: Any = None,
) -> dict[str, Any]:
    """The card of ``network`` trained on ``device`` with ``plans_file`` (built for it, nothing run on it).

    ``job`` (a :class:`~mednext.nnunet.job_settings.TrainingJob`, default the paper's settings) is what
    the training would receive; its ``compile`` becomes ``nnUNet_compile`` and nnU-Net's own
    ``_do_i_compile`` then decides for ``device``.
    """
    trainer = trainer_for_plans(plans_file, network, fold, configuration, job, device)
    with temporary_environ({"nnUNet_compile": "1" if trainer.settings.compile else "0"}):
        return build_recipe(trainer)


def format_recipe(card: dict[str, Any]) -> str:
    """A plain-text view of the card for people: one ``key: value`` line each, versions last."""
    width = max(len(k) for k in card)
    lines = [f"recipe of {card.get('network')} on {card.get('dataset')} ({card.get('configuration')}, fold {card.get('fold')}, "
             f"{card.get('device')})"]
    for key, value in card.items():
        if key == "versions":
            continue
        lines.append(f"  {key.ljust(width)}  {_plain(value)}")
    versions = card.get("versions", {})
    lines.append("  versions" + "".ljust(width - 6) + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None))
    return "\n".join(lines)


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    return "-" if value is None else str(value)
