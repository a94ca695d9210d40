"""Reproduced beside reported: join the headline statistics with the paper's numbers (Tables 1 right, 2).

Reproduced (the headline) is the official pooled cross-validation mean: the validation cases of all
folds pooled, nanmean per region, then the mean over regions (docs/sources.md#cv-mean;
:mod:`mednext.statistics.aggregate`), in percent. Beside it: its fold-stratified bootstrap 95 % CI and
the spread over folds (mean ± sample std of the per-fold values). A row is flagged (⚑) when the
paper's value lies outside the 95 % CI. Missing runs stay in the table as "—"; nothing here raises
on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mednext.data.registry import PAPER_DATASETS as REGISTRY_PAPER_DATASETS
from mednext.statistics.cases import dataset_conventions
from mednext.tables.render import write_display_table
from mednext.vocabulary import CONVENTIONS, tidy_key

MISSING = "—"
PAPER_DATASETS = REGISTRY_PAPER_DATASETS  # the paper's table order, from the dataset registry
DATASET_ORDER = (*PAPER_DATASETS, "average")
STAT_COLUMNS = ["reproduced", "ci_low", "ci_high", "fold_mean", "fold_std", "folds_done", "n_cases", "convention",
                "other_convention", "reproduced_other"]
PROVENANCE_COLUMNS = ("dataset", "network", "fold", "git_commit")


def compare(reported: pd.DataFrame, headline: pd.DataFrame | None, n_folds: int) -> pd.DataFrame:
    """One row per reported value with the headline statistics, Δ, folds done, CI check and flag.

    ``reported`` has columns network, dataset, metric (paper names) and value; extra columns are
    kept. ``headline`` is :func:`mednext.statistics.aggregate.headline_table`'s frame (tidy metric
    names). Rows with ``dataset == "average"`` are the mean of the network's four dataset headline
    values and are filled only when all four are complete (no CI: the datasets are not resampled
    jointly).
    """
    if headline is None or headline.empty:
        stats = pd.DataFrame(columns=["network", "dataset", "metric_key", *STAT_COLUMNS])
    else:
        stats = headline.rename(columns={"metric": "metric_key"})[["network", "dataset", "metric_key", *STAT_COLUMNS]]
    table = reported.copy()  # the paper's rows only: other datasets go to results_other_datasets
    table["metric_key"] = table["metric"].map(tidy_key)
    table = table.merge(stats, on=["network", "dataset", "metric_key"], how="left")
    table = _fill_averages(table, n_folds)
    table = _fill_conventions(table)
    table["folds_done"] = table["folds_done"].fillna(0).astype(int)
    table["n_cases"] = table["n_cases"].fillna(0).astype(int)
    table["delta"] = table["reproduced"] - table["value"]
    table["paper_in_ci"] = paper_in_ci(table["value"], table["ci_low"], table["ci_high"])
    table["flagged"] = (table["paper_in_ci"] == False).fillna(False).astype(bool)  # noqa: E712 (nullable)
    table["complete"] = table["folds_done"] >= n_folds
    return table.rename(columns={"value": "reported"}).drop(columns=["metric_key"])


def paper_in_ci(reported: pd.Series, ci_low: pd.Series, ci_high: pd.Series) -> pd.Series:
    """True/False where the reported value and the CI exist, missing (<NA>) elsewhere."""
    values = [pd.NA if pd.isna(v) or pd.isna(lo) or pd.isna(hi) else bool(lo <= v <= hi)
              for v, lo, hi in zip(reported, ci_low, ci_high)]
    return pd.Series(pd.array(values, dtype="boolean"), index=reported.index)


def with_provenance(table: pd.DataFrame, provenance: pd.DataFrame, source: str = "provenance") -> pd.DataFrame:
    """Add ``provenance_key`` ("<dataset>/<network>", linking to the provenance rows of that run set),
    ``mixed_commits`` (its folds came from more than one git commit) and ``commits`` (those commits,
    ";"-joined) to every table row.

    ``provenance`` needs columns dataset, network, fold, git_commit (one row per fold); rows without
    provenance get an empty key, ``mixed_commits`` False and no commits.
    """
    missing = [c for c in PROVENANCE_COLUMNS if c not in provenance.columns]
    if missing:
        raise ValueError(f"{source}: not a provenance table, missing columns {missing}")
    commits = provenance.dropna(subset=["git_commit"]).groupby(["dataset", "network"])["git_commit"].unique()
    known = set(zip(provenance["dataset"].astype(str), provenance["network"].astype(str)))
    table = table.copy()
    pairs = list(zip(table["dataset"].astype(str), table["network"].astype(str)))
    table["provenance_key"] = [f"{d}/{n}" if (d, n) in known else "" for d, n in pairs]
    row_commits = [sorted(str(c) for c in commits.get((d, n), [])) for d, n in pairs]
    table["mixed_commits"] = [len(c) > 1 for c in row_commits]
    table["commits"] = [";".join(c) for c in row_commits]
    return table


def _commit_cell(commits: str) -> str:
    """The short commit a row's folds were trained at, "mixed (N)" for N commits, "" without provenance."""
    if not commits:
        return ""
    shas = commits.split(";")
    return shas[0][:7] if len(shas) == 1 else f"mixed ({len(shas)})"


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


