"""The rehearsal's outputs: ``rehearsal.csv`` (one row per job group), ``measurements.csv`` (every
measured stage and case), ``rehearsal.md`` (both, readable) and ``rehearsal.png`` (which jobs fit)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mednext.atomic import atomic_output, atomic_write_csv, atomic_write_text
from mednext.rehearsal.extrapolate import DOES_NOT_FIT, FAILED, HEAD_NODE, NO_GPU, JobRow
from mednext.rehearsal.stages import StageMeasurement, stage_cost


def measurements_frame(measurements: Sequence[StageMeasurement]) -> pd.DataFrame:
    """One row per measured stage (case ``*``) and per marked case: wall time, peaks, workers."""
    rows = []
    for m in measurements:
        cost = stage_cost(m) if m.ok else None
        rows.append({"stage": m.stage, "dataset": m.dataset, "case": "*", "detail": m.note, "source": m.source,
                     "wall_s": round(m.wall_s, 2), "peak_sum_mb": round(m.peak_sum_mb, 1),
                     "main_peak_mb": round(m.main_peak_mb, 1), "worker_peak_mb": round(m.worker_peak_mb, 1),
                     "workers": m.workers, "case_s": None if cost is None else round(cost.case_s, 2),
                     "fixed_s": None if cost is None else round(cost.fixed_s, 2), "returncode": m.returncode})
        for phase, seconds in sorted(m.phases.items()):
            rows.append({"stage": m.stage, "dataset": m.dataset, "case": "*", "detail": f"phase {phase}",
                         "source": m.source, "wall_s": round(seconds, 2)})
        for case in m.cases:
            rows.append({"stage": m.stage, "dataset": m.dataset, "case": case.case, "detail": case.detail,
                         "source": m.source, "wall_s": round(case.wall_s, 2),
                         "worker_peak_mb": None if case.peak_mb is None else round(case.peak_mb, 1)})
    columns = ["stage", "dataset", "case", "detail", "source", "wall_s", "peak_sum_mb", "main_peak_mb",
               "worker_peak_mb", "workers", "case_s", "fixed_s", "returncode"]
    return pd.DataFrame(rows, columns=columns)


def jobs_frame(rows: Sequence[JobRow]) -> pd.DataFrame:
    return pd.DataFrame([row.record() for row in rows])


def _fmt_min(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value / 60:.1f} h" if value >= 120 else f"{value:.1f} min"


def _fmt_mb(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:.1f} GB"


def markdown(rows: Sequence[JobRow], measurements: Sequence[StageMeasurement], header: Sequence[str]) -> str:
    """The report: the header lines, the verdicts, the job table and the per-stage figures."""
    lines = ["# Rehearsal", "", *header, ""]
    bad = [r for r in rows if r.verdict in (DOES_NOT_FIT, FAILED)]
    lines += ["## Verdict", ""]
    lines += [f"- **{r.failure_line()}**" for r in bad] or ["- every measured job fits its request"]
    lines += ["", "## Jobs of the DAG", "",
              "| job | dataset | network | jobs | measured | predicted time | predicted memory | requested | "
              "calibrated request | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        memory = _fmt_mb(r.predicted_gpu_mb) + " GPU" if r.predicted_gpu_mb is not None else _fmt_mb(r.predicted_mem_mb)
        calibrated = r.calibrated.text() if r.calibrated is not None else ""
        lines.append(f"| {r.job} | {r.dataset} | {r.network} | {r.jobs} | {r.measured} | {_fmt_min(r.predicted_runtime_min)} "
                     f"| {memory} | {r.requested.text()} | {calibrated} | {r.verdict} |")
    lines += ["", "## Per stage and case", "",
              "| stage | dataset | case | detail | wall | peak (sum over processes) | worker / case peak |",
              "|---|---|---|---|---|---|---|"]
    frame = measurements_frame(measurements)
    def cell(record: dict, key: str) -> str:
        value = record.get(key)
        return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value / 1000:.2f} GB"

    for record in frame.to_dict("records"):
        lines.append(f"| {record['stage']} | {record['dataset']} | {record['case']} | {record['detail'] or ''} | "
                     f"{record['wall_s']:.1f} s | {cell(record, 'peak_sum_mb')} | {cell(record, 'worker_peak_mb')} |")
    return "\n".join(lines) + "\n"


def figure(rows: Sequence[JobRow], path: Path) -> Path:
    """Predicted / requested, memory and time, per job group that has both (log scale; 1 = the request)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.verdict not in (HEAD_NODE,)]
    labels, memory, time, failed = [], [], [], []
    for r in shown:
        labels.append(" ".join(filter(None, (r.job, r.dataset, r.network))))
        memory.append(r.predicted_mem_mb / r.requested.mem_mb if r.predicted_mem_mb and r.requested.mem_mb else float("nan"))
        allowed = (r.requested.runtime_min or 0) * (r.requested.attempts if r.job == "train" else 1)
        time.append(r.predicted_runtime_min / allowed if r.predicted_runtime_min and allowed else float("nan"))
        failed.append(r.verdict == FAILED)
    height = max(3.0, 0.22 * len(shown) + 1.2)
    fig, axes = plt.subplots(1, 2, figsize=(13, height), sharey=True)
    ys = list(range(len(shown)))
    for ax, values, title in ((axes[0], memory, "memory: predicted / requested"), (axes[1], time, "time: predicted / allowed")):
        # each panel coloured by its own ratio: a job whose memory does not fit may still have time enough
        finite = [(y, v, "tab:red" if bad or v > 1.0 else "tab:green") for y, v, bad in zip(ys, values, failed) if v == v]
        ax.barh([y for y, _, _ in finite], [v for _, v, _ in finite], color=[c for _, _, c in finite])
        for y, v, r in zip(ys, values, shown):
            if v != v:
                ax.text(0.01, y, NO_GPU if r.verdict == NO_GPU else "—", va="center", fontsize=7,
                        color="gray", transform=ax.get_yaxis_transform())
        ax.axvline(1.0, color="black", linewidth=1)
        ax.set_xscale("log")
        finite_values = [v for v in values if v == v and v > 0]
        ax.set_xlim(min([1e-2, *[v / 2 for v in finite_values]]), max([10.0, *[v * 1.5 for v in finite_values]]))
        ax.set_title(title, fontsize=10)
    axes[0].set_yticks(ys, labels, fontsize=7)
    axes[0].set_ylim(len(shown) - 0.5, -0.5)  # first row on top, no row cut by the axes
    fig.suptitle("Rehearsal: which jobs fit their request (green fits, red does not, 1 = the request)", fontsize=11)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def write_report(out_dir: Path, rows: Sequence[JobRow], measurements: Sequence[StageMeasurement],
                 header: Sequence[str]) -> list[Path]:
    """Write rehearsal.csv, measurements.csv, rehearsal.md and rehearsal.png into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [atomic_write_csv(jobs_frame(rows), out_dir / "rehearsal.csv"),
            atomic_write_csv(measurements_frame(measurements), out_dir / "measurements.csv"),
            atomic_write_text(out_dir / "rehearsal.md", markdown(rows, measurements, header)),
            figure(rows, out_dir / "rehearsal.png")]
