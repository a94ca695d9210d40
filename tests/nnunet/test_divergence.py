"""The non-finite-loss guard counts only consecutive non-finite losses; its marker is written and read whole."""

from __future__ import annotations

import math

import pytest

from mednext.nnunet.divergence import (
    DIVERGED_EXIT_CODE,
    Divergence,
    DivergenceMarkerError,
    NonFiniteLossGuard,
    marker_path,
    read_marker,
    write_marker,
)


def test_stops_after_patience_consecutive_non_finite_losses() -> None:
    guard = NonFiniteLossGuard(patience=3)
    assert guard.observe(math.nan, epoch=2, iteration=5) is None
    assert guard.observe(math.inf, epoch=2, iteration=6) is None
    divergence = guard.observe(math.nan, epoch=2, iteration=7)
    assert divergence is not None
    assert (divergence.epoch, divergence.iteration, divergence.consecutive) == (2, 7, 3)
    assert divergence.reason == "training loss non-finite (inf / nan) for 3 consecutive iterations"
    assert divergence.losses == ("nan", "inf", "nan")


def test_isolated_non_finite_losses_are_not_divergence() -> None:
    """As fp16 overflows that the grad scaler skips: the next loss is finite again."""
    guard = NonFiniteLossGuard(patience=2)
    verdicts = [guard.observe(loss, 0, i) for i, loss in enumerate([math.nan, 0.5, math.inf, 0.4, math.nan, 0.3] * 50)]
    assert verdicts == [None] * 300


def test_marker_round_trip_and_a_broken_marker(tmp_path) -> None:
    divergence = Divergence(epoch=4, iteration=1, consecutive=50, reason="training loss non-finite (nan) for 50 "
                            "consecutive iterations", losses=("nan",), checkpoint="checkpoint_diverged.pth")
    write_marker(tmp_path, divergence)
    assert read_marker(tmp_path) == divergence
    assert read_marker(tmp_path / "no-such-fold") is None
    marker_path(tmp_path).write_text('{"epoch": 4')
    with pytest.raises(DivergenceMarkerError, match=str(marker_path(tmp_path))):
        read_marker(tmp_path)


def test_patience_must_be_positive_and_the_exit_code_is_distinct() -> None:
    with pytest.raises(ValueError, match="positive"):
        NonFiniteLossGuard(patience=0)
    assert DIVERGED_EXIT_CODE not in (0, 1, 2) and DIVERGED_EXIT_CODE < 128  # Python, argparse, 128 + signal
