"""Scatter of reproduced against reported cross-validation values, one point per table cell."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mednext.atomic import atomic_output  # noqa: E402


def plot_reproduced_vs_reported(table: pd.DataFrame, out_png: Path) -> Path:
    """Reproduced (with fold-std error bars) vs reported DSC/SDC, identity line; empty axes if nothing ran."""
    done = table[np.isfinite(table["reproduced"].astype(float))]
    fig, ax = plt.subplots(figsize=(6, 6))
    for metric, marker in (("DSC", "o"), ("SDC", "s")):
        rows = done[done["metric"] == metric]
        if len(rows):
            ax.errorbar(rows["reported"], rows["reproduced"], yerr=rows["fold_std"].fillna(0), fmt=marker,
                        label=metric, alpha=0.8, capsize=2)
    low = float(np.nanmin(table["reported"])) - 2 if len(table) else 0
    high = 100.0
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="reproduced = reported")
    ax.set_xlabel("reported (paper), %")
    ax.set_ylabel("reproduced, %")
    ax.set_title(f"MedNeXt reproduction: {len(done)} of {len(table)} values reproduced")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(out_png)
