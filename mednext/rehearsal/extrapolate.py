"""From rehearsal measurements to every job of the DAG: predicted time and memory beside the request.

One row per job group (a rule on a dataset, and a network for training and evaluation; the folds of
a group are alike). Predictions scale the measured per-case cost to the dataset's case count
(:func:`mednext.rehearsal.stages.stage_cost`):

- ``prepare_dataset``: once per job + seconds per case x cases; memory = the largest case's peak.
- ``plan_and_preprocess``: once per job + seconds per case x cases / workers; memory = the main
  process + min(workers, cases) x the largest per-worker peak (every worker may hold a large case).
- ``evaluate``: once per job + seconds per case x a fold's validation cases (a fifth) / workers;
  memory = the main process's baseline + workers x the largest case's peak.
- ``train``: the schedule at the measured seconds per iteration, on the rehearsed GPU, beside the
  attempts the profile allows; peak reserved GPU memory beside the device's. Without a GPU the row
  says so and predicts nothing.
- local rules (splits, summaries, tables) run on the head node: measured at full size, no request.

A job *does not fit* when its predicted memory exceeds its memory request or its predicted time its
first attempt's runtime (planning and conversion restart from scratch on a retry); each such row
names the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mednext.rehearsal.stages import StageMeasurement, stage_cost
from mednext.workflow.calibration import GpuNetwork

FITS, DOES_NOT_FIT, NO_GPU, HEAD_NODE, FAILED = "fits", "does not fit", "not measured: no GPU", "head node", "stage failed"
#: A network the GPU rehearsal did not measure (nnU-Net's own network needs the CPU stages' plans).
NOT_REHEARSED = "not measured: not in the GPU rehearsal (nnU-Net's network needs the CPU stages' plans)"
LOCAL_STAGES: tuple[str, ...] = ("write_splits", "summarize", "results_tables")
NNUNET_FOLDS = 5


@dataclass(frozen=True)
class Requested:
    """What a job group asks for per job: CPUs, memory (MB), minutes per attempt, GPUs, attempts."""

    cpus: int | None = None
    mem_mb: int | None = None
    runtime_min: int | None = None
    gpus: int = 0
    attempts: int = 1
    local: bool = False

    def text(self) -> str:
        if self.local:
            return "head node (local rule)"
        parts = [f"{self.cpus} CPU" if self.cpus else "", f"{self.mem_mb / 1000:.1f} GB" if self.mem_mb else "",
                 f"{self.runtime_min} min" + (f" x {self.attempts} attempts" if self.attempts > 1 else "")
                 if self.runtime_min else "", f"{self.gpus} GPU" if self.gpus else ""]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class GpuFigures:
    """The GPU stages of a rehearsal: device, its memory (MB), and each network's runs; or why there are none."""

    device: str | None
    memory_mb: float | None
    networks: Mapping[str, GpuNetwork]
    missing_reason: str = NO_GPU


@dataclass(frozen=True)
class JobRow:
    """One job group of the DAG with its measurement, prediction, request and verdict."""

    job: str
    dataset: str
    network: str
    jobs: int
    measured: str
    predicted_runtime_min: float | None
    predicted_mem_mb: float | None
    predicted_gpu_mb: float | None
    requested: Requested
    verdict: str
    problem: str = ""
    fix: str = ""
    calibrated: Requested | None = None

    def record(self) -> dict[str, Any]:
        """A flat CSV row."""
        calibrated = self.calibrated or Requested()
        return {
            "job": self.job, "dataset": self.dataset, "network": self.network, "jobs": self.jobs,
            "measured": self.measured, "predicted_runtime_min": _round(self.predicted_runtime_min),
            "predicted_mem_mb": _round(self.predicted_mem_mb), "predicted_gpu_mb": _round(self.predicted_gpu_mb),
            "requested_cpus": self.requested.cpus, "requested_mem_mb": self.requested.mem_mb,
            "requested_runtime_min": self.requested.runtime_min, "requested_gpus": self.requested.gpus,
            "requested_attempts": self.requested.attempts, "requested_local": self.requested.local,
            "calibrated_cpus": calibrated.cpus, "calibrated_mem_mb": calibrated.mem_mb,
            "calibrated_runtime_min": calibrated.runtime_min,
            "verdict": self.verdict, "problem": self.problem, "fix": self.fix,
        }

    def failure_line(self) -> str:
        """The one line a job that does not fit prints."""
        return f"{self.job} {' '.join(filter(None, (self.dataset, self.network)))}: {self.problem}; {self.fix}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _gb(mb: float) -> str:
    return f"{mb / 1000:.1f} GB"


def _cases_text(m: StageMeasurement) -> str:
    per_case = m.seconds_per_case()
    if not per_case:
        return f"{m.wall_s:.0f} s, peak {_gb(m.peak_sum_mb)}"
    times = sorted(per_case.values())
    return (f"{len(per_case)} cases: {times[0]:.0f}-{times[-1]:.0f} s/case, case peak {_gb(m.case_peak_mb())}; "
            f"stage {m.wall_s:.0f} s" + (f", {m.workers} workers, sum {_gb(m.peak_sum_mb)}" if m.workers else ""))


