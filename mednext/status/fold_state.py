"""The state of one training of the grid, decided from the files it leaves (and, optionally, ``squeue``).

A training's fold folder holds nnU-Net's checkpoints and logs, the ``provenance.json`` the ``train``
command keeps across attempts (each attempt a run that is ``running``, ``ok`` or ``failed``), and a
divergence marker when the guard stopped it; the workflow's ``metrics.csv`` says it was evaluated;
Snakemake's incomplete markers and the rule's log say whether a job holds it and why it failed.
"""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mednext.nnunet.divergence import DIVERGED_MARKER, Divergence, read_marker_or_unreadable
from mednext.nnunet.job_settings import SIGNAL_AFTER_LAST_EPOCH, SIGNAL_SAVED_LATEST
from mednext.nnunet.rescue import RESCUE_RECORD, RescueState, read_rescue_record
from mednext.provenance import CHECKPOINTS, PROVENANCE_FILE, parse_iso, read_provenance
from mednext.status.slurm_queue import QueuedJob
from mednext.status.snakemake_state import last_error_line
from mednext.status.training_log import TrainingLogSummary, order_training_logs, summarize_training_logs

#: nnU-Net's last checkpoint of a training; any of :data:`CHECKPOINTS` is the fold's "last checkpoint".
CHECKPOINT_FINAL = CHECKPOINTS[0]
#: A training that wrote nothing for this long (or 3 epochs, if longer) is no longer running: killed
#: with its Snakemake, or its node lost. nnU-Net logs at every epoch's start and end.
STALE_AFTER_S = 30 * 60


class State(str, enum.Enum):
    """Where a training stands; the order is the order of the summary line."""

    WAITING = "waiting"            # an UpKern start whose parent has not finished
    NOT_STARTED = "not_started"
    QUEUED = "queued"              # a job is submitted (SLURM pending, or Snakemake's marker without activity)
    RUNNING = "running"
    INTERRUPTED = "interrupted"    # stopped by a time limit or a kill; the next attempt resumes
    FAILED = "failed"
    DIVERGED = "diverged"          # stopped by the divergence guard; refuses to restart until the marker goes
    FINISHED = "finished"          # checkpoint_final written; evaluation to come
    EVALUATED = "evaluated"        # metrics.csv written


#: States that need a user before the grid can finish.
BLOCKED_STATES = frozenset({State.FAILED, State.DIVERGED})
DONE_STATES = frozenset({State.FINISHED, State.EVALUATED})


@dataclass(frozen=True)
class FoldFiles:
    """The file-system facts of one fold folder, gathered with one directory listing."""

    fold_dir: Path
    names: frozenset[str]
    checkpoint_mtime: float | None
    newest_mtime: float | None
    logs: tuple[Path, ...]

    @classmethod
    def scan(cls, fold_dir: Path) -> FoldFiles:
        names, files, checkpoint_times = set(), [], []
        try:
            with os.scandir(fold_dir) as entries:
                for entry in entries:
                    names.add(entry.name)
                    if not entry.is_file():
                        continue
                    mtime = entry.stat().st_mtime
                    files.append((Path(entry.path), mtime))
                    if entry.name in CHECKPOINTS:
                        checkpoint_times.append(mtime)
        except FileNotFoundError:
            pass
        return cls(fold_dir, frozenset(names), max(checkpoint_times, default=None),
                   max((mtime for _, mtime in files), default=None), tuple(order_training_logs(files)))

    @property
    def exists(self) -> bool:
        return bool(self.names)


@dataclass(frozen=True)
class FoldObservation:
    """Everything read about one training, before its state is decided."""

    files: FoldFiles
    log: TrainingLogSummary | None
    provenance: dict[str, Any] | None
    divergence: Divergence | None
    rescue: RescueState | None
    evaluated: bool
    marked_incomplete: bool
    slurm_job: QueuedJob | None
    queue_known: bool  # squeue answered: a job it does not list is not running
    rule_log: Path
    slurm_log_dir: Path | None


@dataclass(frozen=True)
class FoldState:
    """The decided state, a one-line detail, and the numbers shown beside it."""

    state: State
    detail: str
    attempt: int
    epochs_done: int
    hours_used: float
    log_path: str = ""


def read_provenance_file(fold_dir: Path) -> dict[str, Any] | None:
    """The fold's ``provenance.json`` (``None`` when absent or unreadable: status never fails on one fold)."""
    try:
        return read_provenance(fold_dir / PROVENANCE_FILE)
    except (OSError, ValueError):  # ProvenanceError is a ValueError
        return None


def observe_fold(fold_dir: Path, evaluated: bool, marked_incomplete: bool, slurm_job: QueuedJob | None,
                 rule_log: Path, slurm_log_dir: Path | None = None, queue_known: bool = False) -> FoldObservation:
    """Read one fold folder: its listing, log tails, provenance and divergence marker."""
    files = FoldFiles.scan(fold_dir)
    divergence = read_marker_or_unreadable(fold_dir) if DIVERGED_MARKER in files.names else None
    return FoldObservation(
        files=files,
        log=summarize_training_logs(fold_dir, list(files.logs)) if files.logs else None,
        provenance=read_provenance_file(fold_dir) if PROVENANCE_FILE in files.names else None,
        divergence=divergence, evaluated=evaluated,
        rescue=read_rescue_record(fold_dir) if RESCUE_RECORD in files.names else None,
        marked_incomplete=marked_incomplete, slurm_job=slurm_job,
        queue_known=queue_known, rule_log=rule_log, slurm_log_dir=slurm_log_dir,
    )


