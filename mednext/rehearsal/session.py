"""A rehearsal from start to end: requests before, stages, calibration, rows after, report, exit code.

The CPU stages (:mod:`mednext.rehearsal.engine`) and the GPU stages (:mod:`mednext.rehearsal.gpu`)
may run in separate jobs (a CPU job and a GPU job on a cluster, through the same profile): each run
merges what it measured into ``measurements.json`` and the calibration file, and the report is built
from everything measured so far. What a job requests is read before this run writes its calibration
(what the DAG would have asked for) and after (the calibrated request).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mednext.atomic import atomic_write_text
from mednext.provenance import utc_now
from mednext.rehearsal.extrapolate import NO_GPU, NOT_REHEARSED, GpuFigures, JobRow, Requested, failures, job_rows
from mednext.rehearsal.stages import CaseFigure, StageMeasurement, stage_cost
from mednext.workflow import resources as res
from mednext.workflow.calibration import Calibration, GpuNetwork, calibration_path, load_calibration, write_calibration
from mednext.workflow.grid import ablation_runs, all_runs, datasets_of, main_runs

MEASUREMENTS_FILE = "measurements.json"
PROFILE = Path(__file__).resolve().parents[2] / "slurm" / "config.yaml"
#: Calibration stages kept from the rehearsal's DAG rules.
CALIBRATED_STAGES = ("prepare_dataset", "plan_and_preprocess", "evaluate")


def profile_attempts(config: Mapping[str, Any]) -> int:
    """Attempts a job gets: the shipped SLURM profile's ``retries`` + 1 (else what the grid needs)."""
    try:
        return int(yaml.safe_load(PROFILE.read_text())["retries"]) + 1
    except (OSError, KeyError, TypeError, ValueError):
        return res.retries_needed(config) + 1


def requests(config: Mapping[str, Any]) -> dict[tuple[str, str, str], Requested]:
    """What every job group of the DAG requests now (with the calibration file as it is)."""
    out: dict[tuple[str, str, str], Requested] = {}
    for dataset in datasets_of(config):
        for job, request in (("prepare_dataset", res.prepare_request(dataset, config)),
                             ("plan_and_preprocess", res.plan_request(dataset, config))):
            out[(job, dataset, "")] = Requested(request.cpus, request.mem_mb, request.runtime_min)
    for dataset in sorted({run.dataset for run in set(main_runs(config)) | set(ablation_runs(config))}):
        request = res.evaluate_request(dataset, config)  # alike for every network and fold of the dataset
        out[("evaluate", dataset, "")] = Requested(request.cpus, request.mem_mb, request.runtime_min)
    gpu = config.get("device", "cuda") == "cuda"
    attempts = profile_attempts(config) if gpu else 1
    resources = res.merged_resources(config)
    for network in sorted({run.network for run in all_runs(config)}):  # alike on every dataset
        out[("train", "", network)] = Requested(
            resources["cpus_per_gpu"] if gpu else 1, res.train_mem_mb(network, config),
            res.train_runtime_minutes(network, config), 1 if gpu else 0, attempts)
    return out


def job_counts(config: Mapping[str, Any]) -> dict[tuple[str, str, str], int]:
    """Jobs of each job group: a dataset's evaluations (networks x folds), a network's trainings (datasets x folds)."""
    counts: dict[tuple[str, str, str], int] = {}
    for run in set(main_runs(config)) | set(ablation_runs(config)):
        counts[("evaluate", run.dataset, "")] = counts.get(("evaluate", run.dataset, ""), 0) + 1
    for run in all_runs(config):
        counts[("train", "", run.network)] = counts.get(("train", "", run.network), 0) + 1
    return counts


def save_measurements(path: Path, measurements: Sequence[StageMeasurement]) -> list[StageMeasurement]:
    """Merge ``measurements`` into the JSON file (a stage of a dataset replaces its earlier record)."""
    kept = {(m.stage, m.dataset): m for m in load_measurements(path)}
    kept.update({(m.stage, m.dataset): m for m in measurements})
    merged = list(kept.values())
    atomic_write_text(path, json.dumps([asdict(m) for m in merged], indent=1))
    return merged


