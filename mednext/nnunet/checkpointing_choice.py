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
    rehearsed: Any | None,
    rehearsed_device: str | None,
    rehearsed_device_mb: float | None,
    margin: float,
    training_device: str | None = None,
) -> CheckpointingChoice:
    """Decide whether ``network`` trains with gradient checkpointing.

    Args:
        setting: the config's ``auto``/``on``/``off``.
        rehearsed: the network's GPU rehearsal (an object with ``run(gradient_checkpointing)`` returning
            a run with ``reserved_mb``), or None.
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
    off = None if rehearsed is None else rehearsed.run(False)
    if off is None or rehearsed_device_mb is None:
        return CheckpointingChoice(True, mode, "network default (official code: on for MedNeXt M and L); "
                                               "no GPU rehearsal without checkpointing")
    if training_device is not None and rehearsed_device is not None and training_device != rehearsed_device:
        return CheckpointingChoice(True, mode, f"network default: rehearsed on {rehearsed_device}, training on "
                                               f"{training_device}", off.reserved_mb, rehearsed_device,
                                   rehearsed_device_mb, margin)
    need = off.reserved_mb * margin
    if need <= rehearsed_device_mb:
        reason = (f"rehearsal: {off.reserved_mb / 1000:.1f} GB reserved without checkpointing x {margin:g} = "
                  f"{need / 1000:.1f} GB fits {rehearsed_device} ({rehearsed_device_mb / 1000:.1f} GB): off")
        return CheckpointingChoice(False, mode, reason, off.reserved_mb, rehearsed_device, rehearsed_device_mb, margin)
    reason = (f"rehearsal: {off.reserved_mb / 1000:.1f} GB reserved without checkpointing x {margin:g} = "
              f"{need / 1000:.1f} GB exceeds {rehearsed_device} ({rehearsed_device_mb / 1000:.1f} GB): on")
    return CheckpointingChoice(True, mode, reason, off.reserved_mb, rehearsed_device, rehearsed_device_mb, margin)