def _verdict(predicted_min: float | None, predicted_mb: float | None, requested: Requested) -> tuple[str, list[str]]:
    problems = []
    if predicted_mb is not None and requested.mem_mb is not None and predicted_mb > requested.mem_mb:
        problems.append("memory")
    if predicted_min is not None and requested.runtime_min is not None and predicted_min > requested.runtime_min:
        problems.append("time")
    return (DOES_NOT_FIT if problems else FITS), problems


def _plan_row(m: StageMeasurement, cases: int, requested: Requested, processes: int) -> JobRow:
    cost = stage_cost(m)
    workers = max(1, min(requested.cpus or 1, cases))
    minutes = (cost.fixed_s + cost.case_s * cases / workers) / 60
    memory = cost.main_peak_mb + workers * cost.case_peak_mb
    verdict, problems = _verdict(minutes, memory, requested)
    problem, fix = "", ""
    if "memory" in problems:
        fitting = int((requested.mem_mb - cost.main_peak_mb) // cost.case_peak_mb) if cost.case_peak_mb else 1
        problem = (f"{workers} workers x {_gb(cost.case_peak_mb)} + main {_gb(cost.main_peak_mb)} = {_gb(memory)} > "
                   f"{_gb(requested.mem_mb)} requested")
        fewer = f" or planning.processes: {fitting}" if 1 <= fitting < workers else ""
        fix = (f"use --set-resources plan_and_preprocess:mem_mb={math.ceil(memory * 1.25)}{fewer} "
               f"(or keep the calibration this rehearsal wrote)")
    if "time" in problems:
        problem = "; ".join(p for p in (problem, f"{minutes:.0f} min for {cases} cases with {workers} workers > "
                                               f"{requested.runtime_min} min requested") if p)
        fix = "; ".join(f for f in (fix, f"use --set-resources plan_and_preprocess:runtime={math.ceil(minutes * 1.2)} "
                                         f"(or keep the calibration)") if f)
    measured = _cases_text(m)
    if workers < processes:  # the request capped the config's workers: say what the uncapped job would need
        uncapped = cost.main_peak_mb + min(processes, cases) * cost.case_peak_mb
        measured += (f"; planning.processes={processes} capped to {workers} workers: {processes} x "
                     f"{_gb(cost.case_peak_mb)} + main = {_gb(uncapped)}"
                     + (f" would not fit {_gb(requested.mem_mb)}" if uncapped > (requested.mem_mb or 0) else ""))
    return JobRow("plan_and_preprocess", m.dataset, "", 1, measured, minutes, memory, None, requested, verdict, problem, fix)


def _prepare_row(m: StageMeasurement, cases: int, requested: Requested) -> JobRow:
    cost = stage_cost(m)
    minutes = (cost.fixed_s + cost.case_s * cases) / 60
    memory = cost.case_peak_mb or m.peak_sum_mb
    verdict, problems = _verdict(minutes, memory, requested)
    problem = "; ".join(filter(None, [
        f"conversion peaks at {_gb(memory)} > {_gb(requested.mem_mb)} requested" if "memory" in problems else "",
        f"{minutes:.0f} min for {cases} cases > {requested.runtime_min} min" if "time" in problems else ""]))
    fix = "; ".join(filter(None, [
        f"use --set-resources prepare_dataset:mem_mb={math.ceil(memory * 1.25)}" if "memory" in problems else "",
        f"use --set-resources prepare_dataset:runtime={math.ceil(minutes * 1.2)}" if "time" in problems else ""]))
    measured = _cases_text(m) + ("; " + m.note if m.note else "")
    return JobRow("prepare_dataset", m.dataset, "", 1, measured, minutes, memory, None, requested, verdict, problem, fix)


def _evaluate_row(m: StageMeasurement, cases: int, requested: Requested, network: str, jobs: int) -> JobRow:
    cost = stage_cost(m)
    fold_cases = math.ceil(cases / NNUNET_FOLDS)
    busy = max(1, min(requested.cpus or 1, fold_cases))
    minutes = (cost.fixed_s + cost.case_s * fold_cases / busy) / 60
    memory = cost.case_peak_mb if busy == 1 else cost.main_peak_mb + busy * cost.case_peak_mb
    verdict, problems = _verdict(minutes, memory, requested)
    problem = "; ".join(filter(None, [
        f"{busy} workers x {_gb(cost.case_peak_mb)} = {_gb(memory)} > {_gb(requested.mem_mb)} requested"
        if "memory" in problems else "",
        f"{minutes:.0f} min for {fold_cases} cases > {requested.runtime_min} min" if "time" in problems else ""]))
    fitting = max(1, int((requested.mem_mb or 0) // cost.case_peak_mb)) if cost.case_peak_mb else 1
    fix = "; ".join(filter(None, [
        f"use --set-resources evaluate:mem_mb={math.ceil(memory * 1.25)} or evaluation.workers: {fitting}"
        if "memory" in problems else "",
        f"use --set-resources evaluate:runtime={math.ceil(minutes * 1.2)}" if "time" in problems else ""]))
    return JobRow("evaluate", m.dataset, network, jobs, _cases_text(m), minutes, memory, None, requested, verdict,
                  problem, fix)


def _local_row(m: StageMeasurement) -> JobRow:
    measured = f"{m.wall_s:.0f} s, peak {_gb(m.peak_sum_mb)}" + (f" ({m.note or m.source})" if m.note or m.source else "")
    return JobRow(m.stage, m.dataset, "", 1, measured, m.wall_s / 60, m.peak_sum_mb, None, Requested(local=True), HEAD_NODE)


def _train_row(dataset: str, network: str, jobs: int, requested: Requested, gpu: GpuFigures,
               hours: float | None, reserved_mb: float | None, gpu_margin: float, estimate_h: float) -> JobRow:
    if hours is None or reserved_mb is None:
        return JobRow("train", dataset, network, jobs, f"{gpu.missing_reason} (estimate: {estimate_h:.1f} h on an A100)",
                      None, None, None, requested, gpu.missing_reason)
    minutes = hours * 60
    allowed = (requested.runtime_min or 0) * requested.attempts
    problems, fixes = [], []
    if minutes > allowed:
        problems.append(f"{hours:.1f} h > {requested.attempts} attempts x {requested.runtime_min} min")
        needed = math.ceil(minutes / (requested.runtime_min or 1))
        fixes.append(f"set retries: {needed} in the profile ({needed} attempts of {requested.runtime_min} min, one spare)")
    if gpu.memory_mb is not None and reserved_mb * gpu_margin > gpu.memory_mb:
        problems.append(f"{_gb(reserved_mb)} reserved x {gpu_margin:g} > {gpu.device} {_gb(gpu.memory_mb)}")
        fixes.append("train with gradient_checkpointing: on, or on a larger GPU")
    measured = f"{hours:.1f} h per training on {gpu.device}, {_gb(reserved_mb)} GPU reserved"
    return JobRow("train", dataset, network, jobs, measured, minutes, None, reserved_mb, requested,
                  DOES_NOT_FIT if problems else FITS, "; ".join(problems), "; ".join(fixes))


def job_rows(
    measurements: Sequence[StageMeasurement],
    config: Mapping[str, Any],
    requested: Mapping[tuple[str, str, str], Requested],
    case_counts: Mapping[str, int],
    gpu: GpuFigures,
    train_figures: Mapping[str, tuple[float | None, float | None, float]] | None = None,
    gpu_margin: float = 1.15,
    jobs: Mapping[tuple[str, str, str], int] | None = None,
) -> list[JobRow]:
    """Every job group's row.

    Args:
        measurements: the rehearsed CPU stages.
        requested: what each job group requests, keyed by (job, dataset, network): network "" for a
            dataset's jobs (evaluation is alike for every network), dataset "" for a network's trainings
            (alike on every dataset).
        case_counts: training cases per dataset (the full size predictions scale to).
        gpu: the GPU stages' figures (or why there are none).
        train_figures: per network (hours per training, peak reserved MB, estimated A100 hours).
        jobs: jobs per group (default: one per fold).
    """
    folds = len(config["folds"])
    count = (lambda key: (jobs or {}).get(key, folds))
    rows: list[JobRow] = []
    processes = int(config["planning"]["processes"])
    for m in measurements:
        if not m.ok:
            rows.append(JobRow(m.stage, m.dataset, "", 1, f"stage failed (exit {m.returncode}; log {m.log})", None, None,
                               None, requested.get((m.stage, m.dataset, ""), Requested()), FAILED,
                               f"the rehearsed stage failed with exit code {m.returncode}", f"see {m.log}"))
            continue
        if m.stage in LOCAL_STAGES:
            rows.append(_local_row(m))
        elif m.stage == "prepare_dataset":
            rows.append(_prepare_row(m, case_counts[m.dataset], requested[("prepare_dataset", m.dataset, "")]))
        elif m.stage == "plan_and_preprocess":
            rows.append(_plan_row(m, case_counts[m.dataset], requested[("plan_and_preprocess", m.dataset, "")], processes))
        elif m.stage == "evaluate":
            key = ("evaluate", m.dataset, "")
            rows.append(_evaluate_row(m, case_counts[m.dataset], requested[key], "", count(key)))
    for (job, dataset, network), request in sorted(requested.items()):
        if job == "train":
            hours, reserved, estimate = (train_figures or {}).get(network, (None, None, float("nan")))
            rows.append(_train_row(dataset, network, count((job, dataset, network)), request, gpu, hours, reserved,
                                   gpu_margin, estimate))
    return rows


def failures(rows: Sequence[JobRow]) -> list[JobRow]:
    """Rows of jobs that would not fit (or whose rehearsed stage failed)."""
    return [row for row in rows if row.verdict in (DOES_NOT_FIT, FAILED)]
