"""One status row per (dataset, network, fold) of a workflow config, read from disk, and the grid's totals.

Rows come from :func:`mednext.workflow.grid.all_runs` (main grid, ablations and every UpKern parent)
and their files from :class:`mednext.workflow.layout.Layout`, so ``status`` sees exactly the trainings
the workflow runs. Relative config paths are taken from the workflow's working folder, as Snakemake does.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mednext.networks import get_network
from mednext.runs import Run
from mednext.status.eta import PendingTraining, schedule_hours
from mednext.status.fold_state import BLOCKED_STATES, CHECKPOINT_FINAL, DONE_STATES, State, decide_state, observe_fold
from mednext.status.slurm_queue import QueuedJob, train_job_comment
from mednext.status.snakemake_state import incomplete_outputs
from mednext.workflow.grid import all_runs, datasets_of
from mednext.workflow.layout import Layout
from mednext.workflow.resources import REFERENCE_GPU, training_hours

SLURM_LOG_DIR = Path(".snakemake") / "slurm_logs" / "rule_train"


@dataclass(frozen=True)
class StatusRow:
    """One training's status (a row of ``status.csv``). Hours are device hours (one GPU per training)."""

    dataset: str
    network: str
    fold: int
    state: str
    detail: str
    epochs_done: int
    epochs: int
    attempt: int
    checkpoint_age_h: float
    ema_pseudo_dice: float
    hours_used: float
    hours_estimate: float
    epoch_seconds: float
    hours_left: float
    upkern_parent: str
    log: str
    fold_dir: str

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class GridStatus:
    """The rows, the grid's remaining hours on ``gpus`` GPUs, and what was asked of SLURM."""

    rows: list[StatusRow]
    gpus: int
    eta_hours: float
    blocked: int  # failed or diverged trainings, and trainings that wait for one of them
    squeue_used: bool
    estimate_source: str
    slot_name: str  # what runs one training: "GPU", or "CPU job" for a CPU config (the demo)
    measured_networks: int  # networks with a measured epoch time (0: the ETA is the estimate alone)

    def counts(self) -> dict[str, int]:
        counts = {state.value: 0 for state in State}
        for row in self.rows:
            counts[row.state] += 1
        return counts


