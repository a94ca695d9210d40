"""The grid status as a terminal table (grouped by dataset), a summary line and ``status.csv``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from mednext.atomic import atomic_write_csv
from mednext.status.fold_state import State
from mednext.status.grid_status import GridStatus, StatusRow, rows_as_records


def duration(hours: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h`` or ``2.1 d``; empty for NaN."""
    if hours is None or math.isnan(hours):
        return ""
    seconds = hours * 3600
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def filter_rows(rows: Sequence[StatusRow], datasets: Sequence[str] = (), networks: Sequence[str] = (),
                states: Sequence[str] = ()) -> list[StatusRow]:
    """The rows whose dataset, network and state are among those given (an empty filter keeps all)."""
    return [r for r in rows if (not datasets or r.dataset in datasets) and (not networks or r.network in networks)
            and (not states or r.state in states)]


def summary_lines(status: GridStatus, now: datetime | None = None) -> list[str]:
    """The grid's counts per state, device hours used against the estimate, and the ETA."""
    now = datetime.now() if now is None else now
    counts = ", ".join(f"{n} {state}" for state, n in status.counts().items() if n)
    used = sum(r.hours_used for r in status.rows)
    estimate = sum(r.hours_estimate for r in status.rows)
    lines = [f"grid: {len(status.rows)} trainings: {counts}",
             f"device hours used {used:,.2f} of {estimate:,.2f} estimated ({status.estimate_source})"]
    if status.eta_hours > 0:
        finish = now + timedelta(hours=status.eta_hours)
        lines.append(f"remaining {duration(status.eta_hours)} of training on {status.gpus} {status.slot_name}"
                     f"{'s' if status.gpus > 1 else ''} (UpKern parents first): done about {finish:%Y-%m-%d %H:%M}")
        lines.append(f"  from the epoch times of {status.measured_networks} measured network(s)" if status.measured_networks
                     else "  from the estimate alone: no epoch measured yet")
    else:
        lines.append("nothing left to train" if not status.blocked else "nothing left that can train")
    if status.blocked:
        lines.append(f"{status.blocked} training(s) need you: failed or diverged, or waiting for one that did "
                     "(not in the ETA)")
    if not status.squeue_used:
        lines.append("squeue not used: queued/running read from Snakemake's markers and file times")
    return lines


_HEADER = ("network", "fold", "state", "epoch", "attempt", "last ckpt", "EMA Dice", "hours used/est", "detail")


def _cells(row: StatusRow) -> tuple[str, ...]:
    dice = "" if math.isnan(row.ema_pseudo_dice) else f"{row.ema_pseudo_dice:.4f}"
    age = duration(row.checkpoint_age_h)
    hours = f"{row.hours_used:.2f}/{row.hours_estimate:.2f}" if row.hours_estimate < 10 else \
        f"{row.hours_used:.0f}/{row.hours_estimate:.0f}"
    detail = row.detail + (f"  [{row.log}]" if row.state in (State.FAILED.value, State.DIVERGED.value) and row.log else "")
    return (row.network, str(row.fold), row.state, f"{row.epochs_done}/{row.epochs}", str(row.attempt or ""),
            f"{age} ago" if age else "", dice, hours, detail)


def format_table(rows: Sequence[StatusRow]) -> str:
    """Rows grouped by dataset (config order), one aligned table per dataset."""
    out: list[str] = []
    by_dataset: dict[str, list[StatusRow]] = {}
    for row in rows:
        by_dataset.setdefault(row.dataset, []).append(row)
    for dataset, group in by_dataset.items():
        cells = [_HEADER, *(_cells(r) for r in group)]
        widths = [max(len(c[i]) for c in cells) for i in range(len(_HEADER) - 1)]
        counts: dict[str, int] = {}
        for row in group:
            counts[row.state] = counts.get(row.state, 0) + 1
        out.append(f"{dataset}  ({len(group)} trainings: {', '.join(f'{n} {s}' for s, n in counts.items())})")
        for line in cells:
            numbers = {1, 3, 4, 6, 7}
            parts = [c.rjust(w) if i in numbers else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))]
            out.append("  " + "  ".join(parts) + "  " + line[-1])
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def status_frame(rows: Sequence[StatusRow]) -> pd.DataFrame:
    """The rows as a tidy table, one row per training (the columns of :class:`StatusRow`)."""
    return pd.DataFrame(rows_as_records(rows), columns=StatusRow.columns())


def write_status_csv(rows: Sequence[StatusRow], path: str | Path) -> Path:
    """``status.csv``, written atomically."""
    return atomic_write_csv(status_frame(rows), path)
