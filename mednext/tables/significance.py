"""Write the paired-comparison table (``significance.{csv,md,tex}``) and its figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mednext.atomic import atomic_output  # noqa: E402
from mednext.tables.render import write_display_table  # noqa: E402
from mednext.vocabulary import TABLE_METRICS, metric, paper_name  # noqa: E402

MISSING = "—"
TITLE = "Paired comparisons on the same validation cases"


def caption(spacing_mode: str, n_resamples: int) -> str:
    return (
        "Per dataset and metric: mean over the common validation cases of the paired difference "
        "network − reference, each case's value being its mean over regions (spacing mode "
        f"`{spacing_mode}`; a region absent from both masks as in the dataset's headline), in percentage points; "
        f"95 % CI: percentile bootstrap ({n_resamples} resamples, "
        "stratified by fold). p: two-sided Wilcoxon signed-rank test (scipy defaults; zero differences "
        "dropped); p (Holm): Holm-corrected within each table (`table2`, `table1_ablations`, "
        "`results_other_datasets`). paper Δ: the paper's reported difference (— : not reported). "
        "Cases scored for only one of the two runs are dropped (n dropped). With few cases (the demo: "
        "2 per fold) a bootstrap CI is too narrow and the Wilcoxon p cannot get small (n = 4: p ≥ 0.125)."
    )


def _number(value: float, digits: int = 2, signed: bool = False) -> str:
    if value is None or not np.isfinite(value):
        return MISSING
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _metric_label(key: str) -> str:
    """The paper's name; distances say that lower is better (the panel's arrows are for scores)."""
    return paper_name(key) if metric(key).higher_is_better else f"{paper_name(key)}, lower is better"


def _difference_units(metrics: pd.Series) -> str:
    """The unit of a paired difference per metric shown, e.g. "percentage points" or "DSC, SDC: percentage points; HD95: mm"."""
    by_unit: dict[str, list[str]] = {}
    for key in dict.fromkeys(metrics):
        unit = "percentage points" if metric(key).percent else metric(key).unit
        by_unit.setdefault(unit, []).append(paper_name(key))
    if len(by_unit) == 1:
        return next(iter(by_unit))
    return "; ".join(f"{', '.join(names)}: {unit}" for unit, names in by_unit.items())


def _p(value: float) -> str:
    if value is None or not np.isfinite(value):
        return MISSING
    return f"{value:.2e}" if value < 1e-3 else f"{value:.3f}"


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable rows of the significance table."""
    shown = pd.DataFrame({
        "table": table["table"], "dataset": table["dataset"], "metric": table["metric"].map(paper_name),
        "network − reference": [f"{n} − {r}" for n, r in zip(table["network"], table["reference"])],
        "kind": table["kind"], "n": table["n_cases"].astype(int), "n dropped": table["n_dropped"].astype(int),
        "mean Δ": table["mean_diff"].map(lambda v: _number(v, signed=True)),
        "95 % CI": [MISSING if not (np.isfinite(lo) and np.isfinite(hi)) else f"[{lo:+.2f}, {hi:+.2f}]"
                    for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "p": table["p_value"].map(_p), "p (Holm)": table["p_holm"].map(_p),
        "paper Δ": table["paper_diff"].map(lambda v: _number(v, signed=True)),
    })
    return shown


def write_significance(table: pd.DataFrame, out_dir: str | Path, spacing_mode: str, n_resamples: int,
                       notes: Sequence[str] = ()) -> list[Path]:
    """``significance.csv`` (numbers), ``.md``, ``.tex`` and ``.html`` (display); ``notes`` list untested pairs."""
    extra = "".join(f"\n- {note}" for note in notes)
    return write_display_table(table, display_frame(table), out_dir, "significance", TITLE,
                               caption(spacing_mode, n_resamples), empty_text="No pair of runs to compare yet.",
                               notes=f"Not tested:{extra}" if notes else "")


def plot_significance(table: pd.DataFrame, out_png: Path) -> Path:
    """One panel per dataset: paired differences with 95 % CIs; the paper's reported Δ as a diamond."""
    datasets = list(dict.fromkeys(table["dataset"])) if len(table) else []
    heights = [max(1.6, 0.42 * len(table[table["dataset"] == d]) + 1.0) for d in datasets] or [3.0]
    fig, axes = plt.subplots(len(heights), 1, figsize=(11.5, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    if not datasets:
        ax = axes[0, 0]
        ax.text(0.5, 0.5, "No pair of runs to compare yet\n(each comparison needs both networks on the same dataset)",
                ha="center", va="center", transform=ax.transAxes, fontsize=11)
        ax.set_axis_off()
    for ax, dataset in zip(axes[:, 0], datasets):
        _panel(ax, table[table["dataset"] == dataset].reset_index(drop=True), dataset)
    fig.tight_layout()
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return Path(out_png)


def _panel(ax: plt.Axes, rows: pd.DataFrame, dataset: str) -> None:
    y = np.arange(len(rows))[::-1]
    colours = {m: f"C{i}" for i, m in enumerate(TABLE_METRICS)}  # matplotlib's colour cycle, in table order
    for name, colour in colours.items():
        mask = (rows["metric"] == name).to_numpy()
        if not mask.any():
            continue
        part = rows[mask]
        err = np.vstack([part["mean_diff"] - part["ci_low"], part["ci_high"] - part["mean_diff"]])
        err = np.where(np.isfinite(err), err, 0.0)
        ax.errorbar(part["mean_diff"], y[mask], xerr=err, fmt="o", color=colour, capsize=3,
                    label=f"{_metric_label(name)}: mean Δ, 95 % CI")
    paper = rows["paper_diff"].to_numpy(dtype=float)
    has_paper = np.isfinite(paper)
    if has_paper.any():
        ax.scatter(paper[has_paper], y[has_paper], marker="D", facecolors="none", edgecolors="crimson", s=45,
                   zorder=3, label="paper's reported Δ (its claimed direction)")
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.text(1.0, 1.01, "network better →", transform=ax.transAxes, ha="right", va="bottom", fontsize=7)
    ax.text(0.0, 1.01, "← reference better", transform=ax.transAxes, ha="left", va="bottom", fontsize=7)
    labels = [f"{n} − {r} ({_metric_label(m)}; n={k}, p_Holm={_p(p)})"
              for n, r, m, k, p in zip(rows["network"], rows["reference"], rows["metric"], rows["n_cases"], rows["p_holm"])]
    ax.set_yticks(y, labels, fontsize=8)
    note = "" if has_paper.any() else " (the paper reports no value for this dataset: no claim to mark)"
    ax.set_title(f"{dataset}{note}", fontsize=10, pad=14)
    ax.set_xlabel(f"paired difference, {_difference_units(rows['metric'])} (network − reference)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
