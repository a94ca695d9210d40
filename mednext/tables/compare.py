"""Reproduced beside reported: join fold summaries with the paper's numbers (Tables 1 right, 2; test set).

Reproduced values are the mean and sample std over folds of each fold's mean-over-classes (the
paper reports 5-fold CV means, §3.1), in percent. A row is flagged when it lies further than one
fold-std from the paper. Missing runs stay in the table as "—"; nothing here raises on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mednext.atomic import atomic_write_csv, atomic_write_text

MISSING = "—"
#: Paper metric names -> metric names of mednext.evaluation's tidy results.
METRIC_COLUMN = {"DSC": "dsc", "SDC": "sdc", "NSD": "sdc", "HD95": "hd95"}
MEAN_CLASS = "mean_over_classes"
DATASET_ORDER = ("btcv", "amos22", "kits19", "brats21", "average")


def fold_means(per_fold: pd.DataFrame, spacing_mode: str) -> pd.DataFrame:
    """Per (dataset, network, fold, metric): the fold's mean over classes, in percent for DSC/SDC."""
    rows = per_fold[(per_fold["class"] == MEAN_CLASS) & (per_fold["spacing_mode"] == spacing_mode)]
    rows = rows[["dataset", "network", "fold", "metric", "mean"]].copy()
    percent = rows["metric"].isin(["dsc", "sdc"])
    rows.loc[percent, "mean"] = rows.loc[percent, "mean"] * 100
    return rows


def _aggregate(values: pd.Series) -> pd.Series:
    finite = values[np.isfinite(values)]
    return pd.Series({
        "reproduced": finite.mean() if len(finite) else np.nan,
        "fold_std": finite.std(ddof=1) if len(finite) > 1 else np.nan,
        "folds_done": int(len(finite)),
    })


def compare(reported: pd.DataFrame, per_fold: pd.DataFrame | None, spacing_mode: str, n_folds: int) -> pd.DataFrame:
    """One row per reported value with the reproduced mean, fold std, Δ, folds done and a flag.

    ``reported`` has columns network, dataset, metric (paper names) and value; extra columns are
    kept. Rows with ``dataset == "average"`` are the mean of the network's four dataset means and
    are filled only when all four are complete.
    """
    means = None if per_fold is None else fold_means(per_fold, spacing_mode).rename(columns={"metric": "metric_key"})
    if means is None or means.empty:
        stats = pd.DataFrame(columns=["network", "dataset", "metric_key", "reproduced", "fold_std", "folds_done"])
    else:
        stats = means.groupby(["network", "dataset", "metric_key"])["mean"].apply(_aggregate).unstack().reset_index()
    table = _with_unreported_datasets(reported, stats)
    table["metric_key"] = table["metric"].map(METRIC_COLUMN)
    table = table.merge(stats, on=["network", "dataset", "metric_key"], how="left")
    table = _fill_averages(table, n_folds)
    table["folds_done"] = table["folds_done"].fillna(0).astype(int)
    table["delta"] = table["reproduced"] - table["value"]
    table["flagged"] = (table["delta"].abs() > table["fold_std"]) & table["fold_std"].notna()
    table["complete"] = table["folds_done"] >= n_folds
    return table.rename(columns={"value": "reported"}).drop(columns=["metric_key"])


def _with_unreported_datasets(reported: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Add rows (reported value NaN) for datasets a reported network was run on but the paper has not
    (e.g. the synthetic demo set), copying that network's row labels."""
    known = set(zip(reported["network"], reported["dataset"]))
    networks = set(reported["network"])
    extra = sorted({(n, d) for n, d in zip(stats["network"], stats["dataset"]) if n in networks and (n, d) not in known})
    rows = [reported]
    for network, dataset in extra:
        template = reported[reported["network"] == network]
        template = template[template["dataset"] == template["dataset"].iloc[0]].copy()
        template["dataset"] = dataset
        template["value"] = np.nan
        rows.append(template)
    return pd.concat(rows, ignore_index=True)


def _fill_averages(table: pd.DataFrame, n_folds: int) -> pd.DataFrame:
    is_average = table["dataset"] == "average"
    if not is_average.any():
        return table
    datasets = [d for d in DATASET_ORDER if d != "average"]
    parts = table[~is_average & table["dataset"].isin(datasets)]
    for index, row in table[is_average].iterrows():
        members = parts[(parts["network"] == row["network"]) & (parts["metric"] == row["metric"])]
        complete = len(members) == len(datasets) and (members["folds_done"] >= n_folds).all()
        if complete:
            table.loc[index, ["reproduced", "folds_done"]] = [members["reproduced"].mean(), n_folds]
    return table


def _cell(value: float, std: float | None = None, digits: int = 2) -> str:
    if value is None or not np.isfinite(value):
        return MISSING
    text = f"{value:.{digits}f}"
    if std is not None and np.isfinite(std):
        text += f" ± {std:.{digits}f}"
    return text


def display_frame(table: pd.DataFrame, label_columns: Sequence[str]) -> pd.DataFrame:
    """Human-readable rows: reported, reproduced (mean ± std), Δ, folds, and a flag mark."""
    shown = table[list(label_columns)].copy()
    shown["reported"] = table["reported"].map(lambda v: _cell(v))
    shown["reproduced"] = [_cell(v, s) for v, s in zip(table["reproduced"], table["fold_std"])]
    shown["Δ"] = table["delta"].map(lambda v: MISSING if not np.isfinite(v) else f"{v:+.2f}")
    shown["folds"] = table["folds_done"].astype(str)
    shown["flag"] = np.where(table["flagged"], "⚑", "")
    return shown


def write_comparison(table: pd.DataFrame, out_dir: str | Path, stem: str, title: str, caption: str,
                     label_columns: Sequence[str]) -> list[Path]:
    """Write ``stem.csv`` (numbers, NaN for missing), ``stem.md`` and ``stem.tex`` (display, "—" for missing)."""
    out = Path(out_dir)
    shown = display_frame(table, label_columns)
    paths = [out / f"{stem}.csv", out / f"{stem}.md", out / f"{stem}.tex"]
    atomic_write_csv(table, paths[0])
    atomic_write_text(paths[1], f"# {title}\n\n{shown.to_markdown(index=False)}\n\n{caption.strip()}\n")
    latex = shown.to_latex(index=False, caption=f"{title}. {caption.strip()}", label=f"tab:{stem}",
                           escape=True)
    atomic_write_text(paths[2], latex)
    return paths
