"""A corrupt checkpoint never blocks a run: the resume decision, without training.

The files are real ``torch.save`` zips, truncated or emptied as a kill during a non-atomic write or a
full disk would leave them; ``torch.load`` itself is the judge of "does not load".
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from mednext.nnunet.checkpoints import PREVIOUS_LATEST, recover_resume_checkpoints
from mednext.nnunet.runner import TrainAction, decide_action

LATEST = "checkpoint_latest.pth"


def _save(path: Path, epoch: int) -> None:
    torch.save({"network_weights": {"w": torch.full((64, 64), float(epoch))}, "current_epoch": epoch,
                "optimizer_state": {}, "logging": {}}, path)


def _corrupt(path: Path, how: str) -> None:
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")
    with pytest.raises((RuntimeError, EOFError, OSError)):  # the independent check: torch cannot read it
        torch.load(path, weights_only=True)


def _aside(fold: Path, name: str) -> list[Path]:
    return sorted(fold.glob(f"{name}.corrupt-*"))


@pytest.mark.parametrize("how", ["truncated", "zero-byte"])
def test_unreadable_latest_falls_back_to_previous(tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    _save(tmp_path / PREVIOUS_LATEST, epoch=4)
    _save(tmp_path / LATEST, epoch=7)
    size = (tmp_path / LATEST).stat().st_size
    _corrupt(tmp_path / LATEST, how)
    with caplog.at_level(logging.WARNING):
        moved = recover_resume_checkpoints(tmp_path)
    aside = _aside(tmp_path, LATEST)
    assert moved == aside and len(aside) == 1 and aside[0].stat().st_size == (0 if how == "zero-byte" else size // 2)
    assert torch.load(tmp_path / LATEST, weights_only=True)["current_epoch"] == 4  # the previous good one
    assert not (tmp_path / PREVIOUS_LATEST).exists()
    assert decide_action(tmp_path) is TrainAction.CONTINUE
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(tmp_path / LATEST) in warnings[0] and aside[0].name in warnings[0]


@pytest.mark.parametrize("how", ["truncated", "zero-byte"])
def test_unreadable_latest_without_previous_starts_afresh(tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    _save(tmp_path / LATEST, epoch=7)
    size = (tmp_path / LATEST).stat().st_size
    _corrupt(tmp_path / LATEST, how)
    with caplog.at_level(logging.WARNING):
        recover_resume_checkpoints(tmp_path)
    aside = _aside(tmp_path, LATEST)
    assert len(aside) == 1 and aside[0].stat().st_size == (0 if how == "zero-byte" else size // 2)  # kept, not deleted
    assert decide_action(tmp_path) is TrainAction.FRESH
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(tmp_path / LATEST) in warnings[0] and "afresh" in warnings[0]


def test_unreadable_previous_is_set_aside_too(tmp_path: Path) -> None:
    _save(tmp_path / LATEST, epoch=7)
    _save(tmp_path / PREVIOUS_LATEST, epoch=4)
    _corrupt(tmp_path / LATEST, "truncated")
    _corrupt(tmp_path / PREVIOUS_LATEST, "zero-byte")
    recover_resume_checkpoints(tmp_path)
    assert len(_aside(tmp_path, LATEST)) == 1 and len(_aside(tmp_path, PREVIOUS_LATEST)) == 1
    assert decide_action(tmp_path) is TrainAction.FRESH


def test_unreadable_final_falls_back_in_nnunets_resume_order(tmp_path: Path) -> None:
    """``nnUNetv2_train --c`` takes final, then latest, then best (nnunetv2/run/run_training.py)."""
    _save(tmp_path / "checkpoint_final.pth", epoch=10)
    _save(tmp_path / "checkpoint_best.pth", epoch=6)
    _corrupt(tmp_path / "checkpoint_final.pth", "zero-byte")
    recover_resume_checkpoints(tmp_path)
    assert not (tmp_path / "checkpoint_final.pth").exists() and len(_aside(tmp_path, "checkpoint_final.pth")) == 1
    assert decide_action(tmp_path) is TrainAction.CONTINUE  # nnU-Net resumes from checkpoint_best
    assert torch.load(tmp_path / "checkpoint_best.pth", weights_only=True)["current_epoch"] == 6


def test_kill_between_the_two_renames_resumes_from_previous(tmp_path: Path) -> None:
    """The trainer moves latest to .prev, then the new file onto latest: a kill in between leaves only .prev."""
    _save(tmp_path / PREVIOUS_LATEST, epoch=4)
    assert recover_resume_checkpoints(tmp_path) == []
    assert torch.load(tmp_path / LATEST, weights_only=True)["current_epoch"] == 4


def test_readable_checkpoints_are_left_alone(tmp_path: Path) -> None:
    _save(tmp_path / LATEST, epoch=7)
    _save(tmp_path / PREVIOUS_LATEST, epoch=4)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert recover_resume_checkpoints(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before
