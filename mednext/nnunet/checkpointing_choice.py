"""``gradient_checkpointing: auto`` as a measured decision (``training.gradient_checkpointing``).

The official MedNeXt code trains M and L with gradient checkpointing (``create_mednext_v1``,
``checkpoint_style='outside_block'``) so that they fit a 40 GB card; checkpointing recomputes the
forward pass of every block in the backward pass, with the same numerics and about a third more
time. ``auto`` keeps the network's own default unless a GPU rehearsal (``mednext-repro rehearse
--device cuda``) measured the network without checkpointing on the same GPU model and its peak
reserved memory x a stated margin fits the device: then the training runs without it. ``on`` and
``off`` force it either way. The choice, its reason and the figures it rests on go on the recipe
card and into provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

SETTINGS: tuple[str, ...] = ("auto", "on", "off")


@dataclass(frozen=True)
class CheckpointingChoice:
    """Whether a training checkpoints, the setting it came from, why, and the measurement behind it."""

    enabled: bool
    setting: str
    reason: str
    measured_reserved_mb: float | None = None
    device: str | None = None
    device_memory_mb: float | None = None
    margin: float | None = None

    def record(self) -> dict[str, Any]:
        """The choice as a plain mapping (recipe card, provenance)."""
        return asdict(self)


def normalise_setting(setting: object) -> str:
    """``auto``/``on``/``off`` from a config value (YAML reads bare on/off as booleans)."""
    if isinstance(setting, bool):
        return "on" if setting else "off"
    value = str(setting).strip().lower()
    if value not in SETTINGS:
        raise ValueError(f"gradient_checkpointing must be one of {SETTINGS}, found {setting!r}")
    return value


def network_checkpoints_by_default(network: str) -> bool:
    """The official default of ``network``: on for MedNeXt M and L (and ablations built on them), off otherwise."""
    from mednext.network.variants import VARIANTS
    from mednext.networks import get_network

    spec = get_network(network)
    if spec.family not in ("mednext", "ablation"):
        return False
    variant = next((t for t in spec.tags if t in VARIANTS), None)
    return bool(variant and VARIANTS[variant].gradient_checkpointing)


def choose_gradient_checkpointing(
    network: str,
    setting: object,
    reserved_off_mb: float | None,
    rehearsed_device: str | None,
    rehearsed_device_mb: float | None,
    margin: float,
    training_device: str | None = None,
) -> CheckpointingChoice:
    """Decide whether ``network`` trains with gradient checkpointing.

    Args:
        setting: the config's ``auto``/``on``/``off``.
        reserved_off_mb: peak reserved GPU memory the rehearsal measured for the network without
            checkpointing (None: not measured).
        rehearsed_device, rehearsed_device_mb: the GPU model and memory it was measured on.
        margin: the measured peak x ``margin`` must fit the device memory.
        training_device: the GPU model the training runs on, when known; a rehearsal on another model
            is not used.
    """
    mode = normalise_setting(setting)
    default = network_checkpoints_by_default(network)
    if mode != "auto":
        return CheckpointingChoice(mode == "on", mode, f"forced {mode} by training.gradient_checkpointing")
    if not default:
        return CheckpointingChoice(False, mode, "network default: this network does not checkpoint")
    if reserved_off_mb is None or rehearsed_device_mb is None:
        return CheckpointingChoice(True, mode, "network default (official code: on for MedNeXt M and L); "
                                               "no GPU rehearsal without checkpointing")
    if training_device is not None and rehearsed_device is not None and training_device != rehearsed_device:
        return CheckpointingChoice(True, mode, f"network default: rehearsed on {rehearsed_device}, training on "
                                               f"{training_device}", reserved_off_mb, rehearsed_device,
                                   rehearsed_device_mb, margin)
    need = reserved_off_mb * margin
    fits = need <= rehearsed_device_mb
    reason = (f"rehearsal: {reserved_off_mb / 1000:.1f} GB reserved without checkpointing x {margin:g} = "
              f"{need / 1000:.1f} GB {'fits' if fits else 'exceeds'} {rehearsed_device} "
              f"({rehearsed_device_mb / 1000:.1f} GB): {'off' if fits else 'on'}")
    return CheckpointingChoice(not fits, mode, reason, reserved_off_mb, rehearsed_device, rehearsed_device_mb, margin)


def choice_for_job(network: str, setting: object, gpu_rehearsal: Mapping[str, Any] | None,
                   training_device: str | None = None) -> CheckpointingChoice:
    """The choice for a training job from the rehearsal record the workflow put into its job
    (``{"device", "memory_mb", "margin", "runs": [{"gradient_checkpointing", "reserved_mb", ...}]}``)."""
    if not gpu_rehearsal:
        return choose_gradient_checkpointing(network, setting, None, None, None, 1.0, training_device)
    off = next((run for run in gpu_rehearsal.get("runs", []) if not run["gradient_checkpointing"]), None)
    return choose_gradient_checkpointing(network, setting, None if off is None else float(off["reserved_mb"]),
                                         gpu_rehearsal.get("device"), gpu_rehearsal.get("memory_mb"),
                                         float(gpu_rehearsal.get("margin", 1.0)), training_device)
