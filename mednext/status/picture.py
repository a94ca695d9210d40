"""The grid at a glance: a dataset x network grid, one bar per fold, coloured by state, filled by progress."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from mednext.atomic import atomic_output  # noqa: E402
from mednext.status.fold_state import State  # noqa: E402
from mednext.status.grid_status import GridStatus, StatusRow  # noqa: E402
from mednext.status.render import duration  # noqa: E402

#: One colour per state: greys before a job, blues while one holds the training, greens when done,
#: orange, red and purple for what needs a look.
STATE_COLOURS: dict[str, str] = {
    State.WAITING.value: "#bdbdbd",
    State.NOT_STARTED.value: "#e0e0e0",
    State.QUEUED.value: "#9ecae1",
    State.RUNNING.value: "#2b7bba",
    State.INTERRUPTED.value: "#f28e2b",
    State.FAILED.value: "#d62728",
    State.DIVERGED.value: "#8c56b8",
    State.FINISHED.value: "#9fd89a",
    State.EVALUATED.value: "#2e9e44",
}
#: States whose bar is full whatever the epochs (the training itself is over).
FULL_BAR = {State.FINISHED.value, State.EVALUATED.value}


def _progress(row: StatusRow) -> float:
    if row.state in FULL_BAR:
        return 1.0
    return min(1.0, row.epochs_done / row.epochs) if row.epochs else 0.0


def draw_status(status: GridStatus, out_png: str | Path, title: str = "Training grid",
                now: datetime | None = None) -> Path:
    """Write the picture: columns are datasets, rows networks (config order), a bar per fold whose
    filled part is the share of epochs done, in its state's colour; counts and the ETA in the title."""
    rows: Sequence[StatusRow] = status.rows
    datasets = list(dict.fromkeys(r.dataset for r in rows))
    networks = list(dict.fromkeys(r.network for r in rows))
    folds = sorted({r.fold for r in rows})
    cell = {(r.dataset, r.network, r.fold): r for r in rows}
    width = max(8.0, 2.4 + 2.6 * len(datasets))
    height = 1.6 + 0.12 * len(folds) * max(1, len(networks)) + 0.25 * len(networks)  # inches: bars + title + legend
    fig, ax = plt.subplots(figsize=(width, height))
    bar_h = 0.8 / max(1, len(folds))
    backgrounds: list[Rectangle] = []
    waiting: list[Rectangle] = []  # hatched: they cannot start yet
    fills: list[Rectangle] = []
    for x, dataset in enumerate(datasets):
        for y, network in enumerate(networks):
            present = [cell.get((dataset, network, f)) for f in folds]
            if not any(present):
                ax.text(x + 0.5, y + 0.5, "not in the grid", ha="center", va="center", fontsize=7, color="#9e9e9e")
                continue
            for i, row in enumerate(present):
                if row is None:
                    continue
                top = y + 0.1 + i * bar_h
                colour = STATE_COLOURS[row.state]
                (waiting if row.state == State.WAITING.value else backgrounds).append(
                    Rectangle((x + 0.18, top + 0.1 * bar_h), 0.64, 0.8 * bar_h, facecolor=colour))
                fills.append(Rectangle((x + 0.18, top + 0.1 * bar_h), 0.64 * _progress(row), 0.8 * bar_h,
                                       facecolor=colour))
                if x == 0:  # the fold rows line up across datasets: label them once
                    ax.text(x + 0.16, top + 0.5 * bar_h, f"f{row.fold}", ha="right", va="center", fontsize=6)
                if row.state not in FULL_BAR and row.epochs_done:
                    ax.text(x + 0.84, top + 0.5 * bar_h, f"{row.epochs_done}/{row.epochs}", ha="left", va="center",
                            fontsize=5.5)
    # one collection per layer: a few hundred single patches take seconds to draw
    ax.add_collection(PatchCollection(backgrounds, match_original=True, alpha=0.25, edgecolor="#757575", linewidth=0.4))
    ax.add_collection(PatchCollection(waiting, match_original=True, alpha=0.5, edgecolor="#757575", linewidth=0.4,
                                      hatch="////"))
    ax.add_collection(PatchCollection(fills, match_original=True, edgecolor="none"))
    ax.set_xlim(0, len(datasets))
    ax.set_ylim(len(networks), 0)
    ax.set_xticks([x + 0.5 for x in range(len(datasets))], datasets)
    ax.xaxis.tick_top()
    ax.set_yticks([y + 0.5 for y in range(len(networks))], networks, fontsize=8)
    for x in range(1, len(datasets)):
        ax.axvline(x, color="#bdbdbd", linewidth=0.8)
    for y in range(1, len(networks)):
        ax.axhline(y, color="#eeeeee", linewidth=0.6)
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    counts = status.counts()
    handles = [Patch(facecolor=STATE_COLOURS[s], label=f"{s.replace('_', ' ')} ({n})",
                     hatch="////" if s == State.WAITING.value else None) for s, n in counts.items()]
    fig.legend(handles=handles, loc="lower center", ncol=max(3, min(len(handles), int(width // 1.6))), fontsize=7,
               frameon=False)
    now = datetime.now() if now is None else now
    eta = (f"{duration(status.eta_hours)} of training left on {status.gpus} {status.slot_name}(s)"
           if status.eta_hours > 0 else "nothing left to train")
    blocked = f"; {status.blocked} need attention" if status.blocked else ""
    fig.suptitle(f"{title}, {now:%Y-%m-%d %H:%M}\n{len(rows)} trainings; {eta}{blocked}\n"
                 "one bar per fold, filled by the epochs done, coloured by state", fontsize=9, va="top",
                 y=1 - 0.08 / height)
    fig.tight_layout(rect=(0, 0.55 / height, 1, 1))  # room for the legend (inches); the title is accounted for
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)
    return Path(out_png)