def load_measurements(path: Path) -> list[StageMeasurement]:
    if not path.is_file():
        return []
    records = json.loads(path.read_text())
    return [StageMeasurement(**{**r, "cases": tuple(CaseFigure(**c) for c in r["cases"])}) for r in records]


def calibration_from(measurements: Sequence[StageMeasurement], previous: Calibration | None,
                     gpu: GpuFigures | None, host: Mapping[str, Any]) -> Calibration:
    """The calibration of ``measurements`` (and GPU figures), kept entries of ``previous`` for the rest."""
    datasets = {d: dict(stages) for d, stages in (previous.datasets if previous else {}).items()}
    for m in measurements:
        if m.ok and m.stage in CALIBRATED_STAGES:
            datasets.setdefault(m.dataset, {})[m.stage] = stage_cost(m)
    device, memory = (previous.gpu_device, previous.gpu_memory_mb) if previous else (None, None)
    networks: dict[str, GpuNetwork] = dict(previous.networks) if previous else {}
    if gpu is not None and gpu.device is not None:
        device, memory = gpu.device, gpu.memory_mb
        networks.update(gpu.networks)
    return Calibration(datasets, device, memory, networks, dict(host), utc_now())


def host_facts() -> dict[str, Any]:
    import os

    import psutil

    return {"host": platform.node(), "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1)}


@dataclass(frozen=True)
class Outcome:
    rows: list[JobRow]
    measurements: list[StageMeasurement]
    calibration: Path
    files: list[Path]

    @property
    def failed(self) -> list[JobRow]:
        return failures(self.rows)


def finish(config: Mapping[str, Any], out_dir: Path, new: Sequence[StageMeasurement], gpu: GpuFigures | None,
           before: Mapping[tuple[str, str, str], Requested], header: Sequence[str],
           progress: Callable[[str], None] | None = None) -> Outcome:
    """Merge, calibrate, extrapolate and report (``before``: the requests read before the stages ran)."""
    import fcntl

    from mednext.rehearsal.report import write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:  # a CPU job and a GPU job may finish at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _merge_and_report(config, out_dir, new, gpu, before, header, progress, write_report)


def _merge_and_report(config: Mapping[str, Any], out_dir: Path, new: Sequence[StageMeasurement], gpu: GpuFigures | None,
                      before: Mapping[tuple[str, str, str], Requested], header: Sequence[str],
                      progress: Callable[[str], None] | None,
                      write_report: Callable[..., list[Path]]) -> Outcome:
    measurements = save_measurements(out_dir / MEASUREMENTS_FILE, new)
    path = calibration_path(config)
    calibration = calibration_from(measurements, load_calibration(config), gpu, host_facts())
    write_calibration(calibration, path)
    (progress or print)(f"calibration written to {path}")
    after = requests(config)
    configured = set(datasets_of(config))
    shown = [m for m in measurements if m.dataset in configured or m.dataset == "all"]
    figures = gpu if gpu is not None else (
        GpuFigures(calibration.gpu_device, calibration.gpu_memory_mb, calibration.networks, NOT_REHEARSED)
        if calibration.gpu_device else GpuFigures(None, None, {}, NO_GPU))
    header = [*header, f"- GPU stages: {figures.device or figures.missing_reason}"]
    train = {}
    for network in sorted({r.network for r in all_runs(config)}):
        run = res.rehearsed_gpu_run(network, config)
        train[network] = (res.measured_training_hours(network, config), None if run is None else run.reserved_mb,
                          res.estimated_training_hours(network, config))
    counts = {d: res.dataset_cases(d) for d in configured}
    rows = job_rows(shown, config, before, counts, figures, train, float(res.merged_resources(config)["gpu_memory_margin"]),
                    job_counts(config))
    rows = [replace(row, calibrated=after.get((row.job, row.dataset, row.network))) for row in rows]
    files = write_report(out_dir, rows, shown, header)
    return Outcome(rows, measurements, path, [path, *files])
