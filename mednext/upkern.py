"""UpKern: initialise a network from a trained one, resampling conv kernels (paper §2.3, Supp. 6.1).

Tensors of equal shape are copied; conv kernels whose spatial size differs are resampled
trilinearly (bilinearly in 2D) with ``align_corners=False`` and no rescaling, as the official
``upkern_load_weights`` (MedNeXt ``run/load_weights.py``; docs/sources.md#upkern).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mednext.checkpoint_io import load_weights_only

log = logging.getLogger(__name__)

#: Prefixes a saved state dict may carry: DataParallel/DDP and torch.compile wrappers.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


@dataclass
class UpKernReport:
    """What UpKern did to each key of the target network."""

    copied: list[str] = field(default_factory=list)
    resampled: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # target keys absent from the source: left as initialised
    unused: list[str] = field(default_factory=list)  # source keys the target does not have


def _strip_wrapper_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def load_state_dict_any(source: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return a plain state dict from a state dict, an nnU-Net v2 checkpoint or an official v1 checkpoint.

    nnU-Net v2 stores weights under ``network_weights``; the official v1 trainer under
    ``state_dict``. ``module.`` (DDP) and ``_orig_mod.`` (torch.compile) prefixes are removed.
    Files are loaded with ``weights_only=True``.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"UpKern source checkpoint not found: {path}")
        try:
            loaded = load_weights_only(path)
        except Exception as error:  # torch raises several types for corrupt/unsafe files
            raise ValueError(f"cannot read checkpoint {path}: {error}") from error
        origin = str(path)
    else:
        loaded, origin = source, "the given mapping"
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{origin} holds a {type(loaded).__name__}, expected a state dict or checkpoint dict")
    for container in ("network_weights", "state_dict"):
        if container in loaded and isinstance(loaded[container], Mapping):
            loaded = loaded[container]
            break
    state = {_strip_wrapper_prefixes(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(f"{origin} contains no tensors (expected 'network_weights', 'state_dict' or a state dict)")
    return state


def resample_kernel(weight: torch.Tensor, spatial_size: tuple[int, ...]) -> torch.Tensor:
    """Resize the spatial dims of a conv weight ``(out, in, *k)`` to ``spatial_size``.

    Trilinear for 3D kernels, bilinear for 2D, ``align_corners=False`` (PyTorch default, as official).
    """
    n_spatial = weight.dim() - 2
    if n_spatial not in (2, 3) or len(spatial_size) != n_spatial:
        raise ValueError(f"cannot resample a {tuple(weight.shape)} kernel to spatial size {spatial_size}")
    mode = "trilinear" if n_spatial == 3 else "bilinear"
    resized = F.interpolate(weight.float(), size=tuple(spatial_size), mode=mode, align_corners=False)
    return resized.to(weight.dtype)


def upkern_state_dict(
    target: Mapping[str, torch.Tensor], source: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], UpKernReport]:
    """Build a new state dict for ``target`` from ``source`` by UpKern.

    Raises:
        ValueError: a key whose channel dims (0 and 1) or rank differ, naming the key.
    """
    report = UpKernReport()
    new_state: dict[str, torch.Tensor] = {}
    for key, target_tensor in target.items():
        if key not in source:
            report.missing.append(key)
            new_state[key] = target_tensor.clone()
            continue
        source_tensor = source[key]
        if source_tensor.shape == target_tensor.shape:
            new_state[key] = source_tensor.detach().clone().to(target_tensor.dtype)
            report.copied.append(key)
            continue
        if source_tensor.dim() != target_tensor.dim() or source_tensor.dim() < 4:
            raise ValueError(
                f"UpKern: key {key!r} has shape {tuple(source_tensor.shape)} in the source but "
                f"{tuple(target_tensor.shape)} in the target; only conv kernel sizes may differ"
            )
        if source_tensor.shape[:2] != target_tensor.shape[:2]:
            raise ValueError(
                f"UpKern: channel mismatch at key {key!r}: source {tuple(source_tensor.shape)} vs target "
                f"{tuple(target_tensor.shape)} (dims 0 and 1 must agree; was the source another variant?)"
            )
        new_state[key] = resample_kernel(source_tensor.detach(), tuple(target_tensor.shape[2:])).to(target_tensor.dtype)
        report.resampled.append(key)
    report.unused = sorted(set(source) - set(target))
    return new_state, report


def upkern_load(network: nn.Module, source: str | Path | Mapping[str, torch.Tensor]) -> UpKernReport:
    """Initialise ``network`` in place from ``source`` by UpKern and return what was done.

    ``source`` may be a state dict, an nnU-Net v2 checkpoint (``checkpoint_final.pth``) or an
    official MedNeXt v1 checkpoint (``model_final_checkpoint.model``).
    """
    source_state = load_state_dict_any(source)
    new_state, report = upkern_state_dict(network.state_dict(), source_state)
    network.load_state_dict(new_state, strict=True)
    if report.missing:
        log.warning("UpKern: %d target keys not in the source kept their initialisation: %s",
                    len(report.missing), ", ".join(report.missing[:5]))
    log.info("UpKern: copied %d tensors, resampled %d kernels", len(report.copied), len(report.resampled))
    return report