def _absolute(path: str | Path, workdir: Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else workdir / path


def _queue_index(jobs: Sequence[QueuedJob] | None) -> tuple[dict[str, QueuedJob], dict[str, QueuedJob]]:
    jobs = jobs or []
    return {j.comment: j for j in jobs}, {j.job_id: j for j in jobs}


def collect_status(config: Mapping[str, Any], workdir: Path, queue: Sequence[QueuedJob] | None = None,
                   gpus: int | None = None, now: float | None = None) -> GridStatus:
    """Read every training of ``config`` under ``workdir`` and schedule what is left on ``gpus`` GPUs.

    Args:
        queue: this user's SLURM jobs (:func:`mednext.status.slurm_queue.query_squeue`); ``None`` when
            squeue was not asked, and states then come from the files alone.
        gpus: GPUs the remaining trainings share; default: as many as run now (at least 1).
    """
    now = time.time() if now is None else now
    workdir = Path(workdir).resolve()
    layout = Layout.from_config(config)
    runs = sorted(all_runs(config), key=_config_order(config))
    epochs = int(config["training"]["epochs"])
    incomplete = incomplete_outputs(workdir)
    by_comment, by_job_id = _queue_index(queue)
    observations = {}
    for run in runs:
        checkpoint = _absolute(layout.checkpoint(run), workdir)
        wildcards = _train_wildcards(run, checkpoint)
        marked = checkpoint.resolve() in incomplete
        job = by_comment.get(train_job_comment(*wildcards)) or by_job_id.get(incomplete.get(checkpoint.resolve()) or "")
        observations[run] = observe_fold(
            checkpoint.parent, evaluated=_absolute(layout.metrics(run), workdir).is_file(), marked_incomplete=marked,
            slurm_job=job, queue_known=queue is not None, rule_log=_absolute(layout.train_log(run), workdir),
            slurm_log_dir=workdir / SLURM_LOG_DIR / "_".join(map(str, wildcards)),
        )
    measured = _epoch_seconds_by_network(observations)
    estimates = {network: training_hours(network, config) for network in {run.network for run in runs}}
    speed = _measured_over_estimated(measured, estimates, epochs)
    rows, pending = [], []
    states: dict[Run, State] = {}
    for run in runs:
        obs = observations[run]
        decided = _decide(run, observations, epochs, now, states)
        parent = run.parent()
        estimate = estimates[run.network]
        seconds = (obs.log.epoch_seconds if obs.log and obs.log.epoch_seconds else None) \
            or measured.get(run.network) or speed * estimate * 3600 / epochs
        left = _hours_left(decided.state, decided.epochs_done, epochs, seconds)
        if left is not None and left > 0:
            pending.append(PendingTraining(run, left, parent, running=decided.state is State.RUNNING))
        age = (now - obs.files.checkpoint_mtime) / 3600 if obs.files.checkpoint_mtime else math.nan
        ema = obs.log.ema_pseudo_dice if obs.log and obs.log.ema_pseudo_dice is not None else math.nan
        rows.append(StatusRow(
            dataset=run.dataset, network=run.network, fold=run.fold, state=decided.state.value, detail=decided.detail,
            epochs_done=decided.epochs_done, epochs=epochs, attempt=decided.attempt, checkpoint_age_h=age,
            ema_pseudo_dice=ema, hours_used=decided.hours_used, hours_estimate=estimate,
            epoch_seconds=seconds if obs.log and obs.log.epoch_seconds else math.nan,
            hours_left=math.nan if left is None else left, upkern_parent=parent.network if parent else "",
            log=decided.log_path, fold_dir=str(obs.files.fold_dir),
        ))
    schedulable, blocked = _without_blocked(pending, {r for r, s in states.items() if s in BLOCKED_STATES})
    running_now = sum(1 for p in schedulable if p.running)
    gpus = max(1, running_now) if gpus is None else gpus
    cuda = config.get("device", "cuda") == "cuda"
    source = f"estimate: one {REFERENCE_GPU} per training" + ("" if cuda else "; this config trains on the CPU")
    return GridStatus(rows=rows, gpus=gpus, eta_hours=schedule_hours(schedulable, gpus),
                      blocked=blocked + sum(1 for s in states.values() if s in BLOCKED_STATES),
                      squeue_used=queue is not None, estimate_source=source, slot_name="GPU" if cuda else "CPU job",
                      measured_networks=len(measured))


def _config_order(config: Mapping[str, Any]):
    """Sort key of runs in the config's order: its datasets, then its networks, ablations, UpKern parents."""
    datasets = datasets_of(config)
    networks = list(dict.fromkeys([*config["networks"], *config.get("ablations", {}).get("networks", [])]))

    def key(run: Run) -> tuple[int, int, str, int]:
        network_rank = networks.index(run.network) if run.network in networks else len(networks)
        return datasets.index(run.dataset), network_rank, run.network, run.fold

    return key


def _train_wildcards(run: Run, checkpoint: Path) -> tuple[str, str, str, int]:
    """dataset folder, trainer, configuration and fold of the ``train`` job of ``run`` (its checkpoint path)."""
    spec = get_network(run.network)
    return checkpoint.parents[2].name, spec.trainer_name, spec.configuration, run.fold


def _decide(run: Run, observations: dict, epochs: int, now: float, states: dict[Run, State]):
    parent = run.parent()
    parent_obs = observations.get(parent) if parent else None
    parent_done = None if parent is None else bool(parent_obs and CHECKPOINT_FINAL in parent_obs.files.names)
    decided = decide_state(observations[run], epochs, parent_done, parent.network if parent else None, now)
    states[run] = decided.state
    return decided


def _epoch_seconds_by_network(observations: Mapping[Run, Any]) -> dict[str, float]:
    """The median measured epoch time of each network over its trainings that logged one (any dataset)."""
    times: dict[str, list[float]] = {}
    for run, obs in observations.items():
        if obs.log and obs.log.epoch_seconds:
            times.setdefault(run.network, []).append(obs.log.epoch_seconds)
    return {network: statistics.median(values) for network, values in times.items()}


def _measured_over_estimated(measured: Mapping[str, float], estimates: Mapping[str, float], epochs: int) -> float:
    """How much slower than estimated (``estimates``: hours per training) this grid's epochs run (median
    over the measured networks; 1 without a measurement), so that a network not yet measured is timed
    like the measured ones."""
    ratios = [seconds / (estimates[network] * 3600 / epochs) for network, seconds in measured.items()
              if estimates[network] > 0]
    return statistics.median(ratios) if ratios else 1.0


def _hours_left(state: State, epochs_done: int, epochs: int, epoch_seconds: float) -> float | None:
    """Device hours a training still needs; ``None`` when it is blocked (failed, diverged)."""
    if state in DONE_STATES:
        return 0.0
    if state in BLOCKED_STATES:
        return None
    return max(0, epochs - epochs_done) * epoch_seconds / 3600


def _without_blocked(pending: list[PendingTraining], blocked: set[Run]) -> tuple[list[PendingTraining], int]:
    """``pending`` less the trainings that wait (through UpKern) for a blocked one, and how many those were."""
    keep, dropped = [], 0
    for training in pending:
        chain, parent = False, training.parent
        while parent is not None:
            if parent in blocked:
                chain = True
                break
            parent = parent.parent()
        if chain:
            dropped += 1
        else:
            keep.append(training)
    return keep, dropped


def rows_as_records(rows: Sequence[StatusRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
