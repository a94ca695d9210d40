"""What one rehearsed stage measured, and the per-case costs a calibration keeps from it.

A :class:`StageMeasurement` is one measured run of one DAG rule on one dataset's rehearsal cases
(or, for the tables, on a grid of the full size): its wall time, the peak of the summed memory of
its process tree, its main process's and largest worker's peak, and every case its processes
marked. :func:`stage_cost` reduces it to what extrapolates to the whole dataset
(:class:`~mednext.workflow.calibration.StageCost`): seconds per case of one worker, seconds once
per job, and the peaks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from mednext.rehearsal.measure import MeasuredRun
from mednext.workflow.calibration import StageCost

#: Phases of the planning job whose cases run in nnU-Net's worker pool (the rest runs once per job).
POOL_PHASE_PREFIXES: tuple[str, ...] = ("fingerprint", "preprocess")


@dataclass(frozen=True)
class CaseFigure:
    """One case of a stage: its wall time and its process's peak (MB); ``detail`` e.g. the configuration."""

    case: str
    wall_s: float
    peak_mb: float | None
    detail: str = ""
    pid: int = 0
    rss_at_start_mb: float | None = None


@dataclass(frozen=True)
class StageMeasurement:
    """One measured stage (a DAG rule) on one dataset's rehearsal cases; memory in MB, times in s."""

    stage: str
    dataset: str
    wall_s: float
    peak_sum_mb: float
    main_peak_mb: float
    worker_peak_mb: float
    workers: int
    cases: tuple[CaseFigure, ...] = ()
    phases: dict[str, float] = field(default_factory=dict)
    returncode: int = 0
    source: str = ""
    note: str = ""
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def case_ids(self) -> list[str]:
        return sorted({c.case for c in self.cases})

    def seconds_per_case(self) -> dict[str, float]:
        """Worker-seconds per case, summed over the case's marks (fingerprint + each configuration)."""
        totals: dict[str, float] = defaultdict(float)
        for mark in self.cases:
            totals[mark.case] += mark.wall_s
        return dict(totals)

    def case_peak_mb(self) -> float:
        """The largest peak of a process while it handled one case (0 without case marks)."""
        return max((c.peak_mb or 0.0 for c in self.cases), default=0.0)


def from_run(stage: str, dataset: str, run: MeasuredRun, *, source: str = "", note: str = "") -> StageMeasurement:
    """A :class:`StageMeasurement` from a :class:`~mednext.rehearsal.measure.MeasuredRun`."""
    cases = tuple(CaseFigure(c.case, c.wall_s, c.peak_mb, c.detail, c.pid, c.rss_at_start_mb) for c in run.cases)
    return StageMeasurement(stage, dataset, run.wall_s, run.memory.peak_sum_mb, run.main_peak_mb, run.worker_peak_mb,
                            run.n_workers, cases, dict(run.phases), run.returncode, source, note,
                            "" if run.log is None else str(run.log))


def stage_cost(measurement: StageMeasurement) -> StageCost:
    """Per-case and per-job cost of a stage, for extrapolation to a dataset's case count.

    Pools (planning): seconds per case = the mean over cases of the worker-seconds each case took in
    every pool phase; once per job = the wall time outside the pool phases (start-up, planning);
    the worker peak = the largest per-case peak (exact, from the kernel) or sampled worker peak.
    Sequential stages (conversion, evaluation): seconds per case = the mean marked case time; once
    per job = the rest of the wall time; the main process's baseline = its memory before its first case.
    """
    per_case = measurement.seconds_per_case()
    n = len(per_case)
    case_s = sum(per_case.values()) / n if n else 0.0
    pool_s = sum(s for phase, s in measurement.phases.items() if phase.startswith(POOL_PHASE_PREFIXES))
    if measurement.workers > 0:  # cases ran in worker processes
        fixed = (max(0.0, measurement.wall_s - pool_s) if pool_s
                 else max(0.0, measurement.wall_s - case_s * n / measurement.workers))
        peak = max(measurement.case_peak_mb(), measurement.worker_peak_mb)
        return StageCost(case_s, fixed, peak, measurement.main_peak_mb, n)
    fixed = max(0.0, measurement.wall_s - sum(per_case.values()))
    baseline = min((c.rss_at_start_mb for c in measurement.cases if c.rss_at_start_mb), default=0.0)
    peak = max(measurement.case_peak_mb(), measurement.main_peak_mb if not measurement.cases else 0.0)
    return StageCost(case_s, fixed, peak, baseline, n)
