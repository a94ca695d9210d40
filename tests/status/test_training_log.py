"""The pseudo-Dice, epochs and epoch time read from nnU-Net's training logs equal nnU-Net's own values."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from mednext.status.training_log import TAIL_BYTES, summarize_training_logs, training_logs
from tests.status.nnunet_log_writer import NnunetLogWriter, nnunet_ema

START = datetime(2026, 3, 1, 9, 0, 0)


def _dice_series(n_epochs: int, n_classes: int, seed: int) -> list[list[float]]:
    """Per-class pseudo-Dice rising with noise; a class now and then absent from the validation batches (NaN)."""
    rng = np.random.default_rng(seed)
    series = []
    for epoch in range(n_epochs):
        values = np.clip(0.9 * (1 - np.exp(-epoch / 30)) + rng.normal(0, 0.05, n_classes), 0, 1)
        values[rng.random(n_classes) < 0.1] = np.nan
        series.append([float(np.round(np.float32(v), 4)) for v in values])
    return series


def _write(fold_dir: Path, series: list[list[float]], first_epoch: int = 0, start: datetime = START,
           epoch_seconds: float = 5.0) -> NnunetLogWriter:
    writer = NnunetLogWriter(fold_dir, start, epoch_seconds)
    for offset, values in enumerate(series):
        writer.epoch(first_epoch + offset, values)
    return writer


def test_moving_average_matches_nnunets_logger(tmp_path: Path) -> None:
    series = _dice_series(40, 13, seed=1)  # BTCV's 13 organs
    _write(tmp_path, series, epoch_seconds=7.25)
    summary = summarize_training_logs(tmp_path)
    assert summary is not None
    assert summary.ema_pseudo_dice == pytest.approx(nnunet_ema(series), abs=1e-4)  # logs keep 4 decimals
    assert summary.epochs_finished == 40 and summary.last_epoch == 39
    assert summary.epoch_seconds == pytest.approx(7.25)
    assert list(summary.pseudo_dice) == pytest.approx(series[-1], nan_ok=True)


def test_a_resume_replaces_the_epochs_after_its_checkpoint(tmp_path: Path) -> None:
    """Killed after epoch 12 with checkpoint_latest at epoch 10: the second process redoes 10, 11, 12, ..."""
    first = _dice_series(13, 3, seed=2)
    _write(tmp_path, first)
    redone = _dice_series(8, 3, seed=3)
    _write(tmp_path, redone, first_epoch=10, start=datetime(2026, 3, 1, 10, 0, 0))
    summary = summarize_training_logs(tmp_path)
    assert len(training_logs(tmp_path)) == 2
    assert summary.ema_pseudo_dice == pytest.approx(nnunet_ema(first[:10] + redone), abs=1e-4)
    assert summary.epochs_finished == 18 and summary.last_epoch == 17


def test_an_epoch_in_progress_is_not_finished(tmp_path: Path) -> None:
    writer = _write(tmp_path, _dice_series(3, 2, seed=4))
    writer.epoch(3, [0.5, 0.5], finish=False)
    summary = summarize_training_logs(tmp_path)
    assert summary.last_epoch == 3 and summary.epochs_finished == 3


def test_a_long_log_is_read_from_its_tail_within_the_logged_precision(tmp_path: Path) -> None:
    series = _dice_series(1000, 13, seed=5)  # the paper's 1000 epochs
    writer = _write(tmp_path, series)
    assert writer.path.stat().st_size > TAIL_BYTES  # only a part of it is read
    summary = summarize_training_logs(tmp_path)
    assert summary.epochs_finished == 1000
    assert summary.ema_pseudo_dice == pytest.approx(nnunet_ema(series), abs=1e-4)


def test_all_classes_absent_gives_no_pseudo_dice(tmp_path: Path) -> None:
    _write(tmp_path, [[math.nan, math.nan]])
    assert summarize_training_logs(tmp_path).ema_pseudo_dice is None  # nnU-Net's nanmean is NaN too


def test_no_log_no_summary(tmp_path: Path) -> None:
    assert summarize_training_logs(tmp_path) is None
