"""A training's state from the files the trainer, the ``train`` command, Snakemake and SLURM leave behind."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mednext.nnunet.divergence import Divergence, write_marker
from mednext.provenance import TrainingProvenance
from mednext.status.fold_state import State, decide_state, observe_fold
from mednext.status.slurm_queue import QueuedJob
from tests.status.nnunet_log_writer import NnunetLogWriter

EPOCHS = 10


def _provenance(fold_dir: Path, outcomes: list[str]) -> None:
    """The ``train`` command's record after attempts ending ``ok``/``failed``, or still ``running`` (last)."""
    for i, outcome in enumerate(outcomes):
        tracker = TrainingProvenance(fold_dir, {"network": "nnUNet", "fold": 0}, {"device": "cpu"})
        tracker.begin("fresh" if i == 0 else "continue")
        if outcome != "running":
            tracker.end("fresh" if i == 0 else "continue", outcome)


def _trained(fold_dir: Path, epochs: int, seconds_ago: float = 0.0) -> NnunetLogWriter:
    writer = NnunetLogWriter(fold_dir, datetime.now(), epoch_seconds=60)
    for epoch in range(epochs):
        writer.epoch(epoch, [0.5, 0.6])
    (fold_dir / "checkpoint_latest.pth").write_bytes(b"")
    if seconds_ago:
        for path in fold_dir.iterdir():
            if path.is_file():
                os.utime(path, (time.time() - seconds_ago, time.time() - seconds_ago))
    return writer


def _decide(fold_dir: Path, rule_log: Path | None = None, parent_done: bool | None = None, evaluated: bool = False,
            marked: bool = False, job: QueuedJob | None = None, queue_known: bool = False):
    obs = observe_fold(fold_dir, evaluated=evaluated, marked_incomplete=marked, slurm_job=job,
                       rule_log=rule_log or fold_dir.parent / "train.log", queue_known=queue_known)
    return decide_state(obs, EPOCHS, parent_done, "MedNeXt-B_k3" if parent_done is not None else None)


def test_a_training_writing_its_log_is_running(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    _trained(fold, 4)
    _provenance(fold, ["ok", "running"])  # second attempt, resumed
    state = _decide(fold)
    assert state.state is State.RUNNING and state.epochs_done == 4
    assert state.detail == "epoch 5 of 10, attempt 2"  # 4 done: it trains the 5th (nnU-Net's "Epoch 4")
    assert state.attempt == 2


def test_squeue_decides_over_file_times(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    _trained(fold, 2)
    _provenance(fold, ["running"])
    gone = _decide(fold, queue_known=True)  # fresh files, but SLURM no longer holds the job: node lost
    assert gone.state is State.INTERRUPTED
    running = _decide(fold, job=QueuedJob("77", "RUNNING", "c"), queue_known=True)
    assert running.state is State.RUNNING and "SLURM job 77" in running.detail
    requeued = _decide(fold, job=QueuedJob("78", "PENDING", "c"), queue_known=True)
    assert requeued.state is State.QUEUED and requeued.attempt == 2  # the next attempt


def test_a_training_silent_for_hours_was_killed(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    _trained(fold, 3, seconds_ago=2 * 3600)
    _provenance(fold, ["running"])  # never closed: its process died with Snakemake
    os.utime(fold / "provenance.json", (time.time() - 2 * 3600, time.time() - 2 * 3600))
    state = _decide(fold)
    assert state.state is State.INTERRUPTED and "no file written for 2.0 h" in state.detail


def test_a_failed_attempt_names_its_error_and_log(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    _trained(fold, 1)
    _provenance(fold, ["failed"])
    rule_log = tmp_path / "logs" / "fold_0.log"
    rule_log.parent.mkdir()
    rule_log.write_text("Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory. "
                        "Tried to allocate 2.00 GiB\n")
    state = _decide(fold, rule_log=rule_log)
    assert state.state is State.FAILED
    assert state.detail == "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert state.log_path == str(rule_log)


def test_a_time_limit_stop_is_interrupted_not_failed(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    writer = _trained(fold, 3)
    writer.line("SIGTERM: saved checkpoint_latest after epoch 2; the retry starts epoch 3")  # the trainer's line
    _provenance(fold, ["failed"])  # the train command exits 143, which closes the run as failed
    state = _decide(fold)
    assert state.state is State.INTERRUPTED and state.detail.startswith("SIGTERM: saved checkpoint_latest after epoch 2")


def test_a_divergence_marker_makes_it_diverged(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    _trained(fold, 3)
    _provenance(fold, ["failed"])
    write_marker(fold, Divergence(epoch=3, iteration=17, consecutive=5, reason="training loss non-finite (nan) for 5 "
                                  "consecutive iterations", stopped_at="2026-01-01T10:00:00Z"))
    state = _decide(fold)
    assert state.state is State.DIVERGED
    assert state.detail == ("training loss non-finite (nan) for 5 consecutive iterations (epoch 3, iteration 17; "
                            "stopped 2026-01-01T10:00:00Z)")
    (fold / "diverged.json").write_text("{not json")
    assert "not a readable divergence marker" in _decide(fold).detail


def test_finished_and_evaluated(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    _trained(fold, EPOCHS, seconds_ago=3 * 3600)
    _provenance(fold, ["ok"])
    (fold / "checkpoint_final.pth").write_bytes(b"")
    assert _decide(fold).state is State.FINISHED
    assert _decide(fold, evaluated=True).state is State.EVALUATED


def test_before_any_file(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    assert _decide(fold).state is State.NOT_STARTED
    assert _decide(fold, parent_done=True).state is State.NOT_STARTED
    waiting = _decide(fold, parent_done=False)
    assert waiting.state is State.WAITING and waiting.detail == "waits for MedNeXt-B_k3 (UpKern start)"
    assert _decide(fold, marked=True).state is State.QUEUED  # Snakemake submitted it
    assert _decide(fold, job=QueuedJob("5", "PENDING", "c"), queue_known=True).state is State.QUEUED


def test_hours_used_add_closed_attempts_and_the_open_one(tmp_path: Path) -> None:
    fold = tmp_path / "fold_0"
    _trained(fold, 2)
    _provenance(fold, ["failed", "running"])
    record = json.loads((fold / "provenance.json").read_text())
    record["runs"][0]["wall_s"] = 7200.0  # a first attempt of 2 h
    record["runs"][1]["started"] = datetime.fromtimestamp(time.time() - 1800, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    (fold / "provenance.json").write_text(json.dumps(record))
    state = _decide(fold)
    assert state.state is State.RUNNING
    assert state.hours_used == pytest.approx(2.5, abs=0.01)
