"""Scatter of reproduced against reported cross-validation values, one point per table cell."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mednext.atomic import atomic_output  # noqa: E402
from mednext.vocabulary import TABLE_METRICS, paper_name  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v")


def plot_reproduced_vs_reported(table: pd.DataFrame, out_png: Path) -> Path:
    """Reproduced (pooled, with 95 % CI bars) vs reported DSC/SDC, identity line.

    Only cells with both a reported and a reproduced value are drawn; with none (e.g. the demo, whose
    dataset the paper did not use) the figure says so in words instead of showing empty axes.
    """
    reproduced = table["reproduced"].astype(float)
    reported = table["reported"].astype(float)
    done = table[np.isfinite(reproduced) & np.isfinite(reported)]
    fig, ax = plt.subplots(figsize=(6, 6))
    if done.empty:
        return _write_message(fig, ax, out_png, int(np.isfinite(reported).sum()))
    for metric, marker in zip((paper_name(m) for m in TABLE_METRICS), MARKERS):
        rows = done[done["metric"] == metric]
        if len(rows):
            low_err = (rows["reproduced"] - rows["ci_low"]).fillna(0).clip(lower=0)
            high_err = (rows["ci_high"] - rows["reproduced"]).fillna(0).clip(lower=0)
            ax.errorbar(rows["reported"], rows["reproduced"], yerr=[low_err, high_err], fmt=marker,
                        label=f"{metric} (bar: 95 % CI)", alpha=0.8, capsize=2)
    low = min(float(done["reported"].min()), float(done["reproduced"].min())) - 2
    high = 100.0
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="reproduced = reported")
    ax.set_xlabel("reported (paper), %")
    ax.set_ylabel("reproduced, %")
    ax.set_title(f"MedNeXt reproduction: {len(done)} of {int(np.isfinite(reported).sum())} reported values reproduced")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(out_png)


def _write_message(fig: plt.Figure, ax: plt.Axes, out_png: Path, n_reported: int) -> Path:
    ax.set_axis_off()
    ax.text(0.5, 0.5, "Nothing to compare yet:\nno run on a dataset of the paper\n"
            f"(0 of {n_reported} reported values reproduced).\n\n"
            "Results on other datasets (e.g. the demo's)\nare in results_other_datasets.md.",
            ha="center", va="center", fontsize=12, transform=ax.transAxes)
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(out_png)
