"""Reading nnU-Net v2 checkpoints (weights-only, see :mod:`mednext.checkpoint_io`); unreadable ones set aside."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path

import torch

from mednext.checkpoint_io import load_weights_only

log = logging.getLogger(__name__)


def load_nnunet_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict (``network_weights``, ``current_epoch``, ...) of an nnU-Net v2 ``.pth`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"nnU-Net checkpoint not found: {path}")
    checkpoint = load_weights_only(path)
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ValueError(f"{path} is not an nnU-Net v2 checkpoint (no 'network_weights' key)")
    return checkpoint


def network_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Only the state dict of an nnU-Net v2 checkpoint."""
    return dict(load_nnunet_checkpoint(path)["network_weights"])


#: The files ``nnUNetv2_train --c`` resumes from, in the order it looks for them
#: (nnunetv2/run/run_training.py, ``maybe_load_checkpoint``).
RESUME_ORDER = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")
LATEST = "checkpoint_latest.pth"
#: The previous ``checkpoint_latest``, kept by the trainer when it writes a new one (a corrupt newest
#: file then costs one checkpoint period, not the run).
PREVIOUS_LATEST = "checkpoint_latest.prev.pth"
#: The weights right after initialisation (UpKern included), with ``training.save_initial_weights``.
INITIAL_WEIGHTS_FILE = "initial_weights.pth"
#: What an UpKern start copied and resampled, written into the kernel-5 run's fold folder.
UPKERN_REPORT_FILE = "upkern.json"


def checkpoint_is_readable(path: str | Path) -> bool:
    """True if ``path`` loads (weights-only) as an nnU-Net v2 checkpoint with an epoch counter."""
    try:
        checkpoint = load_nnunet_checkpoint(path)
    except Exception:  # truncated zip, zero bytes, wrong content: all mean "cannot resume from it"
        return False
    return "current_epoch" in checkpoint


def set_aside(path: Path, then: str) -> Path:
    """Rename an unreadable checkpoint to ``<name>.corrupt-<UTC time>`` (never deleted); one warning line."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    log.warning("unreadable checkpoint %s moved aside to %s; %s", path, target.name, then)
    return target


def recover_resume_checkpoints(fold_dir: str | Path) -> list[Path]:
    """Make the first checkpoint ``nnUNetv2_train --c`` would load a readable one; return what was set aside.

    Walks nnU-Net's resume order (final, latest, best). An unreadable file is renamed aside; for
    ``checkpoint_latest.pth`` the previous latest (``checkpoint_latest.prev.pth``) takes its place if it
    loads (also when a kill fell between the trainer's two renames and no latest exists). When nothing
    readable is left, nnU-Net starts afresh.
    """
    fold_dir = Path(fold_dir)
    moved: list[Path] = []
    latest, previous = fold_dir / LATEST, fold_dir / PREVIOUS_LATEST
    for position, name in enumerate(RESUME_ORDER):
        path = fold_dir / name
        if name == LATEST and not path.is_file() and previous.is_file():
            os.replace(previous, path)
            log.warning("no %s in %s: resuming from the previous one (%s)", LATEST, fold_dir, PREVIOUS_LATEST)
        if not path.is_file():
            continue
        if checkpoint_is_readable(path):
            return moved
        fallback = [n for n in RESUME_ORDER[position + 1:] if (fold_dir / n).is_file()]
        if name == LATEST and previous.is_file() and checkpoint_is_readable(previous):
            moved.append(set_aside(path, f"resuming from the previous one ({PREVIOUS_LATEST})"))
            os.replace(previous, latest)
            return moved
        then = f"trying {fallback[0]}" if fallback else "no readable checkpoint left: the training starts afresh"
        moved.append(set_aside(path, then))
        if name == LATEST and previous.is_file():
            moved.append(set_aside(previous, then))
    return moved