def _fill_conventions(table: pd.DataFrame) -> pd.DataFrame:
    """Rows without a run still say which conventions their dataset's value uses (the average mixes them: none)."""
    missing = table["convention"].isna() & (table["dataset"] != "average")
    for index in table.index[missing]:
        conventions = dataset_conventions(str(table.at[index, "dataset"]))
        table.at[index, "convention"] = conventions[0]
        table.at[index, "other_convention"] = conventions[1] if len(conventions) > 1 else ""
    table[["convention", "other_convention"]] = table[["convention", "other_convention"]].fillna("")
    return table


def _cell(value: float, std: float | None = None, digits: int = 2) -> str:
    if value is None or not np.isfinite(value):
        return MISSING
    text = f"{value:.{digits}f}"
    if std is not None and np.isfinite(std):
        text += f" ± {std:.{digits}f}"
    return text


def _other_cell(value: float, convention: object) -> str:
    """The pooled value under the dataset's second empty-region convention, with its name; "" where none."""
    if not isinstance(convention, str) or not convention:
        return ""
    return f"{_cell(value)} ({CONVENTIONS[convention].label})"


def _ci(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return MISSING
    return f"[{low:.2f}, {high:.2f}]"


def display_frame(table: pd.DataFrame, label_columns: Sequence[str], cross_validation: bool = True) -> pd.DataFrame:
    """Human-readable rows: (reported,) reproduced (pooled), 95 % CI, fold mean ± std, the value under
    the dataset's other empty-region convention (only when some row has one), (Δ,) folds, (flag,) and
    the provenance columns when present. Tables without a ``reported`` column (datasets
    the paper did not use) show no reported value, Δ or flag. ``cross_validation=False`` (the test-set
    table: one recorded score per cell) shows the score without CI or fold columns."""
    shown = table[list(label_columns)].copy()
    has_reported = "reported" in table
    if has_reported:
        shown["reported"] = table["reported"].map(lambda v: _cell(v))
    if not cross_validation:
        shown["reproduced"] = table["reproduced"].map(lambda v: _cell(v))
    else:
        shown["reproduced (pooled)"] = table["reproduced"].map(lambda v: _cell(v))
        shown["95 % CI"] = [_ci(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])]
        shown["fold mean ± std"] = [_cell(v, s) for v, s in zip(table["fold_mean"], table["fold_std"])]
    if "other_convention" in table and (table["other_convention"].fillna("") != "").any():
        shown["other convention"] = [_other_cell(v, c) for v, c in zip(table["reproduced_other"], table["other_convention"])]
    if has_reported:
        shown["Δ"] = table["delta"].map(lambda v: MISSING if not np.isfinite(v) else f"{v:+.2f}")
    if cross_validation:
        shown["folds"] = table["folds_done"].astype(str)
        if "n_cases" in table:
            shown["cases"] = table["n_cases"].astype(int).astype(str)
    if has_reported and cross_validation:
        shown["flag"] = np.where(table["flagged"], "⚑", "")
    if "provenance_key" in table:
        shown["provenance"] = table["provenance_key"].fillna("")
        shown["commits"] = table["commits"].map(_commit_cell)
    return shown


def write_comparison(table: pd.DataFrame, out_dir: str | Path, stem: str, title: str, caption: str,
                     label_columns: Sequence[str], cross_validation: bool = True) -> list[Path]:
    """Write ``stem.csv`` (numbers, NaN for missing), ``stem.md``, ``stem.tex`` and ``stem.html`` (display, "—" for missing)."""
    shown = display_frame(table, label_columns, cross_validation)
    return write_display_table(table, shown, out_dir, stem, title, caption)