def _epoch(iso_text: str | None) -> float | None:
    if not iso_text:
        return None
    try:
        return parse_iso(iso_text).timestamp()
    except ValueError:
        return None


def hours_used(provenance: dict[str, Any] | None, last_activity: float | None, running: bool, now: float) -> float:
    """Hours the training's attempts have held their device: closed runs' wall time from provenance;
    an open run from its start to now (running) or to its last file write (killed)."""
    total = 0.0
    for run in (provenance or {}).get("runs", []):
        if run.get("wall_s") is not None:
            total += float(run["wall_s"])
            continue
        start = _epoch(run.get("started"))
        end = now if running else last_activity
        if start is not None and end is not None and end > start:
            total += end - start
    return total / 3600


def _stale_after(log: TrainingLogSummary | None) -> float:
    return max(STALE_AFTER_S, 3 * (log.epoch_seconds or 0.0))


def _error_detail(obs: FoldObservation) -> tuple[str, str]:
    """The last error line of the job (rule log, then the newest SLURM log) and the log it is in."""
    candidates = [obs.rule_log]
    if obs.slurm_log_dir is not None and obs.slurm_log_dir.is_dir():
        candidates += sorted(obs.slurm_log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)[:1]
    for path in candidates:
        line = last_error_line(path)
        if line:
            return line, str(path)
    return "no error line in the job's log", str(obs.rule_log)


def _signal_stop(log: TrainingLogSummary | None) -> str | None:
    """The trainer's signal-save line when it is the last thing the newest log says about training."""
    if log is None:
        return None
    for line in reversed(log.last_lines):
        if SIGNAL_SAVED_LATEST in line or SIGNAL_AFTER_LAST_EPOCH in line:
            return line.split(": ", 1)[-1].strip()
        if ": Epoch " in line or "Training done." in line:
            return None
    return None


def decide_state(obs: FoldObservation, epochs_total: int, parent_done: bool | None, parent_name: str | None,
                 now: float | None = None) -> FoldState:
    """The :class:`State` of a training from what :func:`observe_fold` read.

    Args:
        epochs_total: the epochs the config trains.
        parent_done: whether its UpKern parent has a final checkpoint (``None``: it has no parent).
        parent_name: the parent's network name, for the detail line.
    """
    now = time.time() if now is None else now
    files, log, provenance = obs.files, obs.log, obs.provenance
    runs = list((provenance or {}).get("runs", []))
    last_run = runs[-1] if runs else None
    epochs_done = log.epochs_finished if log else 0
    activity = max((t for t in (files.newest_mtime, log.last_activity if log else None) if t is not None), default=None)
    fresh = activity is not None and now - activity < _stale_after(log)
    slurm_running = obs.slurm_job is not None and not obs.slurm_job.pending
    running = slurm_running or (not obs.queue_known and fresh and (
        (last_run is not None and last_run.get("status") == "running") or (provenance is None and files.exists)))
    used = hours_used(provenance, activity, running, now)

    rescued = (f"; rescued at epoch {obs.rescue.fired_at_epoch} (validation Dice 0)"
               if obs.rescue is not None and obs.rescue.fired else "")

    def state(kind: State, detail: str, attempt: int = len(runs), log_path: str = "") -> FoldState:
        return FoldState(kind, (detail + rescued).lstrip("; "), attempt, epochs_done, used, log_path)

    if obs.evaluated:
        dice = f"; validation Dice {log.validation_dice:.4f}" if log and log.validation_dice is not None else ""
        return state(State.EVALUATED, f"metrics written{dice}")
    if obs.divergence is not None:
        return state(State.DIVERGED, obs.divergence.describe(), log_path=str(files.fold_dir / DIVERGED_MARKER))
    if CHECKPOINT_FINAL in files.names:
        pending = "evaluation" if "validation" in files.names else "final validation"
        if running:
            return state(State.RUNNING, f"trained; {pending} running")
        return state(State.FINISHED, f"trained; {pending} to come")
    if obs.slurm_job is not None and obs.slurm_job.pending:
        return state(State.QUEUED, f"SLURM job {obs.slurm_job.job_id} {obs.slurm_job.state.lower()}", len(runs) + 1)
    if running:
        job = f", SLURM job {obs.slurm_job.job_id}" if slurm_running else ""
        epoch = min(epochs_total, epochs_done + 1)  # the one it trains (or validates, checkpoints) now, from 1
        return state(State.RUNNING, f"epoch {epoch} of {epochs_total}, attempt {max(len(runs), 1)}{job}")
    if obs.marked_incomplete and not fresh and last_run is None:
        return state(State.QUEUED, "submitted by Snakemake, not started", 1)
    if last_run is not None and last_run.get("status") == "failed":
        stop = _signal_stop(log)
        if stop:
            return state(State.INTERRUPTED, f"{stop} (the next attempt resumes)")
        line, where = _error_detail(obs)
        return state(State.FAILED, line, log_path=where)
    if files.exists and (log is not None or files.checkpoint_mtime is not None):
        quiet = f"no file written for {(now - activity) / 3600:.1f} h" if activity else "no activity"
        return state(State.INTERRUPTED, f"{quiet}; killed or stopped (the next attempt resumes)")
    if parent_done is False:
        return state(State.WAITING, f"waits for {parent_name} (UpKern start)")
    return state(State.NOT_STARTED, "")
